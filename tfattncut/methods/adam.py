"""Adam as the reference applies it (PyTorch's epsilon placement), able to skip a step on any
replica's non-finite gradient; and the replica-agreement helpers that skip relies on."""
import math

import keras
import tensorflow as tf
from keras import ops


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
    small; docs/design/training.md#optimisation asks for PyTorch's form.

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


def make_adam(learning_rate, beta_1, beta_2):
    """TorchAdam with these settings and ε 1e-8 (PyTorch's default)."""
    return TorchAdam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)
