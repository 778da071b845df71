"""XLA under MirroredStrategy (training.strategy.run_step with methods.base's split step) and
the --jit_compile rule: a compiled step on two replicas computes what graph mode computes on
two replicas and on one device with the same global batch."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tests.testdata import XLA_SMALL, tiny_config
from tfattncut.methods import build_method
from tfattncut.training.strategy import resolve_jit_compile, run_step

CONFIGS = {
    # FastCUT's flip as well: a tf.cond inside the compiled forward pass.
    "cut": dict(flip_equivariance=True),
    "qs_global": dict(selector="qs_global", qs_layers=(8,)),
    # A pool, so the exchange between the compiled parts gathers both replicas' fakes.
    "cyclegan": dict(model="cyclegan", pool_size=2),
}
STEPS = 3
LR = 2e-4  # tiny_config's --lr: one Adam step moves a weight by about this much


def train(changes, strategy, jit_compile):
    """STEPS steps on fixed global batches of 2 -> (losses per step, {name: array}): the
    kernels and Adam moments of every network (biases before instance norm have a zero
    gradient, whose float noise Adam turns into arbitrary full-size steps)."""
    with strategy.scope():
        method = build_method(tiny_config("/unused", **XLA_SMALL, **changes))
    step = tf.function(lambda batch, seed: run_step(strategy, method, batch, seed,
                                                    jit_compile)[0])
    rng = np.random.default_rng(0)
    history = []
    for i in range(STEPS):
        batch = {k: rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for k in "ab"}
        # Replica r gets image r of the global batch, as the data pipeline shards it.
        local = strategy.experimental_distribute_values_from_function(
            lambda context, batch=batch: {
                k: v[context.replica_id_in_sync_group::context.num_replicas_in_sync]
                for k, v in batch.items()})
        history.append({k: float(v) for k, v in step(local, tf.constant([0, i])).items()})
    # Keyed by position: Keras numbers layer and optimizer names per process.
    state = {f"{key}/{i}": v.numpy() for key, net in method.networks.items()
             for i, v in enumerate(net.trainable_variables) if len(v.shape) > 1}
    state.update({f"optimizer_{key}/{i}": v.numpy() for key, opt in method.optimizers.items()
                  for i, v in enumerate(opt.variables) if len(v.shape) > 1})
    return history, state


class XlaUnderMirroredStrategyTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*CONFIGS.items())
    def test_compiled_two_replicas_equal_graph_mode(self, changes):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        self.assertLen(devices, 2, "tests/conftest.py splits the CPU into two devices")
        compiled = train(changes, tf.distribute.MirroredStrategy(devices), True)
        for reference in ("mirrored", "one_device"):
            strategy = (tf.distribute.MirroredStrategy(devices) if reference == "mirrored"
                        else tf.distribute.get_strategy())
            want_history, want_state = train(changes, strategy, False)
            for step, (want, got) in enumerate(zip(want_history, compiled[0]), start=1):
                self.assertEqual(set(got), set(want))
                self.assertEqual(got["nonfinite"], 0.0)
                for name in want:
                    # XLA's fusions and the two-replica gradient sum reorder float32 sums
                    # (~1e-7 relative each; observed <= 1.1e-6). G_GAN against D before its
                    # update instead of after differs by ~1e-3 (tests/methods/test_cut.py).
                    self.assertAllClose(got[name], want[name], rtol=1e-5, atol=1e-6,
                                        msg=f"{reference}: {name} at step {step}")
            for name, want in want_state.items():
                got = compiled[1][name]
                if name.startswith("optimizer"):
                    # The moments hold the gradients themselves (a sum over replicas instead
                    # of a mean would double them): float32 reordering only, observed
                    # <= 3e-5 of the largest entry.
                    self.assertAllClose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max(),
                                        msg=f"{reference}: {name}")
                else:
                    # Adam turns float noise in near-zero gradients into steps of up to LR, so
                    # a weight may differ by part of a step: observed <= 0.003 LR, on average
                    # < 1e-4 LR.
                    difference = np.abs(got - want)
                    self.assertLess(difference.max(), 0.05 * LR, msg=f"{reference}: {name}")
                    self.assertLess(difference.mean(), 1e-3 * LR, msg=f"{reference}: {name}")


class JitCompileSettingTest(tf.test.TestCase):

    def test_any_replica_count_compiles_and_auto_skips_cpu(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(devices)):
            self.assertEqual(resolve_jit_compile("true", strategy), (True, "--jit_compile=true"))
            self.assertEqual(resolve_jit_compile("false", strategy)[0], False)
            # This test machine has no GPU or TPU: auto keeps graph mode, and says why.
            compile_, why = resolve_jit_compile("auto", strategy)
            self.assertFalse(compile_)
            self.assertIn("CPU only", why)
