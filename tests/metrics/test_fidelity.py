"""PSNR and SSIM against NumPy / SciPy implementations of their textbook definitions."""
import numpy as np
import scipy.signal
import tensorflow as tf

from tfattncut.metrics import fidelity


def _numpy_psnr(a, b):
    """On 8-bit scale: [-1, 1] -> [0, 255], peak 255."""
    a, b = (a.astype(np.float64) + 1.0) * 127.5, (b.astype(np.float64) + 1.0) * 127.5
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    return 10.0 * np.log10(255.0**2 / mse)


def _numpy_ssim(a, b):
    """Wang et al. 2004 on [0, 255], 11x11 Gaussian (sigma 1.5), valid windows, mean over
    positions then channels."""
    a, b = (a.astype(np.float64) + 1.0) * 127.5, (b.astype(np.float64) + 1.0) * 127.5
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    r = np.arange(11) - 5.0
    window = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()

    def local(x):
        return scipy.signal.correlate2d(x, window, mode="valid")

    scores = []
    for x_img, y_img in zip(a, b):
        per_channel = []
        for c in range(a.shape[-1]):
            x, y = x_img[..., c], y_img[..., c]
            mu_x, mu_y = local(x), local(y)
            var_x = local(x * x) - mu_x**2
            var_y = local(y * y) - mu_y**2
            cov = local(x * y) - mu_x * mu_y
            ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
                        / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)))
            per_channel.append(ssim_map.mean())
        scores.append(np.mean(per_channel))
    return np.array(scores)


class FidelityTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.targets = rng.uniform(-1, 1, size=(3, 24, 20, 3)).astype(np.float32)
        noise = rng.normal(scale=[[[[0.05]]], [[[0.2]]], [[[0.5]]]], size=self.targets.shape)
        self.images = np.clip(self.targets + noise, -1, 1).astype(np.float32)

    def test_psnr_matches_numpy(self):
        # float32 means against float64 NumPy: 1e-4.
        self.assertAllClose(fidelity.psnr(self.images, self.targets),
                            _numpy_psnr(self.images, self.targets), rtol=1e-4)

    def test_ssim_matches_numpy(self):
        got = fidelity.ssim(self.images, self.targets)
        # float32 filters against float64 NumPy; SSIM is O(1): 1e-4.
        self.assertAllClose(got, _numpy_ssim(self.images, self.targets), rtol=1e-4, atol=1e-4)
        # More noise, lower SSIM: the three images are ordered by noise level.
        self.assertAllEqual(np.argsort(-got.numpy()), [0, 1, 2])

    def test_identical_images_have_ssim_one(self):
        # Numerator and denominator are the same terms rounded in other orders: 1e-4.
        self.assertAllClose(fidelity.ssim(self.targets, self.targets), np.ones(3), atol=1e-4)
