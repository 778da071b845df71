"""The report's numbers and words: a ranking only after the omnibus test, comparisons with
CUT Holm-corrected, collapsed and failed runs apart, the detectable effect stated."""
import os

import numpy as np
import scipy.integrate
import scipy.special
import tensorflow as tf

from tests.study.records import FakeScorers, record
from tfattncut.study import page, plan, statistics, summary


def _settings(study_dir, **changes):
    values = dict(study_dir=study_dir, runs_dir="runs", variants=("cut", "attn_bam"),
                  screen_seeds=(0, 1, 2), confirm_seeds=(10, 11, 12, 13))
    values.update(changes)
    return plan.StudySettings(**values)


def _records(values, stage="screen", **changes):
    """{variant: [downstream per seed]} -> {name: record}."""
    return {plan.run_name(v, seed): record(v, seed, x, stage=stage, **changes)
            for v, xs in values.items() for seed, x in enumerate(xs)}


def _budget(values, factor):
    """{variant: [downstream per seed]} -> {name: record} of budget runs at `factor`."""
    return {plan.run_name(v, seed, factor): record(v, seed, x, stage="budget", factor=factor)
            for v, xs in values.items() for seed, x in enumerate(xs)}


class SummaryTest(tf.test.TestCase):

    def test_no_ranking_without_an_omnibus_difference(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.28, 0.24, 0.22],
                            "attn_self": [0.27, 0.21, 0.26]})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        screen = numbers["stages"]["screen"]
        self.assertFalse(screen["omnibus"]["differ"])
        text = page.report(numbers, _settings(self.get_temp_dir()))
        self.assertIn("no ranking is claimed", text)
        rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| a")
                or line.startswith("| c")]
        self.assertEqual(rows, ["| attn_bam", "| attn_self", "| cut"])  # name order
        self.assertNotIn("highest", text.lower())

    def test_a_clear_difference_is_ranked_and_holm_corrected(self):
        records = _records({"cut": [0.20, 0.25, 0.22], "attn_bam": [0.40, 0.46, 0.41],
                            "attn_self": [0.10, 0.16, 0.12], "fastcut": [0.21, 0.24, 0.23]})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        screen = numbers["stages"]["screen"]
        self.assertTrue(screen["omnibus"]["differ"])
        compared = screen["vs_reference"]["downstream_miou"]
        raw = [compared[v]["p"] for v in ("attn_bam", "attn_self", "fastcut")]
        self.assertAllClose([compared[v]["holm_p"] for v in ("attn_bam", "attn_self",
                                                             "fastcut")],
                            statistics.holm(raw))
        text = page.report(numbers, _settings(self.get_temp_dir()))
        ranked = [line.split(" | ")[0] for line in text.splitlines()
                  if line.startswith(("| attn", "| cut", "| fast"))]
        self.assertEqual(ranked, ["| attn_bam", "| fastcut", "| cut", "| attn_self"])
        self.assertIn("attn_bam is better", text)
        self.assertIn("attn_self is worse", text)
        self.assertIn("In the screen (3 seeds), attn_bam beats CUT on downstream mIoU, "
                      "attn_self is worse after Holm's correction",
                      page.headline_paragraph(numbers))

    def test_methods_left_out_of_the_omnibus_test_are_not_ranked(self):
        records = _records({"cut": [0.20, 0.25, 0.22], "attn_bam": [0.40, 0.46, 0.41],
                            "attn_self": [0.10, 0.16, 0.12], "fastcut": [0.90]})
        settings = _settings(self.get_temp_dir(),
                             variants=("cut", "attn_bam", "attn_self", "fastcut"))
        numbers = summary.summarise(records, FakeScorers(), settings)
        self.assertTrue(numbers["stages"]["screen"]["omnibus"]["differ"])
        text = page.report(numbers, settings)
        ranked = [line.split(" | ")[0] for line in text.splitlines()
                  if line.startswith(("| attn", "| cut", "| fast"))]
        # fastcut's one seed has the highest mean; untested, it follows the ranked three.
        self.assertEqual(ranked, ["| attn_bam", "| cut", "| attn_self", "| fastcut"])
        self.assertIn("Left out of the test for missing or collapsed seeds, and so listed "
                      "unranked after the others: fastcut.", text)
        # The screen has runs left (fastcut's seeds 1 and 2): its omnibus verdict is interim.
        self.assertIn("So far (the 3 methods with every seed scored), the screen separates the "
                      "methods as a group", page.headline_paragraph(numbers))

    def test_seeds_whose_runs_share_no_machine_are_set_apart(self):
        # attn_bam - cut: -0.10, -0.04, -0.09 on CUT's machine, -0.09 on seed 3 on another.
        records = _records({"cut": [0.30, 0.20, 0.25, 0.22], "attn_bam": [0.20, 0.16, 0.16, 0.13],
                            "attn_self": [0.31, 0.22, 0.24, 0.20]})
        records["attn_bam_seed3"]["machine"] = "another CPU"
        for seed in range(4):
            records[f"attn_self_seed{seed}"]["machine"] = "another CPU"
        settings = _settings(self.get_temp_dir(), variants=("cut", "attn_bam", "attn_self"),
                             screen_seeds=(0, 1, 2, 3))
        numbers = summary.summarise(records, FakeScorers(), settings)
        compared = numbers["stages"]["screen"]["vs_reference"]["downstream_miou"]
        self.assertEqual(compared["attn_bam"]["mixed_seeds"], [3])
        self.assertEqual(compared["attn_self"]["mixed_seeds"], [0, 1, 2, 3])
        self.assertIsNone(compared["attn_self"]["one_machine"])
        # Seeds 0-2 alone: the paired test on fewer seeds, Holm over a family of one (attn_self
        # has no seed on CUT's machine). All 4 seeds give p 0.0097 (x 2 by Holm); 3, 0.054.
        alone = statistics.paired_comparison({0: 0.20, 1: 0.16, 2: 0.16},
                                             {0: 0.30, 1: 0.20, 2: 0.25})
        self.assertAllClose(compared["attn_bam"]["one_machine"]["mean"], -0.23 / 3)
        self.assertAllClose(compared["attn_bam"]["one_machine"]["holm_p"], alone.p_value)
        self.assertGreater(alone.p_value, statistics.ALPHA)
        self.assertLess(compared["attn_bam"]["holm_p"], statistics.ALPHA)
        text = page.report(numbers, settings)
        self.assertIn("  - seed 3: the two runs were trained on different machines, so its "
                      "difference includes the machines'; without it, attn_bam vs cut "
                      "(downstream mIoU): -0.077 (95 % CI ", text)
        self.assertIn("  - seeds 0, 1, 2 and 3: the two runs were trained on different "
                      "machines, so their differences include the machines'; no seed is left "
                      "to compare on one machine.", text)
        paragraph = page.headline_paragraph(numbers)
        self.assertIn("attn_bam is worse after Holm's correction", paragraph)
        self.assertIn("Without seed 3, whose runs were trained on two machines, attn_bam is "
                      "not distinguishable from CUT (attn_bam: -0.077, Holm-adjusted p = "
                      "0.054).", paragraph)
        self.assertIn("1 method has no CUT run on its machine yet, so its "
                      "difference includes the machines'.", paragraph)
        # Every pair on one machine: no word about machines.
        self.assertNotIn("machines", page.headline_paragraph(summary.summarise(
            _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.20, 0.16, 0.16]}),
            FakeScorers(), _settings(self.get_temp_dir()))))

    def test_a_method_pairs_with_cut_trained_again_on_its_machine(self):
        epyc = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.20, 0.16, 0.16]})
        records["attn_bam_seed2"]["machine"] = epyc
        settings = _settings(self.get_temp_dir())
        mixed = summary.summarise(records, FakeScorers(), settings)
        self.assertEqual(mixed["stages"]["screen"]["vs_reference"]["downstream_miou"]
                         ["attn_bam"]["mixed_seeds"], [2])
        self.assertEqual(mixed["machines"], {})
        # CUT's seed 2 trained again on the EPYC: 0.10 downstream, 0.25 label mIoU.
        again = plan.run_name("cut", 2, machine=plan.machine_tag(epyc))
        records[again] = record("cut", 2, 0.10, stage=plan.SAME_MACHINE, label=0.25,
                                machine=epyc)
        numbers = summary.summarise(records, FakeScorers(), settings)
        screen = numbers["stages"]["screen"]
        compared = screen["vs_reference"]["downstream_miou"]["attn_bam"]
        # attn_bam - cut: -0.10 and -0.04 on the Xeon, 0.16 - 0.10 on the EPYC; every pair on
        # one machine, and CUT's own entry keeps its own three runs.
        expected = statistics.paired_comparison({0: 0.20, 1: 0.16, 2: 0.16},
                                                {0: 0.30, 1: 0.20, 2: 0.10})
        self.assertAllClose(compared["mean"], expected.interval.mean)
        self.assertAllClose(compared["p"], expected.p_value)
        self.assertEqual((compared["mixed_seeds"], "one_machine" in compared), ([], False))
        self.assertEqual(screen["variants"]["cut"]["metrics"]["downstream_miou"]["values"],
                         {0: 0.30, 1: 0.20, 2: 0.25})
        self.assertAllClose(screen["detectable"]["sd_of_differences"],
                            np.std([-0.10, -0.04, 0.06], ddof=1))
        # The machine's own effect: CUT again minus CUT's own run, per metric.
        effect = numbers["machines"][epyc]
        self.assertEqual((effect["seeds"], effect["own_machines"]), ([2], ["a test"]))
        self.assertAllClose(effect["vs_own"]["downstream_miou"]["mean"], 0.10 - 0.25)
        self.assertAllClose(effect["vs_own"]["label_miou"]["mean"], 0.25 - 0.3)
        text = page.report(numbers, settings)
        self.assertIn(f"- on {epyc} (seed 2; CUT's own on a test): downstream mIoU -0.150 on "
                      "one seed; label mIoU -0.050 on one seed; KID (segmenter) +0.0000 on "
                      "one seed", text)
        self.assertNotIn("trained on different machines", text)
        self.assertNotIn("machines", page.headline_paragraph(numbers))
        # CUT again of a seed whose own run is not scored: said, not paired.
        records[plan.run_name("cut", 7, machine="a_third_cpu")] = record(
            "cut", 7, 0.2, stage=plan.SAME_MACHINE, machine="a third CPU")
        self.assertIn("- on a third CPU (seed 7): none pairs with a scored run of CUT's own "
                      "yet", page.report(summary.summarise(records, FakeScorers(), settings),
                                         settings))

    def test_a_stage_of_two_machines_says_which_trained_what(self):
        epyc = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.20, 0.16, 0.16],
                            "fastcut": [0.10, 0.12, 0.11]})
        settings = _settings(self.get_temp_dir())
        one_machine = page.report(summary.summarise(records, FakeScorers(), settings), settings)
        self.assertNotIn("Trained on", one_machine)
        records["attn_bam_seed2"]["machine"] = epyc
        for seed in range(3):
            records[plan.run_name("fastcut", seed)]["machine"] = epyc
        text = page.report(summary.summarise(records, FakeScorers(), settings), settings)
        self.assertIn(f"Trained on a test: attn_bam (all but seed 2), cut; on {epyc}: "
                      "attn_bam (seed 2), fastcut. Each run carries its machine's effect", text)

    def test_a_verdict_that_depends_on_the_pairing_is_told_both_ways(self):
        # attn_bam - cut: -0.10, -0.04, -0.09 on CUT's machine; seed 3 on the EPYC, 0.13,
        # -0.09 from CUT's own run of it but +0.08 from CUT trained again there (0.05).
        epyc = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        records = _records({"cut": [0.30, 0.20, 0.25, 0.22],
                            "attn_bam": [0.20, 0.16, 0.16, 0.13]})
        records["attn_bam_seed3"]["machine"] = epyc
        records[plan.run_name("cut", 3, machine=plan.machine_tag(epyc))] = record(
            "cut", 3, 0.05, stage=plan.SAME_MACHINE, machine=epyc)
        settings = _settings(self.get_temp_dir(), screen_seeds=(0, 1, 2, 3))
        numbers = summary.summarise(records, FakeScorers(), settings)
        compared = numbers["stages"]["screen"]["vs_reference"]["downstream_miou"]["attn_bam"]
        self.assertAllClose(compared["mean"], (-0.10 - 0.04 - 0.09 + 0.08) / 4)
        self.assertGreater(compared["holm_p"], statistics.ALPHA)
        self.assertEqual((compared["again_seeds"], compared["mixed_seeds"]), ([3], []))
        own = statistics.paired_comparison({0: 0.20, 1: 0.16, 2: 0.16, 3: 0.13},
                                           {0: 0.30, 1: 0.20, 2: 0.25, 3: 0.22})
        self.assertAllClose(compared["own_runs"]["mean"], -0.08)
        self.assertAllClose(compared["own_runs"]["holm_p"], own.p_value)  # a family of one
        self.assertLess(own.p_value, statistics.ALPHA)
        self.assertIn("  - seed 3: paired with CUT trained again on the method's machine; "
                      "with CUT's own run instead (another machine, as first reported), "
                      "attn_bam vs cut (downstream mIoU): -0.080 (95 % CI ",
                      page.report(numbers, settings))
        self.assertIn("Paired with CUT's own run of seed 3 instead, from another machine (as "
                      f"first reported), attn_bam is worse (-0.080, Holm-adjusted p = "
                      f"{own.p_value:.2g}).", page.headline_paragraph(numbers))

    def test_collapsed_and_failed_runs_are_apart_from_the_means(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "uag": [0.09, 0.08, 0.30]})
        records["uag_seed0"]["input_distance"] = 0.001
        records["uag_seed1"]["input_distance"] = 0.015
        records["uag_seed2"] = record("uag", 2, None, failed="NonFiniteSteps: 10 steps")
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        uag = numbers["stages"]["screen"]["variants"]["uag"]
        self.assertEqual(uag["collapsed"], [0, 1])
        self.assertEqual(list(uag["failed"]), [2])
        self.assertNotIn("downstream_miou", uag["metrics"])
        self.assertEqual(numbers["collapsed"], ["uag_seed0", "uag_seed1"])
        text = page.report(numbers, _settings(self.get_temp_dir()))
        self.assertIn("## Runs that returned their input", text)
        self.assertIn("- uag_seed0, uag_seed1", text)
        self.assertIn("| uag | 3 | 2 |", text)
        self.assertIn("- uag_seed2: NonFiniteSteps: 10 steps", text)
        self.assertIn("2 runs returned their input and are reported apart.",
                      page.headline_paragraph(numbers))

    def test_a_verdict_before_every_run_is_scored_is_called_interim(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.28, 0.24, 0.22]})
        records.update({f"cut_seed{s}": record("cut", s, 0.30 + s / 100, stage="confirm")
                        for s in (10, 11, 12, 13)})
        records.update({f"attn_bam_seed{s}": record("attn_bam", s, 0.10 + s / 100 + d,
                                                    stage="confirm")
                        for s, d in ((10, 0.0), (11, 0.004), (12, -0.003))})
        settings = _settings(self.get_temp_dir(), variants=("cut", "attn_bam"))
        interim = summary.summarise(records, FakeScorers(), settings)
        self.assertIn("attn_bam is worse after Holm's correction (an interim look: the verdict "
                      "is the complete stage's)", page.headline_paragraph(interim))
        records["attn_bam_seed13"] = record("attn_bam", 13, 0.23, stage="confirm")
        complete = summary.summarise(records, FakeScorers(), settings)
        runs = complete["stages"]["confirm"]["runs"]
        self.assertEqual(runs["scored"], runs["planned"])
        self.assertIn("attn_bam is worse after Holm's correction;",
                      page.headline_paragraph(complete))
        self.assertNotIn("interim", page.headline_paragraph(complete))

    def test_names_are_listed_as_a_sentence_lists_them(self):
        self.assertEqual(page._and(["a"]), "a")
        self.assertEqual(page._and(["a", "b"]), "a and b")
        self.assertEqual(page._and(["a", "b", "c"]), "a, b and c")

    def test_the_report_counts_the_runs_of_each_added_rendering(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.28, 0.24, 0.22]})
        records["cut_seed2"]["data_hash"] = "cccccccccccccccc"
        scorers = FakeScorers()
        scorers.record = {**scorers.record, "renderings": {
            "cccccccccccccccc": {"machine": "another CPU"},
            "dddddddddddddddd": {"machine": "a third CPU"}}}
        numbers = summary.summarise(records, scorers, _settings(self.get_temp_dir()))
        self.assertEqual(numbers["scorers"]["renderings"],
                         {"cccccccccccccccc": {"machine": "another CPU", "runs": 1},
                          "dddddddddddddddd": {"machine": "a third CPU", "runs": 0}})
        text = page.report(numbers, _settings(self.get_temp_dir()))
        self.assertIn("- data cccccccccccccccc: the same data set rendered again (on another "
                      "CPU)", text)
        self.assertIn("1 of the runs above was scored on it", text)
        self.assertIn("0 of the runs above were scored on it", text)

    def test_one_collapsed_run_is_named_in_the_singular(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "uag": [0.09, 0.08, 0.30]})
        records["uag_seed0"]["input_distance"] = 0.001
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        self.assertIn("1 run returned its input and is reported apart.",
                      page.headline_paragraph(numbers))

    def test_the_gap_share_places_downstream_between_floor_and_ceiling(self):
        # FakeScorers' floor 0.08 and ceiling 0.34: 0.08 -> 0, 0.34 -> 1, 0.21 -> 0.5.
        records = _records({"cut": [0.08, 0.34, 0.21]})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        gap = numbers["stages"]["screen"]["variants"]["cut"]["metrics"]["gap_closed"]
        self.assertAllClose([gap["values"][seed] for seed in (0, 1, 2)], [0.0, 1.0, 0.5])
        self.assertAllClose(gap["mean"], 0.5)
        text = page.report(numbers, _settings(self.get_temp_dir()))
        self.assertIn("share of the floor→ceiling gap", text)
        self.assertIn("| cut | 3 | 0 | 0.210 ± ", text)
        self.assertIn(" | 0.50 ± ", text)
        self.assertIn("goes 50 % (95 % interval ", page.headline_paragraph(numbers))

    def test_the_detectable_effect_comes_from_the_paired_spread(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.33, 0.21, 0.30],
                            "attn_self": [0.27, 0.22, 0.23]})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        found = numbers["stages"]["screen"]["detectable"]
        # By hand: differences [0.03, 0.01, 0.05] and [-0.03, 0.02, -0.02] have means 0.03 and
        # -0.01 and squared deviations 0.0008 + 0.0014 over 2 + 2 degrees of freedom.
        sd = np.sqrt(0.0022 / 4)
        self.assertAllClose(found["sd_of_differences"], sd, rtol=1e-9)
        # The paired t test over 3 seeds (df 2) at alpha 0.05 has 80 % power there. Power as
        # E[Phi(d - c sqrt(V / 2)) + Phi(-d - c sqrt(V / 2))], V ~ chi2(2) (density e^(-v/2) / 2),
        # d = effect / (sd / sqrt(3)), c the t(2) quantile 0.95 / sqrt(2 * 0.975 * 0.025).
        critical = 0.95 / np.sqrt(2 * 0.975 * 0.025)

        def power(effect):
            shift = effect / (sd / np.sqrt(3))
            return scipy.integrate.quad(lambda v: (
                scipy.special.ndtr(shift - critical * np.sqrt(v / 2))
                + scipy.special.ndtr(-shift - critical * np.sqrt(v / 2))) * np.exp(-v / 2) / 2,
                0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]

        self.assertAllClose(power(found["effect"]), 0.8, atol=1e-7)
        # 0.0765486065: this power solved for 0.8 by scipy.optimize.bisect, once.
        self.assertAllClose(found["effect"], 0.0765486065, rtol=1e-6)
        self.assertIn(f"is {found['effect']:.3f}", page.report(
            numbers, _settings(self.get_temp_dir())))

    def test_stages_are_summarised_apart(self):
        records = _records({"cut": [0.30, 0.20, 0.25], "qsattn_global": [0.2, 0.2, 0.2]})
        records.update({plan.run_name(v, s, 4): record(v, s, x, stage="budget", factor=4)
                        for v, x in (("cut", 0.4), ("qsattn_global", 0.3)) for s in range(3)})
        records.update({f"cut_seed{s}": record("cut", s, 0.2 + s / 100, stage="confirm")
                        for s in (10, 11, 12, 13)})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        self.assertEqual(numbers["stages"]["confirm"]["variants"]["cut"]["seeds"],
                         [10, 11, 12, 13])
        # Of the confirmation's 4 seeds, 2 without the comparison arm: said as such.
        del records["cut_seed12"], records["cut_seed13"]
        records.update({f"attn_bam_seed{s}": record("attn_bam", s, 0.1 + s / 50,
                                                    stage="confirm") for s in (10, 11)})
        partial = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        self.assertIn("In the confirmation (2 of 4 seeds so far), ",
                      page.headline_paragraph(partial))
        self.assertIn("With all 4 seeds (2 are scored so far), the smallest difference",
                      page.report(partial, _settings(self.get_temp_dir())))
        # Every seed has a run but an arm lacks some: the runs are counted, the look interim.
        records.update({f"cut_seed{s}": record("cut", s, 0.2 + s / 100, stage="confirm")
                        for s in (12, 13)})
        records["attn_bam_seed12"] = record("attn_bam", 12, 0.1, stage="confirm")
        interim = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        runs = interim["stages"]["confirm"]["runs"]
        self.assertEqual(runs["scored"], 7)
        self.assertGreater(runs["planned"], 7)
        self.assertIn(f"In the confirmation (4 seeds, 7 of {runs['planned']} runs so far), ",
                      page.headline_paragraph(interim))
        self.assertIn(f"With all 4 seeds (7 of its {runs['planned']} runs are scored so far)",
                      page.report(interim, _settings(self.get_temp_dir())))
        self.assertEqual(sorted(numbers["stages"]["budget"]["factors"]), ["1", "4"])
        self.assertAllClose(numbers["stages"]["budget"]["factors"]["4"]["variants"]["cut"]
                            ["metrics"]["downstream_miou"]["mean"], 0.4)
        text = page.report(numbers, _settings(self.get_temp_dir()))
        self.assertIn("| x4 | 0.400 ± 0.000 | 0.300 ± 0.000 |", text)


