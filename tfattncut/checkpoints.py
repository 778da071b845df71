"""Checkpoints that hold Keras 3 networks.

Keras 3 keeps sub-layers held in Python lists (our generator's numbered `layer_list`, the
heads and selectors of F) out of TensorFlow's object graph, so `tf.train.Checkpoint(
generator=model)` would save none of those weights, and restoring it would silently keep
the initial values. Every network is therefore checkpointed as the ordered list of its
weights (the order is fixed by the architecture), under the network's name.
"""
import keras
import tensorflow as tf


def _weights_of(network):
    holder = tf.Module(name=network.name)
    holder.weights = list(network.weights)
    return holder


def make_checkpoint(**objects):
    """tf.train.Checkpoint of `objects`; Keras layers/models are stored by their weights."""
    return tf.train.Checkpoint(**{
        name: _weights_of(obj) if isinstance(obj, keras.layers.Layer) else obj
        for name, obj in objects.items()})
