"""The study's statistics against hand computations and independent formulas."""
import math

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from scipy import stats

from tfattncut.study import statistics


class IntervalTest(tf.test.TestCase, parameterized.TestCase):

    def test_three_seeds_by_hand(self):
        # mean 0.6, sample sd 0.1, half width t(2) * 0.1 / sqrt(3), t(2) = 4.302653 (tables).
        interval = statistics.mean_interval([0.5, 0.7, 0.6])
        self.assertAllClose(interval.half_width, 4.302653 * 0.1 / math.sqrt(3), rtol=1e-6)
        self.assertEqual(interval.format(3), "0.600 ± 0.248")
        self.assertEqual(interval.n, 3)

    def test_one_value_has_no_interval(self):
        interval = statistics.mean_interval([0.42])
        self.assertIsNone(interval.half_width)
        self.assertIsNone(interval.low)
        self.assertEqual(interval.format(2), "0.42 (n=1)")
        with self.assertRaisesRegex(ValueError, "no values"):
            statistics.mean_interval([])

    def test_round_trip_through_json_dicts(self):
        interval = statistics.mean_interval([1.0, 2.0, 4.0])
        self.assertEqual(statistics.Interval.from_dict(interval.to_dict()), interval)


class PairedTest(tf.test.TestCase):

    def test_paired_comparison_uses_the_common_seeds_and_a_paired_t_test(self):
        method, reference = {0: 0.5, 1: 0.6, 2: 0.9, 5: 0.1}, {0: 0.4, 1: 0.4, 2: 0.6, 3: 0.1}
        comparison = statistics.paired_comparison(method, reference)
        self.assertEqual(comparison.seeds, (0, 1, 2))
        differences = np.array([0.1, 0.2, 0.3])
        # t = mean / (sd / sqrt(n)) = 0.2 / (0.1 / sqrt(3)); two-sided p from t(2).
        t = 0.2 / (0.1 / math.sqrt(3))
        self.assertAllClose(comparison.p_value, 2 * stats.t.sf(t, 2), rtol=1e-9)
        self.assertAllClose(comparison.interval.mean, differences.mean(), rtol=1e-12)
        self.assertIsNone(statistics.paired_comparison({0: 1.0}, {1: 1.0}))

    def test_no_spread_or_one_seed_gives_no_p(self):
        self.assertIsNone(statistics.paired_comparison({0: 1.0, 1: 2.0},
                                                       {0: 0.5, 1: 1.5}).p_value)
        self.assertIsNone(statistics.paired_comparison({0: 1.0}, {0: 0.5}).p_value)

    def test_holm_by_hand(self):
        # Sorted 0.01, 0.02, 0.04 of m = 3: x3, x2, x1 -> 0.03, 0.04, 0.04 (made monotone).
        adjusted = statistics.holm([0.04, 0.01, None, 0.02])
        self.assertIsNone(adjusted[2])
        self.assertAllClose([adjusted[i] for i in (0, 1, 3)], [0.04, 0.03, 0.04])
        self.assertEqual(statistics.holm([0.6, 0.9]), [1.0, 1.0])

    def test_described_differences_claim_only_what_holm_allows(self):
        interval = statistics.mean_interval([0.1, 0.11, 0.12])
        significant = statistics.PairedComparison(interval, (0, 1, 2), 0.001, 0.003)
        self.assertIn("a is better", statistics.describe_comparison(
            significant, "mIoU", "a", "cut"))
        self.assertIn("a is worse", statistics.describe_comparison(
            significant, "KID", "a", "cut", higher_is_better=False))
        # Significant alone, not after the family's correction: no claim.
        corrected_away = statistics.PairedComparison(interval, (0, 1, 2), 0.02, 0.06)
        text = statistics.describe_comparison(corrected_away, "mIoU", "a", "cut")
        self.assertIn("Holm-adjusted p = 0.06", text)
        self.assertIn("not distinguishable", text)


