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
# The inputs of the float32 probe below: every pixel scaled by 1 + 2^-22, a change of one or two
# ulps, the size of the rounding that a reordered sum makes.
NUDGE = 1 + 2**-22
# How far past the probe's spread a correct computation may land: the probe is one sample of
# the rounding's effect and the compiled step another, so the bound leaves a margin for two
# samples of one distribution.
SPREAD_MARGIN = 10


def train(changes, strategy, jit_compile, input_scale=1.0):
    """STEPS steps on fixed global batches of 2 (scaled by `input_scale`) -> (losses per step,
    {name: array}): the kernels and Adam moments of every network (biases before instance norm
    have a zero gradient, whose float noise Adam turns into arbitrary full-size steps)."""
    with strategy.scope():
        method = build_method(tiny_config("/unused", **XLA_SMALL, **changes))
    step = tf.function(lambda batch, seed: run_step(strategy, method, batch, seed,
                                                    jit_compile)[0])
    rng = np.random.default_rng(0)
    history = []
    for i in range(STEPS):
        batch = {k: (rng.uniform(-1, 1, (2, 32, 32, 3)) * input_scale).astype(np.float32)
                 for k in "ab"}
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


def float32_spread(reference, nudged):
    """What float32 rounding alone does to this computation on this CPU, measured rather than
    assumed: the reference trained again on inputs moved by one or two ulps (NUDGE).

    Returns ([relative loss spread of each step], {"weights_max", "weights_mean", "moments"}):
    per step the largest |nudged - reference| / |reference| over the losses; over the kernels
    the largest max and mean |difference| (in units of LR); over the Adam moments the largest
    max |difference| / max |reference|. Adam's first step is sign(gradient)·LR, so an entry
    whose gradient is near zero moves a full step either way with its rounding, and the next
    step's losses inherit that: in CycleGAN's tiny configuration the probe moves losses by
    ~4e-4 relative at steps 2-3 and the moments by 40 % (Intel Xeon, AMX), in CUT's by ~3e-7.
    """
    losses = [max(abs(n[k] - r[k]) / abs(r[k]) for k in r if k != "nonfinite")
              for r, n in zip(reference[0], nudged[0])]
    state = {"weights_max": 0.0, "weights_mean": 0.0, "moments": 0.0}
    for name, want in reference[1].items():
        difference = np.abs(nudged[1][name] - want)
        if name.startswith("optimizer"):
            state["moments"] = max(state["moments"], difference.max() / np.abs(want).max())
        else:
            state["weights_max"] = max(state["weights_max"], difference.max() / LR)
            state["weights_mean"] = max(state["weights_mean"], difference.mean() / LR)
    return losses, state


class XlaUnderMirroredStrategyTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*CONFIGS.items())
    def test_compiled_two_replicas_equal_graph_mode(self, changes):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        self.assertLen(devices, 2, "tests/conftest.py splits the CPU into two devices")
        compiled = train(changes, tf.distribute.MirroredStrategy(devices), True)
        one_device = train(changes, tf.distribute.get_strategy(), False)
        loss_spread, state_spread = float32_spread(
            one_device, train(changes, tf.distribute.get_strategy(), False, NUDGE))
        # Every bound is SPREAD_MARGIN x the probe's spread, and never below what one
        # reordered float32 sum does where nothing amplifies it (observed <= 1.1e-6 relative
        # for a loss, <= 0.003 LR for a weight, <= 4e-5 of the largest moment). A wrong
        # gradient or all-reduce is far outside: with replica 0's gradient counted twice, the
        # losses of step 1 (G's terms see D after its first update, before any amplification)
        # move by 5e-5 (qs_global) to 9e-4 (cyclegan) relative, 5-90x their bound of 1e-5,
        # and in CUT's and QS-Attn's configurations the moments by 200-270 % of their largest
        # entry (bound: 0.1 %). CycleGAN's later steps are chaotic (float32_spread), so there
        # step 1 is what catches it.
        loss_rtol = [max(1e-5, SPREAD_MARGIN * spread) for spread in loss_spread]
        weights_max = max(0.05, SPREAD_MARGIN * state_spread["weights_max"]) * LR
        weights_mean = max(1e-3, SPREAD_MARGIN * state_spread["weights_mean"]) * LR
        moments = max(1e-3, SPREAD_MARGIN * state_spread["moments"])
        references = {"one_device": one_device,
                      "mirrored": train(changes, tf.distribute.MirroredStrategy(devices), False)}
        for reference, (want_history, want_state) in references.items():
            for step, (want, got) in enumerate(zip(want_history, compiled[0]), start=1):
                self.assertEqual(set(got), set(want))
                self.assertEqual(got["nonfinite"], 0.0)
                for name in want:
                    self.assertAllClose(got[name], want[name], rtol=loss_rtol[step - 1], atol=0,
                                        msg=f"{reference}: {name} at step {step}")
            for name, want in want_state.items():
                got = compiled[1][name]
                if name.startswith("optimizer"):
                    # The moments hold the gradients themselves: a sum over replicas instead
                    # of a mean would double them.
                    self.assertAllClose(got, want, rtol=0, atol=moments * np.abs(want).max(),
                                        msg=f"{reference}: {name}")
                else:
                    difference = np.abs(got - want)
                    self.assertLess(difference.max(), weights_max, msg=f"{reference}: {name}")
                    self.assertLess(difference.mean(), weights_mean, msg=f"{reference}: {name}")


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
