"""What a study trains: its variants, seeds and stages, and the Config of each run
(docs/design/study.md, "Stages").

  screen   every variant x the screen seeds (3): which methods are worth confirming;
  confirm  CUT, qsattn_global, the attention module and the label-aware preset with the
           highest screen mean downstream mIoU, on fresh seeds (10), downstream mIoU
           declared the primary metric before any of them is trained;
  budget   CUT and qsattn_global at longer budgets (x4, x8 the screen's steps) on the screen
           seeds: does the screen's verdict survive more training?

and, whatever the stages, runs trained again on another machine (`same_machine_runs`):
another CPU trains another network from the same seed, so a method is compared with CUT on
its own machine, and the budget check's longer runs with its arms' screen runs on theirs.

Runs are ordered so that the confirmation can start early: runs again on this machine, the
screen of the variants the confirmation chooses from, then the confirmation, then the rest of
the screen, then the budget check.
"""
import dataclasses
import os
import re

from absl import flags

from tfattncut import config as config_lib
from tfattncut import options, output_folders
from tfattncut.study import scores
from tfattncut.study.data import DataSpec

REFERENCE = "cut"
# Study variants beyond the presets of configs/: name -> (preset, extra training flags).
VARIANTS = {"qsattn_local_correct": ("qsattn_local", ("--qs_local_layout=correct",))}
# The families the confirmation takes its best member from.
ATTENTION_MODULES = ("attn_self", "attn_external", "attn_bam", "attn_triplet")
LABEL_AWARE = ("cut_sem", "qsattn_local_sem", "cut_label_nce", "cut_sem_label_nce",
               "cut_sem_adapt")
# The method the budget check holds against CUT at longer training.
CHALLENGER = "qsattn_global"
CONFIRMED = (REFERENCE, CHALLENGER)  # always confirmed, beside the two families' best
STAGES = ("screen", "confirm", "budget")
# The stage of the runs trained again on another machine (`same_machine_runs`).
SAME_MACHINE = "same_machine"
PRIMARY_METRIC = "downstream_miou"


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of the study."""
    stage: str
    variant: str
    seed: int
    steps_factor: int = 1  # budget runs: a multiple of the screen's steps
    machine: str = ""  # SAME_MACHINE runs: the machine_tag of the machine that trains it

    @property
    def name(self):
        return run_name(self.variant, self.seed, self.steps_factor, self.machine)


def run_name(variant, seed, steps_factor=1, machine=""):
    """A run's directory and score-file name."""
    budget = f"_x{steps_factor}" if steps_factor != 1 else ""
    return f"{variant}{budget}_seed{seed}" + (f"_on_{machine}" if machine else "")


def machine_tag(description):
    """A machine.describe() line as a name, e.g. 'amd_epyc_2_cores_avx2_fma_no_gpu'."""
    return re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What `launch.study`'s flags set (these are their defaults); see its help for each."""
    study_dir: str = "docs/study"
    runs_dir: str = "runs/study"
    dataroot: str = DataSpec.dataroot
    variants: tuple = ()
    screen_seeds: tuple = (0, 1, 2)
    confirm_seeds: tuple = tuple(range(100, 110))
    budget_factors: tuple = (4, 8)
    stages: tuple = STAGES
    train_flags: tuple = ()
    configs_dir: str = "configs"
    command: str = ""   # launch.study's flags, as the report's command line shows them
    doc_path: str = ""  # also write the report here (docs/study.md), images linked relatively
    readme_path: str = ""  # also write the headline into this file's marked block

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in VARIANTS and not os.path.exists(
            self.preset_path(v))]
        if unknown:
            raise ValueError(f"--presets: {unknown} are neither presets in "
                             f"{self.configs_dir}/ nor study variants ({', '.join(VARIANTS)})")
        bad_stages = [s for s in self.stages if s not in STAGES]
        if bad_stages or not self.stages:
            raise ValueError(f"--stages: {'unknown ' + str(bad_stages) if bad_stages else 'none'}"
                             f"; choose from {', '.join(STAGES)}")
        try:  # here, not when the first unscored run starts (maybe never, or hours later)
            _parse_training_flags(self.train_flags)
        except ValueError as error:
            raise ValueError(f"--train_flag: {error}") from None
        for flag, seeds in (("--screen_seeds", self.screen_seeds),
                            ("--confirm_seeds", self.confirm_seeds)):
            bad = [s for s in seeds if s not in options.SEED]
            if bad:
                raise ValueError(f"{flag}: {bad} not {options.SEED}, the seeds a run accepts")
            if len(set(seeds)) < len(seeds):
                raise ValueError(f"{flag}: {', '.join(map(str, seeds))} names one twice")
        shared = set(self.screen_seeds) & set(self.confirm_seeds)
        if shared:
            raise ValueError(f"--confirm_seeds must be fresh: {sorted(shared)} are screen "
                             "seeds too")
        if len(set(self.variants)) < len(self.variants):
            raise ValueError(f"--presets: {', '.join(self.variants)} names one twice")
        # A factor of 1 would name the screen's own runs (run_name drops "_x1").
        if any(f < 2 for f in self.budget_factors) or len(set(self.budget_factors)) < len(
                self.budget_factors):
            raise ValueError(f"--budget_factors: {', '.join(map(str, self.budget_factors))}; "
                             "each must be an integer of at least 2, named once")
        # (--dataroot: checked where the study renders it, synthetic.ensure_dataset.)
        for flag, folder in (("--study_dir", self.study_dir), ("--runs_dir", self.runs_dir)):
            output_folders.check_output_folder(flag, folder)

    @property
    def sample_seed(self):
        """The screen seed whose runs give the sample grid its rows."""
        return min(self.screen_seeds)

    def preset_path(self, variant):
        return os.path.join(self.configs_dir, _preset_and_flags(variant)[0] + ".cfg")


