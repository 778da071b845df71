"""What a study trains, in which order, and with which flags."""
import os

import tensorflow as tf

from tests.study.records import record
from tfattncut.study import plan


def _settings(**changes):
    values = dict(study_dir="study", runs_dir="runs",
                  variants=("fastcut", "cut", "attn_bam", "attn_self", "qsattn_global"),
                  screen_seeds=(0, 1), confirm_seeds=(7, 8), budget_factors=(4,),
                  train_flags=("--n_epochs=1", "--n_epochs_decay=2"))
    values.update(changes)
    return plan.StudySettings(**values)


def _screen(downstream):
    """{run name: record} of screen runs, {variant: downstream mIoU per screen seed}."""
    return {f"{v}_seed{s}": record(v, s, x) for v, values in downstream.items()
            for s, x in enumerate(values)}


class PlanTest(tf.test.TestCase):

    def test_the_confirmations_candidates_are_screened_first_seed_by_seed(self):
        first, rest = plan.screen_runs(_settings())
        self.assertEqual([r.name for r in first],
                         ["cut_seed0", "attn_bam_seed0", "attn_self_seed0",
                          "qsattn_global_seed0", "cut_seed1", "attn_bam_seed1",
                          "attn_self_seed1", "qsattn_global_seed1"])
        self.assertEqual([r.name for r in rest], ["fastcut_seed0", "fastcut_seed1"])

    def test_confirmation_arms_wait_for_their_family_and_take_its_best(self):
        settings = _settings()
        records = _screen({"cut": (0.2, 0.2), "attn_bam": (0.3, 0.3)})
        self.assertIsNone(plan.confirm_arms(settings, records))
        records.update(_screen({"attn_self": (0.3, 0.4)}))
        arms = plan.confirm_arms(settings, records)
        self.assertEqual(arms, ["cut", "qsattn_global", "attn_self"])
        self.assertEqual([r.name for r in plan.confirm_runs(settings, arms)][:3],
                         ["cut_seed7", "qsattn_global_seed7", "attn_self_seed7"])

    def test_an_arm_stays_once_the_confirmation_has_trained_it(self):
        settings = _settings()
        records = _screen({"cut": (0.2, 0.2), "attn_bam": (0.3, 0.3), "attn_self": (0.3, 0.4)})
        records["attn_self_seed7"] = record("attn_self", 7, 0.3, stage="confirm")
        # attn_self's screen scored again lower: attn_bam now has the best mean, too late.
        records.update(_screen({"attn_self": (0.1, 0.1)}))
        self.assertEqual(plan.screen_means(records, settings)["attn_self"], 0.1)
        self.assertEqual(plan.confirm_arms(settings, records),
                         ["cut", "qsattn_global", "attn_self"])

    def test_screen_means_leave_out_failed_and_collapsed_runs(self):
        records = _screen({"cut": (0.2, 0.4), "attn_bam": (0.5,)})
        records["attn_self_seed0"] = record("attn_self", 0, 0.9, distance=0.004)
        records["attn_self_seed1"] = record("attn_self", 1, 0.3)
        records.update({f"uag_seed{s}": record("uag", s, None, failed="NonFiniteSteps: ...")
                        for s in (0, 1)})
        # attn_bam lacks seed 1: no mean. 0.30000000000000004 is (0.2 + 0.4) / 2 in floats.
        self.assertEqual(plan.screen_means(records, _settings()),
                         {"cut": (0.2 + 0.4) / 2, "attn_self": 0.3, "uag": -1.0})

    def test_confirmation_runs_count_before_their_arms_are_chosen(self):
        settings = _settings()
        # cut, qsattn_global and the best attention module, on 2 confirm seeds.
        self.assertEqual(plan.unchosen_confirm_runs(settings, _screen({"cut": (0.2, 0.2)})), 6)
        self.assertEqual(plan.unchosen_confirm_runs(settings, _screen(
            {"attn_bam": (0.3, 0.3), "attn_self": (0.35, 0.35)})), 0)  # named now
        self.assertEqual(plan.unchosen_confirm_runs(_settings(stages=("screen",)), {}), 0)

    def test_budget_runs_scale_the_epochs(self):
        settings = _settings()
        runs = plan.budget_runs(settings)
        self.assertEqual([r.name for r in runs], ["cut_x4_seed0", "qsattn_global_x4_seed0",
                                                  "cut_x4_seed1", "qsattn_global_x4_seed1"])
        config = plan.run_config(settings, runs[0])
        self.assertEqual((config.n_epochs, config.n_epochs_decay), (4, 8))
        self.assertEqual((config.name, config.seed, config.resume), ("cut_x4_seed0", 0, True))
        screen = plan.run_config(settings, plan.Run("screen", "qsattn_local_correct", 1))
        self.assertEqual((screen.n_epochs, screen.n_epochs_decay), (1, 2))
        self.assertEqual(screen.qs_local_layout, "correct")
        self.assertEqual((screen.dataroot, screen.make_synthetic),
                         ("data/synth_street_study", False))

    def test_cut_is_trained_again_on_a_machine_whose_runs_it_pairs_with_elsewhere(self):
        records = _screen({"cut": (0.2, 0.2), "attn_bam": (0.3, 0.3)})
        records["cut_x4_seed0"] = record("cut", 0, 0.3, stage="budget", factor=4)
        for name in ("attn_bam_seed1", "fastcut_seed0", "attn_self_seed1", "cut_x4_seed0"):
            records.setdefault(name, record(name.split("_seed")[0], int(name[-1]), 0.2))
            records[name]["machine"] = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        records["qsattn_global_x4_seed0"] = record("qsattn_global", 0, 0.3, stage="budget",
                                                   factor=4, machine="a third CPU")
        # Compared with nothing, a failed run and one that returned its input need no pair.
        records["cut_seed2"] = record("cut", 2, 0.2)
        records["fastcut_seed2"] = record("fastcut", 2, None, failed="NonFiniteSteps: ...",
                                          machine=records["fastcut_seed0"]["machine"])
        records["attn_bam_seed2"] = record("attn_bam", 2, 0.2, distance=0.001,
                                           machine=records["fastcut_seed0"]["machine"])
        epyc = "amd_epyc_2_cores_avx2_fma_no_gpu"
        self.assertEqual(plan.machine_tag(records["fastcut_seed0"]["machine"]), epyc)
        # One run of CUT per machine, seed and steps factor, whatever trained there with it;
        # none where CUT's own run shares the machine or is not scored yet (attn_bam_seed0,
        # qsattn_global_x4_seed1), nor for seed 2. (A longer run also asks for CUT at the
        # screen's steps on its machine: the next test.)
        again = plan.same_machine_runs(records)
        self.assertEqual([r.name for r in again],
                         ["cut_seed0_on_a_third_cpu", "cut_seed0_on_" + epyc,
                          "cut_seed1_on_" + epyc, "cut_x4_seed0_on_a_third_cpu"])
        self.assertEqual({(r.stage, r.variant) for r in again}, {(plan.SAME_MACHINE, "cut")})
        # First in run order; and, once scored, no longer planned.
        self.assertEqual(plan.planned_runs(_settings(), records)[:4], again)
        records[again[1].name] = record("cut", 0, 0.2, stage=plan.SAME_MACHINE,
                                        machine=records["fastcut_seed0"]["machine"])
        self.assertEqual(plan.same_machine_runs(records), again[:1] + again[2:])
        # CUT's preset, seed and steps, in a run directory of its own.
        config = plan.run_config(_settings(), again[3])
        self.assertEqual((config.name, config.seed, config.n_epochs, config.model),
                         ("cut_x4_seed0_on_a_third_cpu", 0, 4, "cut"))

    def test_the_budgets_arms_are_trained_again_at_the_screens_steps_on_its_machine(self):
        records = _screen({"cut": (0.2, 0.2), "qsattn_global": (0.3, 0.3)})
        epyc = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        tag = plan.machine_tag(epyc)
        # Seed 0's longer runs on the EPYC, the screen's on "a test": both arms again there.
        for variant in ("cut", "qsattn_global"):
            records[plan.run_name(variant, 0, 4)] = record(variant, 0, 0.3, stage="budget",
                                                           factor=4, machine=epyc)
        # Seed 1's on the screen's machine: nothing; a failed longer run asks for nothing.
        records["cut_x4_seed1"] = record("cut", 1, 0.3, stage="budget", factor=4)
        records["qsattn_global_x8_seed1"] = record("qsattn_global", 1, None, stage="budget",
                                                   factor=8, failed="NonFiniteSteps: ...",
                                                   machine=epyc)
        again = plan.same_machine_runs(records)
        self.assertEqual([r.name for r in again],
                         [f"cut_seed0_on_{tag}", f"qsattn_global_seed0_on_{tag}"])
        config = plan.run_config(_settings(), again[1])
        self.assertEqual((config.name, config.seed, config.n_epochs, config.selector),
                         (f"qsattn_global_seed0_on_{tag}", 0, 1, "qs_global"))
        records[again[1].name] = record("qsattn_global", 0, 0.3, stage=plan.SAME_MACHINE,
                                        machine=epyc)
        self.assertEqual(plan.same_machine_runs(records), again[:1])

    def test_bad_settings_are_named_before_anything_trains(self):
        for changes, message in (
                (dict(variants=("cut", "nope")), "--presets: \\['nope'\\] are neither"),
                (dict(variants=("cut", "cut")), "--presets: cut, cut names one twice"),
                (dict(stages=("screen", "later")), "--stages: unknown \\['later'\\]"),
                (dict(stages=()), "--stages: none; choose from screen, confirm, budget"),
                (dict(budget_factors=(1, 4)), "--budget_factors: 1, 4; each must be"),
                # Checked when the study starts, not when its first unscored run does.
                (dict(train_flags=("--bogus=1",)),
                 "--train_flag: Unknown command line flag 'bogus'"),
                (dict(train_flags=("--lr=-1",)), "--train_flag: flag --lr=-1.0: .*> 0"),
                (dict(train_flags=("ngf=8",)), "--train_flag: ngf=8 is not a flag"),
                (dict(confirm_seeds=(1, 9)), "--confirm_seeds must be fresh: \\[1\\]"),
                (dict(screen_seeds=(0, 0)), "--screen_seeds: 0, 0 names one twice"),
                (dict(screen_seeds=(-1,)), "--screen_seeds: \\[-1\\] not in")):
            with self.assertRaisesRegex(ValueError, message):
                _settings(**changes)
        # A folder flag under a file: named at once, not as os.makedirs' traceback when the
        # first run starts.
        a_file = os.path.join(self.get_temp_dir(), "a_file")
        open(a_file, "w").close()
        for field, flag in (("study_dir", "--study_dir"), ("runs_dir", "--runs_dir")):
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"^{flag}={a_file}/x: {a_file} exists and is not a "
                                        "folder"):
                _settings(**{field: os.path.join(a_file, "x")})
