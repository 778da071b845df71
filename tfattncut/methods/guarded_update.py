"""The all-or-nothing update of one loss: a step with a non-finite loss or gradient on any
replica changes nothing (a float16 loss-scale overflow is the normal, uncounted case)."""
import tensorflow as tf

from tfattncut.methods.adam import all_finite, on_any_replica
from tfattncut.methods.loss_scale import INITIAL_LOSS_SCALE, next_loss_scale


class GuardedUpdate(tf.Module):
    """The update of one loss: its gradients applied to groups of (optimizer, variables), all
    or nothing, with dynamic loss scaling under mixed_float16.

    `minimize` skips every group when the loss or any gradient is non-finite on any replica.
    Loss scaling (mixed_float16 only): the gradient is taken of loss·scale and divided by
    scale. Non-finite gradients of a finite loss are an overflow of that scale -- float16's
    normal skip: the scale changes by `next_loss_scale` and the step does not count as
    non-finite, unless the scale is already <= 1, where no scale explains it. The scale and
    its counter are variables present under every precision (used only with float16), so
    checkpoints load across precisions and a resumed float16 run continues with its scale.
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
        """One update from `loss` (this replica's mean, float32 [], recorded on `tape`, whose
        gradient this takes) to `groups`, a list of (optimizer, variables).

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
        scale, good_steps = next_loss_scale(self.scale, self.good_steps, overflow)
        self.scale.assign(scale)
        self.good_steps.assign(good_steps)
        return skipped, tf.logical_and(skipped, tf.logical_not(explained))
