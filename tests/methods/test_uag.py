"""Attention-guided CycleGAN: the discriminators' masked view and its switch at the configured
epoch, the freezing of the attention networks, the composed translator, a training run."""
import glob
import os
import tempfile

import numpy as np
import tensorflow as tf

from tests.methods.test_two_way import assert_trains, snapshot, unchanged
from tests.test_config import REPO, parse
from tests.testdata import tiny_config
from tfattncut.inference import load_translator
from tfattncut.methods.uag import UAG, masked_view
from tfattncut.training.trainer import Trainer


def uag_config(root="/unused", **changes):
    return tiny_config(root, model="uag", uag_attention_ngf=4, uag_attention_epochs=1,
                       **changes)


def numpy_compose(mask, translated, source):
    return mask * translated + (1 - mask) * source


class MaskedViewTest(tf.test.TestCase):

    def test_matches_numpy_before_and_after_the_switch(self):
        rng = np.random.default_rng(0)
        record = rng.uniform(0, 1, (2, 4, 4, 4)).astype(np.float32)
        image, attention = record[..., :3], record[..., 3:]
        # Tight: a slice and a product by 0 or 1 are exact.
        self.assertAllClose(masked_view(record, 0.3, tf.constant(False)), image)
        self.assertAllClose(masked_view(record, 0.3, tf.constant(True)),
                            image * (attention > 0.3))


class SwitchTest(tf.test.TestCase):

    def discriminator_b_loss(self, method, real_a, real_b, masked):
        """D_b's lsgan loss from the current weights, computed here: translation by
        composition, and (when `masked`) both images gated by attention > τ."""
        a, b = real_a.numpy(), real_b.numpy()
        mask_a, mask_b = method.attention_a(real_a).numpy(), method.attention_b(real_b).numpy()
        fake_b = numpy_compose(mask_a, method.generator_ab(real_a).numpy(), a)
        if masked:
            b, fake_b = b * (mask_b > 0.5), fake_b * (mask_a > 0.5)
        return 0.5 * (np.mean((method.discriminator_b(b).numpy() - 1) ** 2)
                      + np.mean(method.discriminator_b(fake_b).numpy() ** 2))

    def test_discriminators_switch_and_attention_freezes_after_the_configured_epoch(self):
        # τ = 0.5 splits the near-0.5 attention of fresh networks, so masking changes the view.
        method = UAG(uag_config(uag_threshold=0.5, pool_size=0))
        rng = np.random.default_rng(1)
        real_a, real_b = (tf.constant(rng.uniform(-1, 1, (1, 64, 64, 3)), tf.float32)
                          for _ in range(2))
        batch = {"a": real_a, "b": real_b}
        method.start_epoch(1, 2e-4)
        self.assertFalse(bool(method.attention_frozen))
        self.assertAllClose(float(method.optimizer_attention.learning_rate), 2e-4)
        want = self.discriminator_b_loss(method, real_a, real_b, masked=False)
        mask_a = method.attention_a(real_a)
        frozen = {"a": method.attention_a, "b": method.attention_b}
        attention_before = snapshot(frozen)
        values, images = method.replica_step(batch, tf.constant([0, 0]))
        # The step against eager calls and NumPy (other kernels and orders): 1e-4.
        self.assertAllClose(values["D_B"], want, rtol=1e-4)
        self.assertAllClose(images["mask_a"], 2 * mask_a - 1, rtol=1e-4, atol=1e-4)
        self.assertEmpty(unchanged(attention_before, frozen))

        method.start_epoch(2, 1e-4)
        self.assertTrue(bool(method.attention_frozen))
        self.assertEqual(float(method.optimizer_attention.learning_rate), 0.0)
        want = self.discriminator_b_loss(method, real_a, real_b, masked=True)
        whole = self.discriminator_b_loss(method, real_a, real_b, masked=False)
        self.assertNotAllClose(want, whole, rtol=1e-3)
        attention_before = snapshot(frozen)
        generator_before = snapshot({"g": method.generator_ab})
        values, _ = method.replica_step(batch, tf.constant([0, 1]))
        self.assertAllClose(values["D_B"], want, rtol=1e-4)
        self.assertLen(unchanged(attention_before, frozen), 2 * 14)  # 7 convs per network
        self.assertEmpty(unchanged(generator_before, {"g": method.generator_ab}))

    def test_preset_matches_spec(self):
        config = parse(f"--flagfile={REPO}/configs/uag.cfg")
        self.assertEqual(
            (config.model, config.uag_attention_epochs, config.uag_threshold,
             config.lambda_identity, config.lambda_A, config.gan_mode, config.pool_size,
             config.lr, config.n_epochs, config.n_epochs_decay, config.no_antialias),
            ("uag", 30, 0.1, 0.0, 10.0, "lsgan", 50, 2e-4, 100, 100, True))


