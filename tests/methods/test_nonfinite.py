"""Steps with a NaN or Inf are skipped: nothing changes, in graph mode and XLA, on one replica
and on two; the optimiser and the guarded update on their own."""
import functools
import math

import numpy as np
import tensorflow as tf

from tests.methods.test_cut import random_batch
from tests.testdata import XLA_SMALL, tiny_config
from tfattncut.methods import build_method
from tfattncut.methods.adam import TorchAdam
from tfattncut.methods.guarded_update import GuardedUpdate


def state(method):
    """Every variable of the networks, the optimisers (slots and iterations) and the extra
    state (pools, loss scales), as NumPy arrays by path."""
    variables = [v for net in method.networks.values() for v in net.variables]
    variables += [v for opt in method.optimizers.values() for v in opt.variables]
    variables += [v for module in method.extra_state.values() for v in module.variables]
    return {f"{i}:{v.name}": np.array(v.numpy()) for i, v in enumerate(variables)}


def nan_batch(batch):
    return {k: v * math.nan for k, v in batch.items()}


class TorchAdamSkipTest(tf.test.TestCase):

    def _apply(self, grads, skip=False):
        variables = [tf.Variable([1.0, 2.0]), tf.Variable(3.0)]
        optimizer = TorchAdam(learning_rate=0.1)
        optimizer.build(variables)
        skipped = tf.function(lambda: optimizer.apply(grads, variables, skip=skip))()
        return variables, optimizer, bool(skipped)

    def test_nonfinite_gradient_or_skip_changes_nothing(self):
        for grads, skip in (([tf.constant([0.5, math.nan]), tf.constant(1.0)], False),
                            ([tf.constant([0.5, 0.5]), tf.constant(math.inf)], False),
                            ([tf.constant([0.5, 0.5]), tf.constant(1.0)], True)):
            variables, optimizer, skipped = self._apply(grads, skip)
            self.assertTrue(skipped)
            self.assertAllEqual(variables[0], [1.0, 2.0])
            self.assertAllEqual(variables[1], 3.0)
            self.assertEqual(int(optimizer.iterations), 0)
            moments = [slot for slot in optimizer.variables
                       if slot.dtype == "float32" and slot.name != "learning_rate"]
            self.assertLen(moments, 4)  # m and v of each variable
            for slot in moments:
                self.assertAllEqual(slot, tf.zeros_like(slot), msg=slot.name)

    def test_finite_gradients_update(self):
        variables, optimizer, skipped = self._apply([tf.constant([0.5, -0.5]), tf.constant(1.0)])
        self.assertFalse(skipped)
        # Adam's first step moves each weight by lr against its gradient's sign.
        # float32 Adam arithmetic against the exact decimal result.
        self.assertAllClose(variables[0], [0.9, 2.1], atol=1e-4)
        self.assertAllClose(variables[1], 2.9, atol=1e-4)
        self.assertEqual(int(optimizer.iterations), 1)


class GuardedUpdateTest(tf.test.TestCase):

    def _minimize(self, guard, variable, loss_fn):
        optimizer = TorchAdam(learning_rate=0.1)
        optimizer.build([variable])

        @tf.function
        def step():
            with tf.GradientTape(persistent=True) as tape:
                loss = loss_fn(variable)
            return guard.minimize(tape, loss, [(optimizer, [variable])])

        return [bool(x) for x in step()]

    def test_nonfinite_loss_is_skipped_and_counted(self):
        variable = tf.Variable(1.0)
        skipped, nonfinite = self._minimize(GuardedUpdate("none"), variable,
                                            lambda v: v * math.nan)
        self.assertEqual((skipped, nonfinite), (True, True))
        self.assertEqual(float(variable), 1.0)  # untouched, so exactly the initial value

    def test_float16_overflow_halves_the_scale_without_counting(self):
        guard = GuardedUpdate("mixed_float16")
        variable = tf.Variable(1.0)
        # loss 1e35 is finite, its scaled gradient 1e35·2^15 is not: an overflow.
        self.assertEqual(self._minimize(guard, variable, lambda v: v * 1e35), [True, False])
        self.assertEqual(float(guard.scale), 2.0**14)  # powers of 2 halve exactly
        self.assertEqual(float(variable), 1.0)  # untouched
        # Finite steps count towards growth; the 2000th in a row doubles the scale.
        guard.good_steps.assign(1999)
        self.assertEqual(self._minimize(guard, variable, lambda v: v * 2.0), [False, False])
        self.assertEqual(float(guard.scale), 2.0**15)
        self.assertEqual(int(guard.good_steps), 0)
        self.assertNotEqual(float(variable), 1.0)
        # At a scale <= 1 no loss scale explains an infinite gradient: it counts.
        guard.scale.assign(1.0)
        self.assertEqual(self._minimize(guard, tf.Variable(1.0), lambda v: tf.sqrt(v - 1.0)),
                         [True, True])


