"""The method study: `python -m launch.study --flagfile=configs/study.cfg`.

Renders the study's data set, trains every planned run (--stages: the screen, the
confirmation, the budget check; docs/design/study.md), scores each with the committed scorers
of STUDY_DIR/scorers and writes STUDY_DIR/report.md, report.json, chart.png and samples.png
(tfattncut.study). Rerunning the same command skips scored runs and resumes interrupted ones;
`--report_only --merge=DIR,...` merges the scores of studies run elsewhere. `--train_scorers`
trains the scorers, once per study (commit them); `--verify=NAME,...` scores trained runs
again and says whether their score files are reproduced. A SIGTERM saves the running run's
checkpoint and exits with status 75; rerun to continue.
"""
import os
import sys
import time

from absl import flags, logging

from tfattncut import cli, process_settings
from tfattncut.study import plan, report, runner, scorers, scores
from tfattncut.study.data import DataSpec, StudyData
from tfattncut.study.page import HEADLINE_END, HEADLINE_START
from tfattncut.training.trainer import EXIT_PREEMPTED, Preempted

_DEFAULT, _DATA = plan.StudySettings(), DataSpec()
flags.DEFINE_list("presets", [], "Presets (configs/NAME.cfg) and study variants ("
                  f"{', '.join(plan.VARIANTS)}) of the screen.")
flags.DEFINE_list("screen_seeds", list(map(str, _DEFAULT.screen_seeds)),
                  "Seeds of every variant in the screen.")
flags.DEFINE_list("confirm_seeds", list(map(str, _DEFAULT.confirm_seeds)),
                  "Fresh seeds of the confirmation (none may be a screen seed).")
flags.DEFINE_list("budget_factors", list(map(str, _DEFAULT.budget_factors)), "The budget "
                  "check's lengths, as multiples (2 or more) of the screen's steps.")
flags.DEFINE_list("stages", list(plan.STAGES), "Which stages to run: screen, confirm, budget.")
flags.DEFINE_string("dataroot", _DEFAULT.dataroot, "The study's data set (rendered here with "
                    f"{_DATA.num_train} training and {_DATA.num_test} test images per domain "
                    "if missing).")
flags.DEFINE_string("study_dir", _DEFAULT.study_dir, "Small results: scorers/, scores/, "
                    "report.md, report.json, chart.png, samples.png (keep it in version "
                    "control).")
flags.DEFINE_string("runs_dir", _DEFAULT.runs_dir, "Run directories (large).")
flags.DEFINE_multi_string("train_flag", [], "A launch.train flag applied to every run after "
                          "its preset, e.g. --train_flag=--ngf=32 (repeat the flag).")
flags.DEFINE_string("configs_dir", "configs", "Folder of the preset flagfiles.")
flags.DEFINE_integer("threads", 2, "TensorFlow's intra- and inter-op threads: fixed, with op "
                     "determinism, so that this machine computes the same bits every time.",
                     lower_bound=1)
flags.DEFINE_bool("train_scorers", False, "Train the fixed scorers into STUDY_DIR/scorers "
                  "(refused if they exist) and stop: once per study, then commit them.")
_SEGMENTER = scorers.SegmenterSettings()
flags.DEFINE_integer("segmenter_epochs", _SEGMENTER.epochs, "With --train_scorers: epochs of "
                     "the downstream segmenters (one per downstream seed, "
                     f"{len(scorers.DOWNSTREAM_SEEDS)} per run).", lower_bound=1)
flags.DEFINE_integer("label_scorer_epochs", _SEGMENTER.label_epochs, "With --train_scorers: "
                     "epochs of the label scorer (trained once).", lower_bound=1)
flags.DEFINE_float("segmenter_learning_rate", _SEGMENTER.learning_rate, "With "
                   "--train_scorers: Adam learning rate of every segmenter.", lower_bound=0.0)
flags.DEFINE_integer("segmenter_width", _SEGMENTER.width, "With --train_scorers: segmenter "
                     "width.", lower_bound=1)
flags.DEFINE_string("doc", "", "Also write the report to this Markdown file (e.g. "
                    "docs/study.md), with the images linked relative to it.")
