"""KID against a NumPy implementation of the unbiased polynomial MMD² on the same subsets."""
import numpy as np
import tensorflow as tf

from tfattncut.metrics import kid


def _numpy_mmd2(x, y):
    """Unbiased MMD² written out with explicit off-diagonal masks."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    off = ~np.eye(m, dtype=bool)
    return k_xx[off].mean() + k_yy[off].mean() - 2.0 * k_xy.mean()


class KIDTest(tf.test.TestCase):

    def test_matches_numpy_on_the_same_subsets(self):
        rng = np.random.default_rng(0)
        a = rng.normal(size=(60, 16)).astype(np.float32)
        b = (rng.normal(size=(45, 16)) * 1.3 + 0.2).astype(np.float32)
        mean, std = kid.kid(a, b, num_subsets=7, subset_size=30, seed=11)
        ids_a = kid.subset_indices(60, 7, 30, seed=[11, 0]).numpy()
        ids_b = kid.subset_indices(45, 7, 30, seed=[11, 1]).numpy()
        estimates = [_numpy_mmd2(a[i].astype(np.float64), b[j].astype(np.float64))
                     for i, j in zip(ids_a, ids_b)]
        self.assertAllClose(mean, np.mean(estimates), rtol=1e-10)
        self.assertAllClose(std, np.std(estimates), rtol=1e-8)

    def test_subset_size_is_capped_by_the_smaller_set(self):
        rng = np.random.default_rng(1)
        a = rng.normal(size=(12, 4)).astype(np.float32)
        b = rng.normal(size=(9, 4)).astype(np.float32)
        mean, _ = kid.kid(a, b, num_subsets=3, seed=2)
        ids_a = kid.subset_indices(12, 3, 9, seed=[2, 0]).numpy()
        ids_b = kid.subset_indices(9, 3, 9, seed=[2, 1]).numpy()
        expected = np.mean([_numpy_mmd2(a[i].astype(np.float64), b[j].astype(np.float64))
                            for i, j in zip(ids_a, ids_b)])
        self.assertAllClose(mean, expected, rtol=1e-10)

    def test_subsets_hold_distinct_rows(self):
        ids = kid.subset_indices(50, 20, 50, seed=[3, 0]).numpy()
        for row in ids:
            self.assertAllEqual(np.sort(row), np.arange(50))

    def test_same_distribution_is_near_zero_and_shift_is_not(self):
        rng = np.random.default_rng(2)
        a, b = rng.normal(size=(2, 200, 8)).astype(np.float32)
        same, _ = kid.kid(a, b, num_subsets=5, subset_size=100)
        shifted, _ = kid.kid(a, b + 1.0, num_subsets=5, subset_size=100)
        self.assertLess(abs(float(same)), 0.05)
        self.assertGreater(float(shifted), 1.0)

    def test_too_few_rows_are_refused(self):
        with self.assertRaisesRegex(ValueError, "at least 2"):
            kid.kid(np.zeros([1, 3], np.float32), np.zeros([5, 3], np.float32))