class SkippedStepTest(tf.test.TestCase):
    """A CUT step on NaN images changes no variable of any network, optimiser or loss scale,
    and says so; a finite step still trains."""

    def _assert_skipped(self, method, run, size=64):
        before = state(method)
        values = run(nan_batch(random_batch(seed=1, size=size)))
        self.assertEqual(float(values["nonfinite"]), 1.0)
        after = state(method)
        changed = [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]
        self.assertEmpty(changed)
        values = run(random_batch(seed=2, size=size))
        self.assertEqual(float(values["nonfinite"]), 0.0)
        self.assertEqual(int(method.optimizer_g.iterations.numpy()), 1)
        self.assertNotAllClose(method.generator.trainable_variables[0],
                               before[next(iter(before))])

    def test_graph_and_xla(self):
        for jit in (False, True):
            # Gain 1: at 0.02 a projection head's output can be exactly 0 under XLA on CPU,
            # where v / (‖v‖ + 1e-7) has a NaN gradient (the step would rightly be skipped).
            method = build_method(tiny_config("/unused", nce_idt=False, init_gain=1.0))
            step = tf.function(functools.partial(method.replica_step, jit_compile=jit))
            self._assert_skipped(method, lambda batch: step(batch, tf.constant([0, 1]))[0])

    def test_two_way_pool_is_left_alone(self):
        method = build_method(tiny_config("/unused", model="cyclegan", pool_size=2))
        step = tf.function(method.replica_step)
        before = state(method)
        values, _ = step(nan_batch(random_batch(seed=1)), tf.constant([0, 1]))
        self.assertEqual(float(values["nonfinite"]), 1.0)
        after = state(method)
        self.assertEmpty([k for k in before if not np.array_equal(before[k], after[k])])
        self.assertEqual(int(method.pool_a.count), 0)

    def test_two_replicas_agree_when_one_sees_nan(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        self.assertLen(devices, 2, "tests/conftest.py splits the CPU into two devices")
        for jit in (False, True):
            strategy = tf.distribute.MirroredStrategy(devices)
            with strategy.scope():
                method = build_method(tiny_config("/unused", nce_idt=False, **XLA_SMALL))
            replica_step = functools.partial(method.replica_step, jit_compile=jit)

            @tf.function
            def step(batch, poison):
                # Replica 1 gets NaN images when `poison`, replica 0 never does.
                local = strategy.experimental_distribute_values_from_function(
                    lambda context: {k: v[context.replica_id_in_sync_group:][:1] * (
                        tf.where(poison, math.nan, 1.0) if context.replica_id_in_sync_group
                        else 1.0) for k, v in batch.items()})
                losses, _ = strategy.run(replica_step, args=(local, tf.constant([0, 1])))
                return [strategy.experimental_local_results(losses["nonfinite"])]

            def run(batch):
                poison = tf.reduce_any(tf.math.is_nan(batch["a"]))
                clean = {k: tf.where(tf.math.is_nan(v), 0.5, v) for k, v in batch.items()}
                doubled = {k: tf.concat([v, v], 0) for k, v in clean.items()}
                flags = step(doubled, poison)[0]
                self.assertLen(flags, 2)
                self.assertEqual(float(flags[0]), float(flags[1]))  # the replicas agree
                return {"nonfinite": flags[0]}

            self._assert_skipped(method, run, size=32)
            for variable in method.generator.trainable_variables[:2]:
                first, second = variable.value.values  # the MirroredVariable's two copies
                self.assertAllEqual(first, second)
