"""Losses against NumPy implementations of docs/design/losses.md."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfattncut import losses


def numpy_patch_nce(q, k, tau, from_minibatch=False, labels=None):
    """labels [B, P]: the keys of a query's class (>= 0), other than its own, are left out
    of its denominator (exp(-inf) = 0)."""
    b, p, d = q.shape
    l_pos = np.sum(q * k, axis=-1).reshape(-1, 1)
    if from_minibatch:
        q, k = q.reshape(1, b * p, d), k.reshape(1, b * p, d)
    l_neg = np.einsum("gid,gjd->gij", q, k)
    for g in range(l_neg.shape[0]):
        np.fill_diagonal(l_neg[g], -10.0)
    if labels is not None:
        labels = labels.reshape(l_neg.shape[:2])
        same = (labels[:, :, None] == labels[:, None, :]) & (labels[:, :, None] >= 0)
        l_neg = np.where(same & ~np.eye(l_neg.shape[1], dtype=bool), -np.inf, l_neg)
    logits = np.concatenate([l_pos, l_neg.reshape(b * p, -1)], axis=1) / tau
    logits -= logits.max(axis=1, keepdims=True)
    log_prob = logits[:, 0] - np.log(np.exp(logits).sum(axis=1))
    return -log_prob.mean()


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class PatchNCETest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(False, True)
    def test_matches_numpy(self, from_minibatch):
        rng = np.random.default_rng(0)
        q = unit(rng.normal(size=(2, 6, 8))).astype(np.float32)
        k = unit(rng.normal(size=(2, 6, 8))).astype(np.float32)
        got = losses.patch_nce_loss(q, k, 0.07, from_minibatch)
        # float32 against float64 NumPy: 1e-4 here and in the losses below.
        self.assertAllClose(got, numpy_patch_nce(q.astype(np.float64), k.astype(np.float64),
                                                 0.07, from_minibatch), rtol=1e-4)

    def test_diagonal_is_masked(self):
        # Identical queries and keys: without the mask the own key would also be a negative
        # at logit 1/τ; with it, the positive's loss is log(1 + (P-1)·e^{(c-1)/τ} + e^{(-10-1)/τ}).
        q = unit(np.eye(4, dtype=np.float32))[None]  # orthogonal: off-diagonal scores c = 0
        got = losses.patch_nce_loss(q, q, 0.07)
        expected = np.log(1 + 3 * np.exp(-1 / 0.07) + np.exp(-11 / 0.07))
        self.assertAllClose(got, expected, rtol=1e-4)

    def test_keys_get_no_gradient(self):
        rng = np.random.default_rng(1)
        q = tf.constant(unit(rng.normal(size=(1, 5, 4))), tf.float32)
        k = tf.constant(unit(rng.normal(size=(1, 5, 4))), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([q, k])
            loss = losses.patch_nce_loss(q, k)
        self.assertIsNone(tape.gradient(loss, k))
        self.assertGreater(float(tf.reduce_sum(tf.abs(tape.gradient(loss, q)))), 0.0)

    def test_layer_mean_nce_matches_numpy(self):
        rng = np.random.default_rng(2)
        pairs = [[rng.normal(size=(2, p, 8)) for _ in range(2)] for p in (5, 3)]
        pairs = [[x / np.linalg.norm(x, axis=-1, keepdims=True) for x in pair] for pair in pairs]
        got = losses.layer_mean_nce([tf.constant(q, tf.float32) for q, _ in pairs],
                                    [tf.constant(k, tf.float32) for _, k in pairs], 2.0, 0.07,
                                    negatives_from_minibatch=True)
        want = 2.0 * np.mean([numpy_patch_nce(q, k, 0.07, True) for q, k in pairs])
        self.assertAllClose(got, want, rtol=1e-4)  # float32 against float64


class LabelAwarePatchNCETest(tf.test.TestCase, parameterized.TestCase):
    """PatchNCE whose negatives leave out the keys of the query's class."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(3)
        self.q = unit(rng.normal(size=(2, 6, 8))).astype(np.float32)
        self.k = unit(rng.normal(size=(2, 6, 8))).astype(np.float32)

    @parameterized.parameters(False, True)
    def test_labels_that_all_differ_or_are_unknown_give_plain_patch_nce(self, from_minibatch):
        plain = losses.patch_nce_loss(self.q, self.k, 0.07, from_minibatch)
        for labels in (np.arange(12).reshape(2, 6), np.full([2, 6], -1)):
            # Nothing is masked, so the same ops give the same bits.
            self.assertAllEqual(
                losses.patch_nce_loss(self.q, self.k, 0.07, from_minibatch, labels), plain)

    @parameterized.parameters(False, True)
    def test_keys_of_the_querys_class_leave_the_denominator(self, from_minibatch):
        labels = np.array([[0, 1, 0, 2, -1, -1], [1, 1, 1, 0, 2, 3]])
        q, k = tf.constant(self.q), tf.constant(self.k)
        with tf.GradientTape() as tape:
            tape.watch(q)
            got = losses.patch_nce_loss(q, k, 0.07, from_minibatch, labels)
        want = numpy_patch_nce(self.q.astype(np.float64), self.k.astype(np.float64), 0.07,
                               from_minibatch, labels)
        self.assertAllClose(got, want, rtol=1e-4)  # float32 against float64
        self.assertLess(float(got), float(losses.patch_nce_loss(q, k, 0.07, from_minibatch)))
        self.assertAllEqual(np.isfinite(tape.gradient(got, q)), np.ones_like(self.q, bool))

    def test_layer_mean_nce_passes_each_layer_its_labels(self):
        labels = [np.array([[0, 0, 1, 1, 2, 2]] * 2), None]
        got = losses.layer_mean_nce([self.q, self.q], [self.k, self.k], 2.0, 0.07,
                                    patch_labels=labels)
        want = np.mean([numpy_patch_nce(self.q, self.k, 0.07, labels=labels[0]),
                        numpy_patch_nce(self.q, self.k, 0.07)])
        self.assertAllClose(got, 2.0 * want, rtol=1e-4)  # float32 against float64


