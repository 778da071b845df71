"""CUT / FastCUT training step: update order, flip equivariance, every variable trained."""
import functools

import numpy as np
import tensorflow as tf

from tfattncut import losses
from tests.testdata import tiny_config
from tfattncut.methods.cut import CUT


def random_batch(batch_size=1, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return {k: tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32)
            for k in ("a", "b")}


class CUTStepTest(tf.test.TestCase):

    def _changed(self, before, network):
        return [v.path for v, old in zip(network.trainable_variables, before)
                if np.array_equal(v.numpy(), old)]

    def test_steps_change_every_variable_with_finite_losses(self):
        for preset in (dict(), dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True)):
            method = CUT(tiny_config("/unused", **preset))
            before = {name: [v.numpy() for v in net.trainable_variables]
                      for name, net in method.networks.items()}
            step = tf.function(method.replica_step)
            for i in range(2):
                values, images = step(random_batch(seed=i), tf.constant([0, i]))
                for name, value in values.items():
                    self.assertTrue(np.isfinite(value.numpy()), f"{name} = {value}")
            self.assertEqual(set(values) >= {"G_GAN", "NCE", "D_real", "D_fake", "G", "D"}, True)
            self.assertEqual("NCE_Y" in values, preset.get("nce_idt", True))
            self.assertEqual(images["fake_b"].shape, (1, 64, 64, 3))
            for name, network in method.networks.items():
                self.assertEmpty(self._changed(before[name], network), f"unchanged in {name}")

    def test_generator_gan_loss_sees_updated_discriminator(self):
        method = CUT(tiny_config("/unused", nce_idt=False))
        batch = random_batch(seed=3)
        g_before = [v.numpy() for v in method.generator.trainable_variables]
        d_before = [v.numpy() for v in method.discriminator.trainable_variables]
        values, _ = method.replica_step(batch, tf.constant([0, 0]))
        # Recompute G_GAN with G as it was during the step and D as it is now (updated).
        d_after = [v.numpy() for v in method.discriminator.trainable_variables]
        for v, old in zip(method.generator.trainable_variables, g_before):
            v.assign(old)
        fake = method.generator(batch["a"])
        # The step's graph against eager calls (other kernels): 1e-4; the stale D's loss
        # differs by ~1e-3, so the check below can still tell them apart.
        self.assertAllClose(values["G_GAN"],
                            losses.generator_gan_loss("lsgan", method.discriminator(fake)),
                            rtol=1e-4)
        for v, old in zip(method.discriminator.trainable_variables, d_before):
            v.assign(old)
        stale = losses.generator_gan_loss("lsgan", method.discriminator(fake))
        self.assertNotAllClose(values["G_GAN"], stale, rtol=1e-4)
        self.assertNotAllClose(d_after[0], d_before[0])

    def test_flip_uses_unflipped_source_features(self):
        method = CUT(tiny_config("/unused", nce_idt=False, flip_equivariance=True))
        real = random_batch(seed=4)["a"]
        layers = method.config.nce_layers
        fake, source = method._translate_flipped(real, tf.constant(True))
        # One batched pass against separate calls (other kernels); O(1) values.
        self.assertAllClose(fake, method.generator(tf.reverse(real, [2])), rtol=1e-4,
                            atol=1e-4)
        for got, want in zip(source, method.generator.encode(real, layers)):
            self.assertAllClose(got, want, rtol=1e-4, atol=1e-4)

    def test_xla_step_matches_graph_step(self):
        batch = random_batch(seed=5)
        results = []
        for jit in (False, True):
            # Gain 1: with the default 0.02 the projected features are so small that
            # v / (‖v‖ + 1e-7) turns rounding noise into NCE differences of several percent.
            method = CUT(tiny_config("/unused", init_gain=1.0))
            step = tf.function(functools.partial(method.replica_step, jit_compile=jit))
            values, _ = step(batch, tf.constant([1, 2]))
            results.append({k: float(v) for k, v in values.items()})
        # Fails when a seed derivation draws other bits under XLA (tfattncut.randomness): the
        # PatchNCE positions, hence NCE and NCE_Y, then differ by several percent.
        for name in ("G_GAN", "NCE", "NCE_Y", "D_real", "D_fake", "D", "G"):
            self.assertAllClose(results[0][name], results[1][name], rtol=1e-3, msg=name)

    def test_bad_nce_layer_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "--nce_layers"):
            CUT(tiny_config("/unused", nce_layers=(0, 99)))
