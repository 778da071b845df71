"""Adam as the reference applies it; the all-or-nothing update that skips a step with a
non-finite loss or gradient (with dynamic loss scaling under float16); the Keras precision
policy of --mixed_precision; and the per-epoch learning-rate policies."""
import contextlib
import math

import keras
import tensorflow as tf
from keras import ops

# --mixed_precision -> Keras dtype policy: compute in float16 / bfloat16, variables float32.
POLICIES = {"none": "float32", "mixed_float16": "mixed_float16",
            "mixed_bfloat16": "mixed_bfloat16"}
# Dynamic loss scaling as Keras' LossScaleOptimizer: start high, halve on overflow, double
# after this many steps without one.
INITIAL_LOSS_SCALE = 2.0**15
LOSS_SCALE_GROWTH_STEPS = 2000


@contextlib.contextmanager
def precision_policy(mixed_precision):
    """Keras' global dtype policy for --mixed_precision while networks are built.

    A layer keeps the policy it was built with, so only construction needs it; the previous
    global policy is restored on exit, so nothing leaks into later code (or tests).
    """
    if mixed_precision not in POLICIES:
        raise ValueError(f"--mixed_precision must be one of {', '.join(POLICIES)}; "
                         f"got {mixed_precision!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def check_precision_policy(mixed_precision):
    """Raises unless the global Keras policy is --mixed_precision's (called by a method's
    constructor: networks built under another policy would silently run in it)."""
    current = keras.mixed_precision.global_policy().name
    if current != POLICIES[mixed_precision]:
        raise ValueError(
            f"--mixed_precision={mixed_precision} needs the Keras policy "
            f"{POLICIES[mixed_precision]!r} while the networks are built, but it is {current!r}; "
            "build the method with tfattncut.methods.build_method(config)")


def all_finite(tensors):
    """bool []: every entry of every tensor (None entries ignored) is finite."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None])


def on_any_replica(flags):
    """bool [n] flags of this replica -> bool [n], True where any replica's flag is True
    (the same answer on every replica, so replicas agree on skipping)."""
    context = tf.distribute.get_replica_context()
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(flags, tf.float32)) > 0


class TorchAdam(keras.optimizers.Adam):
    """Adam with PyTorch's epsilon placement: step = lr·m̂ / (√v̂ + ε), and no step at all on
    non-finite gradients.

    Keras adds ε to √v (before bias correction), which differs from the reference when v is
    small; training.md asks for PyTorch's form.

    `apply(grads, variables, skip)` changes nothing -- no variable, no moment, not
    `iterations` (the bias correction's step count) -- when `skip` is True or any gradient
    has a NaN or Inf, on any replica. The update always runs and selects the old values
    (tf.where), so there is no optimiser update inside a tf.cond, which works in graph mode,
    under XLA and under MirroredStrategy alike.
    """

    def apply(self, grads, trainable_variables=None, skip=False):
        grads = list(grads)
        skip = on_any_replica([tf.logical_or(skip, tf.logical_not(all_finite(grads)))])[0]
        # update_step refuses a non-finite gradient; making every gradient NaN carries the
        # decision through Keras' cross-replica gradient sum to every variable's update.
        grads = [g if g is None else tf.where(skip, tf.constant(math.nan, g.dtype), g)
                 for g in grads]
        super().apply(grads, trainable_variables)
        self.iterations.assign_sub(tf.cast(skip, self.iterations.dtype))
        return skip

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        finite = ops.all(ops.isfinite(gradient))
        step = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        new_m = ops.add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        new_v = ops.add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.divide(ops.sqrt(new_v), ops.sqrt(correction_2)), self.epsilon)
        new_variable = ops.subtract(
            variable, ops.divide(ops.multiply(new_m, lr / correction_1), denominator))
        for target, value in ((m, new_m), (v, new_v), (variable, new_variable)):
            self.assign(target, ops.where(finite, value, target))


class GuardedUpdate(tf.Module):
    """The update of one loss: its gradients applied to groups of (optimizer, variables), all
    or nothing, with dynamic loss scaling under mixed_float16.

    `minimize` skips every group when the loss or any gradient is non-finite on any replica.
    Loss scaling (mixed_float16 only): the gradient is taken of loss·scale and divided by
    scale. Non-finite gradients of a finite loss are an overflow of that scale -- float16's
    normal skip: the scale halves and the step does not count as non-finite, unless the scale
    is already <= 1, where no scale explains it. After LOSS_SCALE_GROWTH_STEPS steps without
    overflow the scale doubles. The scale and its counter are variables present under every
    precision (used only with float16), so checkpoints load across precisions and a resumed
    float16 run continues with its scale.
    """

    def __init__(self, mixed_precision, name=None):
        super().__init__(name=name)
        self.loss_scaling = mixed_precision == "mixed_float16"
        # Every replica computes the same value, so one write suffices.
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.Variable(INITIAL_LOSS_SCALE, trainable=False, aggregation=first,
                                 name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=first,
                                      name="good_steps")

    def minimize(self, tape, loss, groups):
        """One update from `loss` (this replica's mean, float32 [], recorded on the persistent
        `tape`) to `groups`, a list of (optimizer, variables).

        The gradient is of loss / replicas (Keras sums gradients across replicas).
        Returns (skipped, nonfinite): bool [], equal on every replica; `nonfinite` is a skip
        that is not a loss-scale overflow.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tape:
            scaled_loss = loss / replicas
            if self.loss_scaling:
                scaled_loss *= self.scale
        variables = [v for _, group in groups for v in group]
        grads = tape.gradient(scaled_loss, variables)
        if self.loss_scaling:
            grads = [g if g is None else g / self.scale for g in grads]
        bad_loss, bad_grads = tf.unstack(on_any_replica(
            [tf.logical_not(all_finite([loss])), tf.logical_not(all_finite(grads))]))
        skipped = tf.logical_or(bad_loss, bad_grads)
        start = 0
        for optimizer, group in groups:
            optimizer.apply(grads[start:start + len(group)], group, skip=skipped)
            start += len(group)
        if not self.loss_scaling:
            return skipped, skipped
        overflow = tf.logical_and(bad_grads, tf.logical_not(bad_loss))
        explained = tf.logical_and(overflow, self.scale > 1.0)
        self._update_scale(overflow)
        return skipped, tf.logical_and(skipped, tf.logical_not(explained))

    def _update_scale(self, overflow):
        grow = tf.logical_and(tf.logical_not(overflow),
                              self.good_steps + 1 >= LOSS_SCALE_GROWTH_STEPS)
        factor = tf.where(overflow, 0.5, tf.where(grow, 2.0, 1.0))
        self.scale.assign(self.scale * factor)
        self.good_steps.assign(tf.where(tf.logical_or(overflow, grow),
                                        tf.constant(0, tf.int64), self.good_steps + 1))


def make_adam(config):
    """Adam with the run's lr and betas, ε 1e-8 (PyTorch's default)."""
    return TorchAdam(learning_rate=config.lr, beta_1=config.beta1, beta_2=config.beta2,
                     epsilon=1e-8)


def learning_rate_at_epoch(config, epoch):
    """The learning rate during 1-based `epoch` (the reference's scheduler, stepped per epoch).

    linear: lr·(1 − max(0, e − n_epochs)/(n_epochs_decay + 1)), never zero;
    step:   lr·0.1^⌊(e−1)/lr_decay_iters⌋;
    cosine: lr·(1 + cos(π·(e−1)/n_epochs))/2.
    """
    if config.lr_policy == "linear":
        return config.lr * (1.0 - max(0, epoch - config.n_epochs) / (config.n_epochs_decay + 1))
    if config.lr_policy == "step":
        return config.lr * 0.1 ** ((epoch - 1) // config.lr_decay_iters)
    if config.lr_policy == "cosine":
        return config.lr * (1 + math.cos(math.pi * (epoch - 1) / config.n_epochs)) / 2
    raise ValueError(f"--lr_policy must be linear, step or cosine; got {config.lr_policy!r}")
