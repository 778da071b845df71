"""measures.translation_scores against NumPy / SciPy computations of each score from the
same network outputs: the label scorer's logits and features are taken by calling the
network here, and every metric after that is written out in float64 NumPy."""
import dataclasses

import numpy as np
import scipy.linalg
import tensorflow as tf

from tests.metrics.test_fidelity import _numpy_psnr, _numpy_ssim
from tests.study.fixtures import TINY_SEGMENTER, tiny_data
from tfattncut.evaluation import segmenter
from tfattncut.models.segmenter import NUM_CLASSES, build_segmenter
from tfattncut.study import measures, scorers
from tfattncut.study.data import Split

IMAGES = 16  # per split: more rows than the 12 features (width 4), so both covariances are
# full rank and scipy's sqrtm has a well-conditioned product to work on


class _IgnoredBand:
    """The study data with testA's top 8 label rows set to the ignore label 255 (the rendered
    scenes have none), so that label_miou must leave those pixels out."""

    def __init__(self, data):
        self.data = data

    def split(self, name):
        split = self.data.split(name)
        if name != "test_a":
            return split
        labels = split.labels.copy()
        labels[:, :8] = 255
        return Split(split.pixels, labels)


def _network_inputs(pixels):
    """uint8 -> float32 [-1, 1], the same float32 operations as pixels.from_uint8."""
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def _numpy_miou(labels, predictions):
    """Confusion-matrix mean IoU over all pixels, label 255 left out, classes with no union
    skipped."""
    keep = labels != 255
    matrix = np.bincount(labels[keep].astype(np.int64) * NUM_CLASSES + predictions[keep],
                         minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)
    true_positive = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    return np.mean(true_positive[union > 0] / union[union > 0])


def _numpy_mmd2(x, y):
    """Unbiased MMD² over every row, k(a, b) = (a·b / d + 1)³, diagonals masked out."""
    m, d = x.shape
    off = ~np.eye(m, dtype=bool)
    k_xx, k_yy, k_xy = ((p @ q.T / d + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    return k_xx[off].mean() + k_yy[off].mean() - 2.0 * k_xy.mean()


def _scipy_fid(a, b):
    """TTUR / pytorch-fid: np.cov (N - 1) and a general matrix square root."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return (np.sum((a.mean(0) - b.mean(0)) ** 2)
            + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


class TranslationScoresTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = _IgnoredBand(tiny_data(count=IMAGES))
        # An untrained width-4 segmenter: the scores only need some fixed network, and this
        # one already predicts about ten classes on the scenes.
        cls.label_scorer = build_segmenter(width=TINY_SEGMENTER.width, seed=0)
        cls.scorers = scorers.Scorers(cls.label_scorer, {
            "fingerprint": "0", "data_hash": "0", "references": {},
            "segmenter_settings": dataclasses.asdict(TINY_SEGMENTER),
            "downstream_seeds": [0]})
        test_a = cls.data.split("test_a")
        paired = cls.data.split("test_a_as_b").pixels
        # testA_as_B plus fixed noise: near the paired target, far from the input testA.
        noise = np.random.default_rng(0).integers(-24, 25, size=paired.shape)
        cls.translated = np.clip(paired.astype(np.int64) + noise, 0, 255).astype(np.uint8)
        cls.test_a, cls.paired = test_a, paired
        cls.scores = measures.translation_scores(cls.scorers, cls.data, cls.translated,
                                                 kid_seed=3)

    def _logits_and_features(self, pixels):
        """The label scorer's logits and float64 [N, 3w] features (spatial mean of what its
        last layer sees), from one call of the network on every image."""
        outputs = segmenter.logits_and_features(self.label_scorer)
        logits, hidden = outputs(_network_inputs(pixels), training=False)
        return logits.numpy(), hidden.numpy().astype(np.float64).mean(axis=(1, 2))

    def test_fixture_exercises_every_path(self):
        self.assertEqual(sorted(self.scores), ["fid_seg", "input_distance", "kid_seg",
                                               "label_miou", "psnr", "ssim"])
        self.assertTrue(np.any(self.test_a.labels == 255))
        self.assertGreater(np.abs(self.test_a.pixels.astype(int) - self.paired).mean(), 10)
        logits, _ = self._logits_and_features(self.translated)
        self.assertGreater(len(np.unique(logits.argmax(-1))), 3)

    def test_label_miou(self):
        logits, _ = self._logits_and_features(self.translated)
        expected = _numpy_miou(self.test_a.labels, logits.argmax(-1))
        # The same argmax of the same logits and integer counts; only the float64 division
        # and mean differ in order: 1e-12.
        self.assertAllClose(self.scores["label_miou"], expected, rtol=1e-12, atol=0)
        # And the ignored band matters: counting it as class 0 gives another number.
        labels = np.where(self.test_a.labels == 255, 0, self.test_a.labels)
        self.assertNotAllClose(self.scores["label_miou"],
                               _numpy_miou(labels, logits.argmax(-1)), rtol=1e-3)

    def test_kid_seg(self):
        _, fake = self._logits_and_features(self.translated)
        _, real = self._logits_and_features(self.data.split("test_b").pixels)
        self.assertEqual(len(fake), len(real))  # so each of KID's subsets holds every row
        expected = _numpy_mmd2(fake, real)
        # Both in float64, but the score's features are float32 spatial means where these are
        # float64 ones (up to ~1e-6 apart, relative), and MMD² is a small difference of
        # kernel sums near 1 each, which magnifies that: 1.4e-6 relative here, so 1e-4.
        self.assertAllClose(self.scores["kid_seg"], expected, rtol=1e-4, atol=0)

    def test_fid_seg(self):
        _, fake = self._logits_and_features(self.translated)
        _, real = self._logits_and_features(self.data.split("test_b").pixels)
        # The score's float32 features (above) and its eigh-based square root against float64
        # features and scipy's Schur-based sqrtm: 7e-7 relative here, so 1e-4.
        self.assertAllClose(self.scores["fid_seg"], _scipy_fid(fake, real), rtol=1e-4, atol=0)

    def test_psnr_and_ssim_against_the_paired_target(self):
        images, targets = (p.astype(np.float64) / 127.5 - 1.0
                           for p in (self.translated, self.paired))
        # tf.image.psnr/ssim run in float32 against float64 NumPy (as in
        # tests/metrics/test_fidelity.py): 1e-4; SSIM is O(1), so also atol 1e-4.
        self.assertAllClose(self.scores["psnr"], _numpy_psnr(images, targets).mean(),
                            rtol=1e-4)
        self.assertAllClose(self.scores["ssim"], _numpy_ssim(images, targets).mean(),
                            rtol=1e-4, atol=1e-4)
        # Scored against testA instead, both would be far off: the target is testA_as_B.
        inputs = self.test_a.pixels.astype(np.float64) / 127.5 - 1.0
        self.assertGreater(self.scores["psnr"] - _numpy_psnr(images, inputs).mean(), 5.0)
        self.assertGreater(self.scores["ssim"] - _numpy_ssim(images, inputs).mean(), 0.2)

    def test_input_distance(self):
        total = np.abs(self.translated.astype(np.int64) - self.test_a.pixels).sum()
        expected = total / (self.translated.size * 255.0)
        self.assertGreater(expected, 0.05)
        # An exact integer sum against the score's float64 mean: 1e-12.
        self.assertAllClose(self.scores["input_distance"], expected, rtol=1e-12, atol=0)
