"""Confidence intervals and paired comparisons, against SciPy's t distribution."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from scipy import stats

from tfattncut.evaluation import statistics


class IntervalTest(tf.test.TestCase, parameterized.TestCase):

    def test_tabulated_quantiles_match_scipy(self):
        for df in range(1, 31):  # tabulated to 4 decimals: within half the last digit
            self.assertAllClose(statistics.t_quantile_975(df), stats.t.ppf(0.975, df),
                                atol=5e-5, rtol=0)
        # Beyond the table: the Cornish-Fisher expansion.
        for df in (31, 60, 1000):
            self.assertAllClose(statistics.t_quantile_975(df), stats.t.ppf(0.975, df),
                                atol=1e-4, rtol=0)

    @parameterized.parameters([[0.5, 0.7, 0.6]], [[1.0, 2.0]], [[3.0, -1.0, 4.0, 1.5, 9.0]])
    def test_mean_interval_equals_scipy_t_interval(self, values):
        interval = statistics.mean_interval(values)
        low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                     scale=stats.sem(values))
        self.assertAllClose([interval.mean, interval.low, interval.high],
                            [np.mean(values), low, high], rtol=1e-4)
        self.assertEqual(interval.n, len(values))

    def test_three_seeds_by_hand(self):
        # mean 0.6, sample sd 0.1, half width t(2) * 0.1 / sqrt(3) = 4.3027 * 0.057735.
        interval = statistics.mean_interval([0.5, 0.7, 0.6])
        self.assertAllClose(interval.half_width, 4.3027 * 0.1 / np.sqrt(3), rtol=1e-6)
        self.assertEqual(interval.format(3), "0.600 ± 0.248")

    def test_one_value_has_no_interval(self):
        interval = statistics.mean_interval([0.42])
        self.assertIsNone(interval.half_width)
        self.assertTrue(interval.contains_zero())
        self.assertEqual(interval.format(2), "0.42 (n=1)")
        with self.assertRaisesRegex(ValueError, "no values"):
            statistics.mean_interval([])

    def test_overlap_needs_two_intervals_sharing_a_value(self):
        a = statistics.Interval(0.5, 0.1, 3)  # [0.4, 0.6]
        self.assertTrue(a.overlaps(statistics.Interval(0.65, 0.1, 3)))  # [0.55, 0.75]
        self.assertFalse(a.overlaps(statistics.Interval(0.8, 0.1, 3)))  # [0.7, 0.9]
        self.assertFalse(a.overlaps(statistics.Interval(0.5, None, 1)))  # no interval

    def test_paired_difference_uses_the_common_seeds(self):
        interval, seeds = statistics.paired_difference({0: 0.5, 1: 0.6, 2: 0.9},
                                                       {0: 0.4, 1: 0.4, 3: 0.1})
        self.assertEqual(seeds, [0, 1])
        expected = statistics.mean_interval([0.1, 0.2])
        self.assertAllClose([interval.mean, interval.half_width],
                            [expected.mean, expected.half_width])
        self.assertEqual(statistics.paired_difference({0: 1.0}, {1: 1.0}), (None, []))


class DescribeTest(tf.test.TestCase):

    def test_an_interval_around_zero_claims_nothing(self):
        text = statistics.describe_difference(statistics.mean_interval([0.1, -0.1, 0.05]),
                                              "mIoU", "qsattn_global", "cut")
        self.assertIn("not distinguishable at this budget", text)
        self.assertNotIn("better", text)

    def test_direction_follows_the_metric(self):
        positive = statistics.mean_interval([0.10, 0.11, 0.12])
        self.assertIn("qsattn_global is better", statistics.describe_difference(
            positive, "mIoU", "qsattn_global", "cut", higher_is_better=True))
        self.assertIn("qsattn_global is worse", statistics.describe_difference(
            positive, "FID", "qsattn_global", "cut", higher_is_better=False))

    def test_single_seed_and_no_seed(self):
        self.assertIn("no conclusion", statistics.describe_difference(
            statistics.mean_interval([0.3]), "mIoU", "a", "cut"))
        self.assertIn("no seed in common", statistics.describe_difference(
            None, "mIoU", "a", "cut"))
