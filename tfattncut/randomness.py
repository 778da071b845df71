"""Stateless random draws that give the same bits in graph mode and under XLA.

On CPU, TF 2.21's `stateless_split` of a computed seed, `stateless_fold_in` and the float
draws of the default algorithm produce different values once XLA compiles them, so a
compiled training step picked other PatchNCE positions than the same step in graph mode
(observed: NCE 7.31 vs 7.39 at initialisation). Integer Philox draws agree, so every seed a
training step derives, and every random bit it uses, comes from here.
"""
import tensorflow as tf


def step_seed(seed, step):
    """The int32 [2] seed of a training step: (--seed, step), the seed wrapped into int32
    (--seed may be up to 2**32 - 1), so that a step's draws depend on both and nothing else."""
    return tf.cast(tf.constant([seed, step], tf.int64), tf.int32)


def philox_bits(shape, seed):
    """Uniform int32 bits of `shape` from an int32 [2] seed (integer Philox)."""
    return tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.int32,
                                       alg="philox")


def split_seed(seed, count):
    """An int32 [2] seed -> a list of `count` new int32 [2] seeds (what stateless_split
    does, with bits that XLA reproduces)."""
    return tf.unstack(philox_bits([count, 2], seed))
