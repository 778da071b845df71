"""Dynamic loss scaling under mixed_float16, as Keras' LossScaleOptimizer does it: start high,
halve on overflow, double after a run of steps without one. The state (scale, steps since the
last change) lives in the GuardedUpdate that uses it; this is the rule."""
import tensorflow as tf

INITIAL_LOSS_SCALE = 2.0**15
LOSS_SCALE_GROWTH_STEPS = 2000


def next_loss_scale(scale, good_steps, overflow):
    """(scale, good_steps) after a step: halved on `overflow` (bool []), doubled when this is
    the LOSS_SCALE_GROWTH_STEPS-th step in a row without one, else unchanged; good_steps
    (int64 []) counts the steps since the scale last changed."""
    grow = tf.logical_and(tf.logical_not(overflow), good_steps + 1 >= LOSS_SCALE_GROWTH_STEPS)
    factor = tf.where(overflow, 0.5, tf.where(grow, 2.0, 1.0))
    return scale * factor, tf.where(tf.logical_or(overflow, grow), tf.constant(0, tf.int64),
                                    good_steps + 1)