class OmnibusTest(tf.test.TestCase):

    def test_friedman_and_block_anova_by_hand(self):
        values = {"a": {0: 1.0, 1: 2.0, 2: 3.0}, "b": {0: 2.0, 1: 3.5, 2: 3.2},
                  "c": {0: 3.0, 1: 3.0, 2: 5.0, 7: 9.0}}
        result = statistics.omnibus(values)
        self.assertEqual(result.seeds, (0, 1, 2))
        table = np.array([[1.0, 2.0, 3.0], [2.0, 3.5, 3.0], [3.0, 3.2, 5.0]])  # [seed, method]
        # Friedman: ranks within each seed, chi² = 12 / (n k (k+1)) Σ R_j² - 3 n (k+1).
        ranks = np.array([stats.rankdata(row) for row in table])
        n, k = table.shape
        chi2 = 12 / (n * k * (k + 1)) * (ranks.sum(0) ** 2).sum() - 3 * n * (k + 1)
        ties = sum((np.unique(row, return_counts=True)[1] ** 3 - 1).sum() for row in table)
        chi2 /= 1 - ties / (n * k * (k ** 2 - 1))
        self.assertAllClose(result.friedman_statistic, chi2, rtol=1e-9)
        self.assertAllClose(result.friedman_p, stats.chi2.sf(chi2, k - 1), rtol=1e-9)
        # Two-way ANOVA without replication: SS_methods / (k-1) over SS_residual / ((k-1)(n-1)).
        grand = table.mean()
        ss_methods = n * ((table.mean(0) - grand) ** 2).sum()
        ss_seeds = k * ((table.mean(1) - grand) ** 2).sum()
        ss_residual = ((table - grand) ** 2).sum() - ss_methods - ss_seeds
        f = (ss_methods / (k - 1)) / (ss_residual / ((k - 1) * (n - 1)))
        self.assertAllClose(result.anova_f, f, rtol=1e-9)
        self.assertAllClose(result.anova_p, stats.f.sf(f, k - 1, (k - 1) * (n - 1)),
                            rtol=1e-9)

    def test_clearly_different_methods_differ_and_alike_ones_do_not(self):
        rng = np.random.default_rng(0)
        alike = {m: {s: float(rng.normal()) for s in range(6)} for m in "abcd"}
        self.assertFalse(statistics.omnibus(alike).differ)
        apart = {m: {s: 10.0 * i + float(rng.normal()) for s in range(6)}
                 for i, m in enumerate("abcd")}
        self.assertTrue(statistics.omnibus(apart).differ)

    def test_too_few_methods_or_seeds(self):
        self.assertIsNone(statistics.omnibus({"a": {0: 1.0, 1: 2.0}, "b": {0: 1.0, 1: 3.0}}))
        self.assertIsNone(statistics.omnibus({m: {0: 1.0} for m in "abc"}))


class PowerTest(tf.test.TestCase):

    def test_detectable_difference_has_the_asked_power_by_simulation(self):
        sd, seeds = 0.04, 3
        effect = statistics.detectable_difference(sd, seeds)
        # Independent check: simulate paired t-tests with that true difference.
        rng = np.random.default_rng(1)
        samples = rng.normal(effect, sd, size=(40_000, seeds))
        p = stats.ttest_1samp(samples, 0.0, axis=1).pvalue
        self.assertAllClose((p < 0.05).mean(), 0.8, atol=0.01)
        # The normal approximation (z_{.975} + z_{.8}) sd / sqrt(n) underestimates it at n = 3.
        self.assertGreater(effect, (1.95996 + 0.84162) * sd / math.sqrt(seeds))

    def test_more_seeds_detect_less_and_no_spread_detects_nothing(self):
        self.assertLess(statistics.detectable_difference(0.04, 10),
                        statistics.detectable_difference(0.04, 3))
        self.assertIsNone(statistics.detectable_difference(0.04, 1))
        self.assertIsNone(statistics.detectable_difference(0.0, 5))

    def test_pooled_sd_by_hand(self):
        # a: deviations ±1 (SS 2, df 1); b: 1, 2, 3 (SS 2, df 2) -> sqrt(4 / 3).
        self.assertAllClose(statistics.pooled_sd({"a": [1.0, 3.0], "b": [1.0, 2.0, 3.0],
                                                  "c": [5.0]}), math.sqrt(4 / 3))
        self.assertIsNone(statistics.pooled_sd({"a": [1.0]}))
