"""FID against the TTUR / pytorch-fid formula with scipy.linalg.sqrtm, and closed forms."""
import numpy as np
import scipy.linalg
import tensorflow as tf
from absl.testing import parameterized

from tfattncut.metrics import fid, streaming


def _scipy_fid(a, b):
    """The reference code's computation: np.cov (N - 1) and a general matrix sqrt."""
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * covmean)


def _moments(rows, batch=128):
    moments = streaming.Moments(rows.shape[1])
    for start in range(0, len(rows), batch):
        moments.update(rows[start:start + batch])
    return moments


class FIDTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(0, 1, 2, 3)
    def test_matches_scipy_sqrtm(self, seed):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(500, 64))
        b = rng.normal(loc=0.3, size=(500, 64)) @ rng.normal(scale=0.4, size=(64, 64))
        value = fid.fid(_moments(a), _moments(b))
        self.assertEqual(value.dtype, tf.float64)
        self.assertAllClose(value, _scipy_fid(a, b), rtol=1e-6, atol=0)

    def test_set_with_itself_is_zero(self):
        a = np.random.default_rng(5).normal(size=(500, 64))
        self.assertAllClose(fid.fid(_moments(a), _moments(a)), 0.0, atol=1e-8)

    def test_singular_diagonal_covariances_match_closed_form(self):
        # For commuting (diagonal) covariances Tr((ΣaΣb)^½) = Σ sqrt(a_i b_i); zero variances
        # make both singular, as with fewer images than feature dimensions.
        var_a = np.array([0.0, 1.0, 4.0, 0.0, 2.5])
        var_b = np.array([1.0, 0.0, 9.0, 0.0, 0.5])
        mean_a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
        mean_b = np.array([1.0, 1.0, 0.0, 3.0, 4.5])
        expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
        value = fid.frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b))
        self.assertAllClose(value, expected, rtol=1e-12, atol=1e-12)
