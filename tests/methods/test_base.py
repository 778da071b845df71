"""The method contract (methods/base.py): what the base class sets up for a new method, and
that no method's step goes by Keras' `train_step(data)`."""
import keras
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.methods import METHODS
from tfattncut.methods.base import Method


class OneLayer(Method):
    """The smallest method: one Dense "generator" and its optimiser, plus a head optimiser
    with its own base rate."""

    def build_networks(self, probe):
        self.generator = keras.layers.Dense(3, name="generator")
        self.generator(probe)

    def build_optimizers(self):
        self.optimizer_g = self.add_optimizer("generator", self.generator.trainable_variables)
        self.optimizer_h = self.add_optimizer("head", self.generator.trainable_variables,
                                              learning_rate=1e-3, beta_1=0.9)

    @property
    def networks(self):
        return {"generator": self.generator}


class MethodTest(tf.test.TestCase):

    def test_base_builds_optimisers_updates_and_schedule(self):
        config = tiny_config("/unused", lr=2e-4, beta1=0.5)
        method = OneLayer(config)
        self.assertEqual(list(method.optimizers), ["generator", "head"])
        # Built up front: the slots exist before any step.
        self.assertNotEmpty(method.optimizer_g.variables)
        self.assertEqual((method.optimizer_g.beta_1, method.optimizer_h.beta_1), (0.5, 0.9))
        self.assertEqual(sorted(method.extra_state), ["update_d", "update_g"])
        method.start_epoch(2, 1e-4)  # epoch 2 of 1 + 1 (linear): every rate halves
        self.assertAllClose(float(method.optimizer_g.learning_rate), 1e-4)
        self.assertAllClose(float(method.optimizer_h.learning_rate), 5e-4)

    def test_seeded_like_every_method(self):
        config = tiny_config("/unused", seed=3)
        first, second = OneLayer(config), OneLayer(config)
        # Same seed, same initialiser draws: bit-identical weights.
        self.assertAllEqual(first.generator.kernel, second.generator.kernel)

    def test_a_missing_piece_is_named(self):
        with self.assertRaisesRegex(NotImplementedError, "Incomplete must define build_networks"):
            type("Incomplete", (Method,), {})(tiny_config("/unused"))

    def test_no_method_overrides_keras_train_step(self):
        for name, cls in METHODS.items():
            self.assertTrue(issubclass(cls, Method), name)
            self.assertIs(cls.train_step, keras.Model.train_step, name)
            # One step skeleton (methods.base) for all: a method declares its parts.
            self.assertIs(cls.replica_step, Method.replica_step, name)