def _preset_and_flags(variant):
    """(the preset of configs/, its extra training flags) of a study variant."""
    return VARIANTS.get(variant, (variant, ()))


def screen_runs(settings):
    """(the screen of the variants the confirmation chooses from, the rest of the screen),
    each in run order: seed by seed, so that complete blocks of seeds come early."""
    first = [v for v in settings.variants
             if v in CONFIRMED or v in ATTENTION_MODULES or v in LABEL_AWARE]
    rest = [v for v in settings.variants if v not in first]
    return tuple([Run("screen", v, seed) for seed in settings.screen_seeds for v in group]
                 for group in (first, rest))


def always_confirmed(settings):
    """The variants of CONFIRMED that the study has: the budget check's and the
    confirmation's fixed arms."""
    return [v for v in CONFIRMED if v in settings.variants]


def _families(settings):
    """The members in the study of each family the confirmation takes its best from."""
    families = ([v for v in family if v in settings.variants]
                for family in (ATTENTION_MODULES, LABEL_AWARE))
    return [members for members in families if members]


def screen_means(records, settings):
    """{variant: mean screen downstream mIoU} of the variants whose every screen seed is
    scored (a failed run, or one that returned its input, counts as scored without a value,
    as the report leaves both out of its means): what the confirmation chooses its arms by."""
    values = {}
    for record in records.values():
        if record["stage"] == "screen":
            kept = not record.get("failed") and not scores.collapsed(record)
            values.setdefault(record["variant"], {})[record["seed"]] = (
                record.get(PRIMARY_METRIC) if kept else None)
    means = {}
    for variant, by_seed in values.items():
        if set(settings.screen_seeds) <= set(by_seed):
            scored = [v for v in by_seed.values() if v is not None]
            means[variant] = sum(scored) / len(scored) if scored else -1.0
    return means


def confirm_arms(settings, records):
    """The confirmation's variants: CONFIRMED and from each family the member the
    confirmation's score files already hold or, before it has one, the member with the best
    `screen_means` once every member has all its screen seeds scored; None until then. An
    arm, once trained, stays: a screen run scored again must not swap it (nor grow the
    confirmation's Holm family) halfway through the stage."""
    arms = always_confirmed(settings)
    started = {r["variant"] for r in records.values() if r["stage"] == "confirm"}
    means = screen_means(records, settings)
    for members in _families(settings):
        chosen = [v for v in members if v in started]
        if not chosen and any(v not in means for v in members):
            return None
        arms += chosen or [max(members, key=means.get)]
    return arms


