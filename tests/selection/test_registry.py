"""The selector registry: where each selector acts, and that every one trains."""
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tests.testdata import tiny_config
from tfattncut.methods.cut import CUT
from tfattncut.selection import SELECTORS, make_selectors
from tfattncut.selection.random import RandomSelector

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


class RegistryTest(tf.test.TestCase, parameterized.TestCase):

    def test_selector_acts_on_the_last_two_layers_by_default(self):
        selectors = make_selectors(tiny_config("/unused", selector="qs_global"), [3, 8, 16, 16, 16])
        kinds = [type(s).__name__ for s in selectors]
        self.assertEqual(kinds[:3], ["RandomSelector"] * 3)
        self.assertEqual(kinds[3:], ["QSGlobal"] * 2)

    def test_qs_layers_flag(self):
        config = tiny_config("/unused", selector="qs_local", qs_layers=(8,))
        selectors = make_selectors(config, [3, 8, 16, 16, 16])
        self.assertEqual([not isinstance(s, RandomSelector) for s in selectors],
                         [False, False, True, False, False])
        with self.assertRaisesRegex(ValueError, "--qs_layers"):
            make_selectors(config.replace(qs_layers=(5,)), [3, 8, 16, 16, 16])

    def test_attention_weights_live_in_the_projector_only(self):
        method = CUT(tiny_config("/unused", selector="self_attention", ngf=16))
        selector_weights = sum(s.count_params() for s in method.projector.selectors if s.weights)
        self.assertGreater(selector_weights, 0)
        head_weights = sum(int(np.prod(v.shape)) for h in method.projector.heads for v in h.weights)
        self.assertEqual(method.projector.count_params(), head_weights + selector_weights)
        plain = CUT(tiny_config("/unused", ngf=16))
        self.assertEqual(method.generator.count_params(), plain.generator.count_params())
        self.assertEqual(method.discriminator.count_params(),
                         plain.discriminator.count_params())

    @parameterized.parameters(*sorted(SELECTORS))
    def test_a_training_step_with_every_selector_is_finite(self, selector):
        # ngf 16: the attention modules need >= 16 channels at the selected layers.
        method = CUT(tiny_config("/unused", selector=selector, ngf=16, num_patches=8))
        selector_before = [v.numpy() for s in method.projector.selectors for v in s.weights]
        batch = {k: tf.random.uniform([1, 64, 64, 3], -1, 1, seed=i)
                 for i, k in enumerate("ab")}
        values, _ = tf.function(method.replica_step)(batch, tf.constant([0, 1]))
        for name, value in values.items():
            self.assertTrue(np.isfinite(value.numpy()), f"{selector}: {name} = {value}")
        selector_after = [v.numpy() for s in method.projector.selectors for v in s.weights]
        for before, after in zip(selector_before, selector_after):
            self.assertFalse(np.array_equal(before, after), f"{selector}: a weight did not move")
