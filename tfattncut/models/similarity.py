"""SimDCL's extra networks (docs/design/baselines.md#simdcl): each maps the projected patches
of one image, all NCE layers together, to one 64-d unit vector, so that a real and a
translated image of the same domain can be compared as wholes (the similarity loss that
counters mode collapse).
"""
import keras
import tensorflow as tf

from tfattncut.layers import Conv, make_initializer
from tfattncut.models.heads import unit_length
from tfattncut.options import INIT_GAIN, INIT_TYPE


class SimilarityMapper(keras.Model):
    """[B, P, d, L] (P projected patches of width d, one channel per NCE layer) -> [B, dim].

    The reference's `MappingF`: the stack is read as an L-channel P×d image; conv 3×3 stride 2
    (no padding) to `dim`, ReLU, global average pool, Dense(dim), ReLU, Dense(dim), then
    unit_length like the projection heads.
    """

    def __init__(self, num_layers, dim=64, init_type=INIT_TYPE, init_gain=INIT_GAIN, **kwargs):
        super().__init__(**kwargs)
        init = make_initializer(init_type, init_gain)
        self.conv = Conv(dim, 3, stride=2, initializer=init)
        self.hidden = keras.layers.Dense(dim, activation="relu", kernel_initializer=init)
        self.out = keras.layers.Dense(dim, kernel_initializer=init)
        self.conv.build([None, None, None, num_layers])
        self.hidden.build([None, dim])
        self.out.build([None, dim])
        self.built = True

    def call(self, patches):
        x = tf.nn.relu(self.conv(patches))
        return unit_length(self.out(self.hidden(tf.reduce_mean(x, axis=[1, 2]))))