flags.DEFINE_string("readme", "", "Also write the headline paragraph into this Markdown file, "
                    f"between its lines '{HEADLINE_START}' and '{HEADLINE_END}'.")
flags.DEFINE_bool("report_only", False, "Only write the report from the scores already in "
                  "--study_dir and --merge.")
flags.DEFINE_list("merge", [], "Other study folders whose scores/ the report includes.")
flags.DEFINE_bool("add_rendering", False, "Only check that --dataroot, the study's data set "
                  "rendered on another kind of CPU (it hashes otherwise than the scorers' "
                  "data), gives the scorers' recorded reference lines, and record it in "
                  "scorers.json so that runs can be scored on it (docs/design/study.md#data).")
flags.DEFINE_list("verify", [], "Only score these trained runs (NAME as in scores/NAME.json) "
                  "again from their run directories and compare with their score files, "
                  "writing nothing; exit status 1 if any score differs.")
FLAGS = flags.FLAGS


def _integers(flag):
    try:
        return tuple(int(value) for value in FLAGS[flag].value)
    except ValueError:
        raise ValueError(f"--{flag} must be comma-separated integers; got "
                         f"{','.join(FLAGS[flag].value)}") from None


def settings_from_flags():
    return plan.StudySettings(
        study_dir=FLAGS.study_dir, runs_dir=FLAGS.runs_dir, dataroot=FLAGS.dataroot,
        variants=tuple(FLAGS.presets), screen_seeds=_integers("screen_seeds"),
        confirm_seeds=_integers("confirm_seeds"), budget_factors=_integers("budget_factors"),
        stages=tuple(FLAGS.stages), train_flags=tuple(FLAGS.train_flag),
        configs_dir=FLAGS.configs_dir, doc_path=FLAGS.doc, readme_path=FLAGS.readme,
        command=" ".join(a for a in sys.argv[1:]
                         if not a.startswith(("--report_only", "--merge", "--train_scorers",
                                              "--verify", "--add_rendering"))))


def main(_argv):  # cli.run refuses positional arguments
    process_settings.make_deterministic(FLAGS.threads)
    settings = settings_from_flags()
    scores.check_merged(FLAGS.merge)
    start = time.time()
    data = StudyData(DataSpec(settings.dataroot).render())
    if FLAGS.train_scorers:
        made = scorers.train_scorers(settings.study_dir, data, scorers.SegmenterSettings(
            epochs=FLAGS.segmenter_epochs, learning_rate=FLAGS.segmenter_learning_rate,
            width=FLAGS.segmenter_width, label_epochs=FLAGS.label_scorer_epochs))
        print(f"Scorers {made.fingerprint} on data {made.data_hash} in "
              f"{scorers.scorer_dir(settings.study_dir)} ({(time.time() - start) / 60:.1f} min)")
        return
    if FLAGS.add_rendering:
        compared = scorers.add_rendering(settings.study_dir, data)
        for line, (recorded, measured) in compared.items():
            print(f"{line}: recorded {recorded:.9g}, measured {measured:.9g}")
        print(f"Recorded data {data.hash} in "
              f"{os.path.join(scorers.scorer_dir(settings.study_dir), scorers.SCORERS_JSON)}")
        return
    fixed = scorers.load_scorers(settings.study_dir, data)
    if FLAGS.verify:
        _verify(runner.Study(settings, data, fixed), FLAGS.verify)
        return
    if not FLAGS.report_only:
        try:
            runner.Study(settings, data, fixed).run()
        except Preempted as stop:
            print(f"\n{stop}. Run the same command again to continue the study.")
            sys.exit(EXIT_PREEMPTED)
    report.write_report(settings, fixed, data, FLAGS.merge)
    print(f"\nReport: {os.path.join(settings.study_dir, report.REPORT_MD)} "
          f"({(time.time() - start) / 60:.1f} min)")


def _verify(study, names):
    differing = 0
    for name in names:
        changed = study.verify(name)
        differing += bool(changed)
        print(f"{name}: " + ("every score reproduced to the bit" if not changed else
                             "differs: " + "; ".join(f"{key} recorded {old}, now {new}"
                                                     for key, (old, new) in changed.items())))
    if differing:
        sys.exit(1)


if __name__ == "__main__":
    logging.set_verbosity(logging.WARNING)
    cli.run(main)