class HeadlineTest(tf.test.TestCase):

    def test_the_headline_counts_the_planned_runs(self):
        settings = _settings(self.get_temp_dir(), stages=("screen",))
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.28]})
        records["cut_seed2"].update(machine="a slower test", training_minutes=40.0,
                                    scoring_minutes=8.0)
        numbers = summary.summarise(records, FakeScorers(), settings)
        self.assertEqual((numbers["cost"]["runs"], numbers["cost"]["planned"]), (4, 6))
        # Two attn_bam runs left: 10 min of training and 2 of scoring on the machine that
        # trained attn_bam; on the other, 4 times as long, its pace on CUT.
        self.assertAllClose(numbers["cost"]["remaining_hours"],
                            {"a slower test": 96 / 60, "a test": 24 / 60})
        self.assertIn("; for the 2 planned runs left, about 1.6 h on a slower test; 0.4 h on "
                      "a test (from each variant's median cost, at each machine's pace)",
                      page.report(numbers, settings))
        paragraph = page.headline_paragraph(numbers)
        self.assertTrue(paragraph.startswith("4 of 6 planned runs scored, in progress."))
        # One seed of attn_bam: no paired interval yet, so no claim about CUT at all.
        self.assertNotIn("beat", paragraph)

    def test_the_confirmation_counts_before_the_screen_chooses_its_arms(self):
        settings = _settings(self.get_temp_dir())  # every stage, confirm seeds 10-13
        records = _records({"cut": [0.30, 0.20, 0.25], "attn_bam": [0.28]})
        numbers = summary.summarise(records, FakeScorers(), settings)
        # 6 screen runs, 2 arms (cut, the best attention module) x 4 seeds, cut's budget
        # runs x4 and x8 on 3 seeds.
        self.assertEqual(numbers["cost"]["planned"], 6 + 8 + 6)
        # At 10 min of training per screen length and 2 of scoring per run.
        minutes = 2 * 12 + 8 * 12 + 3 * (40 + 2) + 3 * (80 + 2)
        self.assertAllClose(numbers["cost"]["remaining_hours"], {"a test": minutes / 60})

    def test_the_time_left_follows_each_variant_at_each_machines_pace(self):
        def timed(variant, machine, training, scoring, factor=1):
            return record(variant, 0, 0.3, factor=factor, machine=machine,
                          training_minutes=training, scoring_minutes=scoring)

        records = [timed("cut", "xeon", 10, 2), timed("cut", "xeon", 10, 2),
                   timed("cut", "xeon", 12, 2), timed("qsattn_global", "xeon", 24, 2, factor=4),
                   # A run that shared the machine with other work: 10 times the others.
                   timed("cut", "epyc", 15, 4), timed("cut", "epyc", 15, 4),
                   timed("cut", "epyc", 150, 40), timed("cyclegan", "epyc", 30, 4)]
        left = [plan.Run("budget", "qsattn_global", 0, 8), plan.Run("budget", "cut", 0, 4),
                plan.Run("screen", "cyclegan", 0)]
        # On the EPYC: qsattn_global at the Xeon's 6 min per screen length times the EPYC's
        # pace on CUT (median 15 against 10), cut and cyclegan at their own medians, the one
        # unnamed run at the EPYC's median over its runs (22.5), scoring at its median (4).
        self.assertAllClose(summary.remaining_hours(left, records, "epyc", unnamed_runs=1),
                            (6 * 1.5 * 8 + 4 + 15 * 4 + 4 + 30 + 4 + 22.5 + 4) / 60)
        # On the Xeon: cyclegan at the EPYC's 30 min times the Xeon's pace (10 against 15).
        self.assertAllClose(summary.remaining_hours(left, records, "xeon", unnamed_runs=1),
                            (6 * 8 + 2 + 10 * 4 + 2 + 30 * 10 / 15 + 2 + 10 + 2) / 60)

    def test_the_gap_comes_from_the_stage_with_the_most_cut_seeds(self):
        # Floor 0.08, ceiling 0.34: the screen's CUT closes 50 %, the confirmation's 20 %.
        records = _records({"cut": [0.08, 0.34, 0.21]})
        records.update({f"cut_seed{s}": record("cut", s, x, stage="confirm")
                        for s, x in zip((10, 11, 12, 13), (0.132, 0.132, 0.128, 0.136))})
        numbers = summary.summarise(records, FakeScorers(), _settings(self.get_temp_dir()))
        self.assertIn("goes 20 % (95 % interval 18 to 22 %, 4 seeds) of the way",
                      page.headline_paragraph(numbers))

    def test_the_budget_verdict_says_whether_the_screen_order_survives(self):
        screen = {"cut": [0.30, 0.20, 0.25], "qsattn_global": [0.29, 0.23, 0.24]}
        longer = {"cut": [0.40, 0.42, 0.41], "qsattn_global": [0.30, 0.31, 0.30]}
        settings = _settings(self.get_temp_dir(), variants=("cut", "qsattn_global"))
        records = _records(screen)
        numbers = summary.summarise(records, FakeScorers(), settings)
        self.assertNotIn("Trained longer", page.headline_paragraph(numbers))
        records.update(_budget(longer, 4))
        numbers = summary.summarise(records, FakeScorers(), settings)
        paragraph = page.headline_paragraph(numbers)
        # Screen differences -0.01, +0.03, -0.01 (no difference); x4 -0.10, -0.11, -0.11.
        # The x8 runs are still to come: 12 of the 18 runs (2 arms x 3 seeds x 3 budgets).
        self.assertIn("Trained longer (the budget check, 3 seeds, 12 of 18 runs so far), "
                      "qsattn_global minus CUT in downstream mIoU is +0.003 [", paragraph)
        self.assertIn("] at 1x, -0.107 [", paragraph)
        self.assertIn("the verdict depends on the budget after Holm's correction over the "
                      "budgets (an interim look).", paragraph)
        records.update(_budget(longer, 8))
        paragraph = page.headline_paragraph(summary.summarise(records, FakeScorers(), settings))
        self.assertIn("Trained longer (the budget check, 3 seeds), qsattn_global", paragraph)
        self.assertNotIn("interim", paragraph)

    def test_the_budgets_are_one_holm_family(self):
        # Each longer budget alone is below 0.05 (p 0.020 and 0.039); corrected over the three
        # budgets, neither is (0.061 and 0.078).
        screen = {"cut": [0.30, 0.20, 0.25], "qsattn_global": [0.29, 0.23, 0.24]}
        settings = _settings(self.get_temp_dir(), variants=("cut", "qsattn_global"))
        records = _records(screen)
        records.update(_budget({"cut": [0.40, 0.42, 0.41], "qsattn_global": [0.35, 0.39, 0.37]},
                               4))
        records.update(_budget({"cut": [0.40, 0.42, 0.41], "qsattn_global": [0.34, 0.39, 0.37]},
                               8))
        numbers = summary.summarise(records, FakeScorers(), settings)
        factors = numbers["stages"]["budget"]["factors"]
        compared = [factors[f]["vs_reference"]["downstream_miou"]["qsattn_global"]
                    for f in ("1", "4", "8")]
        raw = [c["p"] for c in compared]
        self.assertLess(max(raw[1:]), statistics.ALPHA)
        self.assertAllClose([c["holm_p"] for c in compared], statistics.holm(raw))
        self.assertGreater(min(c["holm_p"] for c in compared), statistics.ALPHA)
        self.assertIn("at no budget are the two distinguishable after Holm's correction over "
                      "the budgets.", page.headline_paragraph(numbers))
        text = page.report(numbers, settings)
        self.assertIn(f"| x4 | 0.410 ± 0.025 | 0.370 ± 0.050 | -0.040 ± 0.025 | 3 | "
                      f"{compared[1]['holm_p']:.3g} |", text)
        # The detectable effect pools the differences of the three budgets.
        budget = numbers["stages"]["budget"]
        self.assertAllClose(budget["detectable"]["sd_of_differences"], statistics.pooled_sd(
            {"1": [-0.01, 0.03, -0.01], "4": [-0.05, -0.03, -0.04],
             "8": [-0.06, -0.03, -0.04]}))
        self.assertIn(f"With 3 seeds, the smallest difference in downstream mIoU from CUT that "
                      f"this stage finds with 80 % power (two-sided paired t-test, α = 0.05) is "
                      f"{budget['detectable']['effect']:.3f}", text)

    def test_the_budgets_compare_on_the_machine_of_the_longer_runs(self):
        epyc = "AMD EPYC, 2 cores (avx2, fma), no GPU"
        settings = _settings(self.get_temp_dir(), variants=("cut", "qsattn_global"))
        records = _records({"cut": [0.30, 0.20, 0.25], "qsattn_global": [0.29, 0.23, 0.24]})
        longer = _budget({"cut": [0.40, 0.42, 0.41], "qsattn_global": [0.35, 0.39, 0.37]}, 4)
        for r in longer.values():
            r["machine"] = epyc
        records.update(longer)
        # Both arms' screen runs trained again on the EPYC for seeds 0 and 1; of seed 2 only
        # qsattn_global's so far, so seed 2 keeps the screen's own pair.
        for variant, values in (("cut", (0.26, 0.22)), ("qsattn_global", (0.20, 0.15, 0.5))):
            for seed, x in enumerate(values):
                records[plan.run_name(variant, seed, machine=plan.machine_tag(epyc))] = record(
                    variant, seed, x, stage=plan.SAME_MACHINE, machine=epyc)
        numbers = summary.summarise(records, FakeScorers(), settings)
        budget = numbers["stages"]["budget"]
        self.assertEqual(budget["screen_steps_again"], {0: epyc, 1: epyc})
        at_screen_steps = budget["factors"]["1"]
        # The records' own values passed through, no arithmetic: compared exactly.
        self.assertEqual({v: e["metrics"]["downstream_miou"]["values"]
                          for v, e in at_screen_steps["variants"].items()},
                         {"cut": {0: 0.26, 1: 0.22, 2: 0.25},
                          "qsattn_global": {0: 0.20, 1: 0.15, 2: 0.24}})
        self.assertEqual(budget["runs"]["scored"], 12)
        # The screen keeps its own runs, and CUT alone tells the machine's effect.
        self.assertEqual(numbers["stages"]["screen"]["variants"]["qsattn_global"]["metrics"]
                         ["downstream_miou"]["values"], {0: 0.29, 1: 0.23, 2: 0.24})
        self.assertEqual(numbers["machines"][epyc]["trained_again"], [0, 1])
        self.assertIn("x1 seeds 0 and 1: the screen's runs trained again on " + epyc,
                      page.report(numbers, settings))

    def test_the_readme_block_is_replaced_and_the_rest_kept(self):
        path = os.path.join(self.get_temp_dir(), "README.md")
        with open(path, "w") as f:
            f.write(f"intro\n{page.HEADLINE_START}\nold\n{page.HEADLINE_END}\nrest\n")
        page.replace_headline(path, "new\n")
        with open(path) as f:
            self.assertEqual(f.read(), f"intro\n{page.HEADLINE_START}\nnew\n"
                                       f"{page.HEADLINE_END}\nrest\n")
        with open(path, "w") as f:
            f.write("no markers\n")
        with self.assertRaisesRegex(ValueError, f"--readme={path}: no block to replace"):
            page.replace_headline(path, "new\n")