class DiagnosticsTest(tf.test.TestCase):

    def test_mask_mean_and_share_above_the_threshold(self):
        method = UAG(uag_config(uag_threshold=0.1))
        mask_a = np.full([2, 4, 4, 1], 0.05, np.float32)  # all below the threshold
        mask_b = np.zeros([2, 4, 4, 1], np.float32)
        mask_b[:, :2] = 0.5  # half the pixels above it
        # As summary_images shows them: [0, 1] masks as images in [-1, 1].
        scalars, selection_maps = method.diagnostics(
            {"mask_a": 2 * mask_a - 1, "mask_b": 2 * mask_b - 1}, tf.constant([0, 1]))
        self.assertEqual(selection_maps, [])
        self.assertAllClose(
            {k: float(v) for k, v in scalars.items()},
            {"attention/mask_A_mean": 0.05, "attention/mask_A_above_threshold": 0.0,
             "attention/mask_B_mean": 0.25, "attention/mask_B_above_threshold": 0.5},
            atol=1e-6)  # the [-1, 1] round trip rounds in float32


class TrainingTest(tf.test.TestCase):

    def test_attention_trains_then_freezes_across_a_resume(self):
        root = tempfile.mkdtemp()
        # Two images per domain: epoch 1 is steps 1-2 (attention trains), epoch 2 steps 3-4.
        first, _ = assert_trains(self, root, model="uag", uag_attention_ngf=4,
                                 uag_attention_epochs=1, lambda_identity=0.0)
        after_epoch_1 = snapshot(first.method.networks)
        resumed = Trainer(uag_config(root, lambda_identity=0.0, max_steps=4, resume=True))
        history = resumed.fit()
        self.assertLen(history, 2)
        attention = {k: v for k, v in resumed.method.networks.items() if k.startswith("attention")}
        self.assertCountEqual(
            unchanged(after_epoch_1, resumed.method.networks),
            [f"{k}: {v.path}" for k, net in attention.items() for v in net.trainable_variables])
        self.assertNotIn("idt_A", history[-1])
        tags = set()
        for path in glob.glob(os.path.join(resumed.config.run_dir, "logs", "events.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags.update(value.tag for value in event.summary.value)
        self.assertContainsSubset({"attention/real_A|mask_A|fake_B", "cycle/real_A|fake_B|rec_A",
                                   "loss/cycle_A", "attention/mask_A_mean",
                                   "attention/mask_B_above_threshold"}, tags)

        images = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=4)
        method = resumed.method
        for direction, generator, attention_net in (
                ("AtoB", method.generator_ab, method.attention_a),
                ("BtoA", method.generator_ba, method.attention_b)):
            translator, _ = load_translator(resumed.config.run_dir, direction)
            want = numpy_compose(attention_net(images).numpy(), generator(images).numpy(),
                                 images.numpy())
            # The restored translator runs as a graph (fused kernels) against eager calls.
            self.assertAllClose(translator(images), want, rtol=1e-4, atol=1e-4)
