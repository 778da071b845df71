"""Losses against NumPy implementations of losses.md."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfattncut import losses


def numpy_patch_nce(q, k, tau, from_minibatch=False):
    b, p, d = q.shape
    l_pos = np.sum(q * k, axis=-1).reshape(-1, 1)
    if from_minibatch:
        q, k = q.reshape(1, b * p, d), k.reshape(1, b * p, d)
    l_neg = np.einsum("gid,gjd->gij", q, k)
    for g in range(l_neg.shape[0]):
        np.fill_diagonal(l_neg[g], -10.0)
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