class PixelCrossEntropyTest(tf.test.TestCase):

    def test_matches_numpy_per_image_means_over_labelled_pixels(self):
        rng = np.random.default_rng(4)
        logits = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
        labels = rng.integers(0, 6, size=(3, 4, 5))
        labels[0, :2] = 255
        labels[2] = 255  # an image without a labelled pixel adds 0
        got = losses.pixel_cross_entropy(tf.constant(logits, tf.float16), labels, 255)
        exact = logits.astype(np.float16).astype(np.float64)  # the logits the loss gets
        shifted = exact - exact.max(-1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        per_image = []
        for image in range(3):
            picked = [-log_softmax[image, y, x, labels[image, y, x]]
                      for y in range(4) for x in range(5) if labels[image, y, x] != 255]
            per_image.append(np.mean(picked) if picked else 0.0)
        # float16 logits (as under --mixed_precision), computed in float32 against float64.
        self.assertAllClose(got, np.mean(per_image), rtol=1e-5)
        self.assertEqual(got.dtype, tf.float32)


class GANLossTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(2)
        self.real = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
        self.fake = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)

    def test_lsgan(self):
        r, f = losses.discriminator_terms("lsgan", self.real, self.fake)
        self.assertAllClose(losses.discriminator_loss("lsgan", r, f),
                            0.5 * (np.mean((self.real - 1) ** 2) + np.mean(self.fake ** 2)),
                            rtol=1e-4)
        self.assertAllClose(losses.generator_gan_loss("lsgan", self.fake),
                            np.mean((self.fake - 1) ** 2), rtol=1e-4)

    def test_vanilla(self):
        def bce(x, t):
            p = 1 / (1 + np.exp(-x))
            return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        r, f = losses.discriminator_terms("vanilla", self.real, self.fake)
        self.assertAllClose(losses.discriminator_loss("vanilla", r, f),
                            0.5 * (bce(self.real, 1) + bce(self.fake, 0)), rtol=1e-4)
        self.assertAllClose(losses.generator_gan_loss("vanilla", self.fake), bce(self.fake, 1),
                            rtol=1e-4)

    def test_hinge(self):
        r, f = losses.discriminator_terms("hinge", self.real, self.fake)
        self.assertAllClose(losses.discriminator_loss("hinge", r, f),
                            np.mean(np.maximum(0, 1 - self.real))
                            + np.mean(np.maximum(0, 1 + self.fake)), rtol=1e-4)
        self.assertAllClose(losses.generator_gan_loss("hinge", self.fake), -np.mean(self.fake),
                            rtol=1e-4, atol=1e-5)

    def test_unknown_mode(self):
        with self.assertRaisesRegex(ValueError, "--gan_mode"):
            losses.generator_gan_loss("wgan", self.fake)

    def test_l1(self):
        self.assertAllClose(losses.l1_loss(self.real, self.fake),
                            np.mean(np.abs(self.real - self.fake)), rtol=1e-4)
