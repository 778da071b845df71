"""The two-way methods' training steps compile under XLA (their forward pass, losses and
gradients, methods.base) and compute what graph mode computes. CUT, QS-Attn and CycleGAN are
checked the same way on two replicas (tests/training/test_strategy.py); SimDCL's step is
DCLGAN's plus its similarity terms, so it covers DCLGAN's."""
import functools

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.testdata import tiny_config
from tfattncut.methods import METHODS

# Small enough for CI; the UAG attention network is narrowed like the UAG tests do.
CONFIGS = {
    "simdcl": dict(model="simdcl"),
    "uag": dict(model="uag", uag_attention_ngf=4),
}


class CompiledStepTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*CONFIGS.items())
    def test_xla_step_equals_graph_step(self, changes):
        rng = np.random.default_rng(7)
        batch = {k: tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)), tf.float32) for k in "ab"}
        results = []
        for jit in (False, True):
            # Gain 1 keeps the projected NCE features well above rounding noise (see test_cut).
            config = tiny_config("/unused", crop_size=32, load_size=32, init_gain=1.0, **changes)
            method = METHODS[config.model](config)
            step = tf.function(functools.partial(method.replica_step, jit_compile=jit))
            values, _ = step(batch, tf.constant([3, 4]))
            results.append({k: float(v) for k, v in values.items()})
        self.assertEqual(set(results[0]), set(results[1]))
        for name, value in results[0].items():
            self.assertTrue(np.isfinite(value), f"{name} = {value}")
            self.assertAllClose(results[1][name], value, rtol=1e-3, atol=1e-5, msg=name)
