"""CycleGAN: the cycle term, the step's wiring, the preset's size, a short training run."""
import tempfile

import numpy as np
import tensorflow as tf

from tests.methods.test_two_way import assert_trains
from tests.test_config import REPO, parse
from tests.testdata import tiny_config
from tfattncut import losses
from tfattncut.inference import load_translator
from tfattncut.methods.cyclegan import CycleGAN, cycle_terms


def random_batch(seed, batch_size=1, size=64):
    rng = np.random.default_rng(seed)
    return {k: tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32)
            for k in ("a", "b")}


class CycleTermsTest(tf.test.TestCase):

    def test_cycle_and_identity_weights_match_numpy(self):
        rng = np.random.default_rng(0)
        out = {k: rng.uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
               for k in ("real_a", "real_b", "rec_a", "rec_b", "idt_a", "idt_b")}
        terms = cycle_terms(out, 10.0, 3.0)
        # float32 means in TF's and NumPy's summation orders: 1e-4.
        self.assertAllClose(terms["cycle_A"], 10.0 * np.abs(out["rec_a"] - out["real_a"]).mean(),
                            rtol=1e-4)
        self.assertAllClose(terms["cycle_B"], 3.0 * np.abs(out["rec_b"] - out["real_b"]).mean(),
                            rtol=1e-4)
        method = CycleGAN(tiny_config("/unused", model="cyclegan", lambda_A=10.0,
                                      lambda_B=3.0, lambda_identity=0.5))
        method_terms = method.generator_terms(out)
        # The reference weighs ‖G_ba(a) − a‖ by λ_A·λ_identity and ‖G_ab(b) − b‖ by λ_B·λ_identity.
        self.assertAllClose(method_terms["idt_A"],
                            5.0 * np.abs(out["idt_a"] - out["real_a"]).mean(), rtol=1e-4)
        self.assertAllClose(method_terms["idt_B"],
                            1.5 * np.abs(out["idt_b"] - out["real_b"]).mean())


class CycleGANStepTest(tf.test.TestCase):

    def test_step_losses_are_the_spec_terms(self):
        method = CycleGAN(tiny_config("/unused", model="cyclegan", pool_size=0))
        method.start_epoch(1, 2e-4)
        batch = random_batch(1)
        a, b = batch["a"], batch["b"]
        fake_b, fake_a = method.generator_ab(a), method.generator_ba(b)
        want = {"cycle_A": 10.0 * losses.l1_loss(method.generator_ba(fake_b), a),
                "cycle_B": 10.0 * losses.l1_loss(method.generator_ab(fake_a), b),
                "idt_A": 5.0 * losses.l1_loss(method.generator_ba(a), a),
                "idt_B": 5.0 * losses.l1_loss(method.generator_ab(b), b),
                "D_B": 0.5 * (np.mean((method.discriminator_b(b) - 1) ** 2)
                              + np.mean(method.discriminator_b(fake_b) ** 2))}
        values, images = method.replica_step(batch, tf.constant([0, 0]))
        # The step's graph against eager calls (other kernels): 1e-4.
        for name, value in want.items():
            self.assertAllClose(values[name], value, rtol=1e-4, msg=name)
        # G's adversarial term sees D_b as updated by this step.
        self.assertAllClose(values["G_GAN_AB"],
                            np.mean((method.discriminator_b(fake_b) - 1) ** 2), rtol=1e-4)
        # A float32 sum in the step's order against a float64 one.
        self.assertAllClose(values["G"], sum(float(values[k]) for k in (
            "G_GAN_AB", "G_GAN_BA", "cycle_A", "cycle_B", "idt_A", "idt_B")), rtol=1e-4)
        self.assertEqual(set(images), {"real_a", "real_b", "fake_a", "fake_b", "rec_a",
                                       "rec_b", "idt_a", "idt_b"})

    def test_preset_matches_spec_and_parameter_count(self):
        config = parse(f"--flagfile={REPO}/configs/cyclegan.cfg")
        self.assertEqual(
            (config.model, config.netG, config.no_antialias, config.no_antialias_up,
             config.gan_mode, config.pool_size, config.lambda_A, config.lambda_B,
             config.lambda_identity, config.lr, config.n_epochs, config.n_epochs_decay),
            ("cyclegan", "resnet_9blocks", True, True, "lsgan", 50, 10.0, 10.0, 0.5, 2e-4,
             100, 100))
        counts = {name: net.count_params() for name, net in CycleGAN(config).networks.items()}
        self.assertEqual(counts["generator_ab"], 11_378_179)
        self.assertEqual(counts["discriminator_a"], 2_764_737)
        self.assertEqual(sum(counts.values()), 28_285_832)

    def test_direction_is_checked(self):
        with self.assertRaisesRegex(ValueError, "--direction must be one of AtoB, BtoA"):
            CycleGAN.build_translator(tiny_config("/unused"), "sideways")


class CycleGANTrainingTest(tf.test.TestCase):

    def test_two_steps_train_everything_and_translate_both_ways(self):
        root = tempfile.mkdtemp()
        trainer, history = assert_trains(self, root, model="cyclegan")
        self.assertContainsSubset({"cycle_A", "cycle_B", "idt_A", "idt_B", "G_GAN_AB", "D_B"},
                                  history[-1])
        method = trainer.method
        self.assertEqual(int(method.pool_b.count), 2)
        images = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=3)
        for direction, generator in (("AtoB", method.generator_ab),
                                     ("BtoA", method.generator_ba)):
            translator, _ = load_translator(trainer.config.run_dir, direction)
            # The restored translator runs as a graph (fused kernels) against eager calls.
            self.assertAllClose(translator(images), generator(images), rtol=1e-4, atol=1e-4)
        self.assertNotAllClose(method.generator_ab(images), method.generator_ba(images))