def unchosen_confirm_runs(settings, records):
    """How many confirmation runs `planned_runs` cannot name yet, its arms not being chosen
    (one per arm and confirm seed): what a count or a cost of the whole study adds."""
    if "confirm" not in settings.stages or confirm_arms(settings, records) is not None:
        return 0
    arms = len(always_confirmed(settings)) + len(_families(settings))
    return arms * len(settings.confirm_seeds)


def confirm_runs(settings, arms):
    return [Run("confirm", v, seed) for seed in settings.confirm_seeds for v in arms]


def budget_runs(settings):
    confirmed = always_confirmed(settings)
    return [Run("budget", v, seed, factor) for factor in settings.budget_factors
            for seed in settings.screen_seeds for v in confirmed]


def _parse_training_flags(arguments):
    """launch.train's flags parsed from `arguments`; ValueError for an unknown flag, a bad
    value or anything that is not a flag (absl would leave it unparsed, and unused)."""
    flag_values = flags.FlagValues()
    config_lib.define_flags(flag_values)
    try:
        leftover = flag_values(["study", *arguments])[1:]
    except flags.Error as error:
        raise ValueError(str(error)) from None
    if leftover:
        raise ValueError(f"{' '.join(leftover)} is not a flag (--NAME=VALUE)")
    return flag_values


def run_config(settings, run):
    """The Config of `run`: the preset's flagfile, the variant's flags, the study's shared
    flags, the budget's epochs, then the study's data set and the run's name, folder and
    seed."""
    _, extra = _preset_and_flags(run.variant)
    arguments = [f"--flagfile={settings.preset_path(run.variant)}", *extra,
                 *settings.train_flags]
    flag_values = _parse_training_flags(arguments)
    if run.steps_factor != 1:
        arguments += [f"--n_epochs={flag_values.n_epochs * run.steps_factor}",
                      f"--n_epochs_decay={flag_values.n_epochs_decay * run.steps_factor}"]
    flag_values(["study", *arguments, f"--dataroot={settings.dataroot}",
                 "--make_synthetic=false", f"--name={run.name}",
                 f"--checkpoints_dir={settings.runs_dir}", f"--seed={run.seed}", "--resume"])
    return config_lib.from_flags(flag_values)


def same_machine_runs(records):
    """The runs trained again on another machine, from the score `records`, each tagged with
    the machine that must train it (docs/design/study.md, "Machines"): CUT's run of each seed
    and steps factor on every machine that trained a run of another variant with them where
    CUT's own run comes from another machine; and the budget check's arms at the screen's
    steps on every machine that trained one of their longer runs of a seed where their screen
    runs come from another, so that the budgets compare on one machine. A failed run, or one
    that returned its input, is compared with nothing and needs none; a run already scored is
    not planned again."""
    runs = set()
    for r in records.values():
        if r["stage"] == SAME_MACHINE or r.get("failed") or scores.collapsed(r):
            continue
        here = machine_tag(r["machine"])
        if r["variant"] != REFERENCE:
            runs |= _elsewhere(records, [REFERENCE], r["seed"], r["steps_factor"], here)
        if r["stage"] == "budget":
            runs |= _elsewhere(records, CONFIRMED, r["seed"], 1, here)
    return sorted((run for run in runs if run.name not in records),
                  key=lambda run: (run.steps_factor, run.seed, run.machine, run.variant))


def _elsewhere(records, variants, seed, steps_factor, machine):
    """The SAME_MACHINE runs on `machine` of those `variants` whose own scored run of `seed`
    and `steps_factor` comes from another machine."""
    runs = set()
    for variant in variants:
        own = records.get(run_name(variant, seed, steps_factor))
        if own and machine_tag(own["machine"]) != machine:
            runs.add(Run(SAME_MACHINE, variant, seed, steps_factor, machine))
    return runs


def planned_runs(settings, records):
    """Every run the stages of `settings` ask for, in run order: runs again where a machine
    lacks their pair (`same_machine_runs` of the score `records` {run name: record}), the
    screen of the variants the confirmation chooses from, the confirmation once its arms are
    known (`confirm_arms`), the rest of the screen, the budget check."""
    first, rest = screen_runs(settings) if "screen" in settings.stages else ([], [])
    arms = confirm_arms(settings, records) if "confirm" in settings.stages else None
    budget = budget_runs(settings) if "budget" in settings.stages else []
    return (same_machine_runs(records) + first + (confirm_runs(settings, arms) if arms else [])
            + rest + budget)
