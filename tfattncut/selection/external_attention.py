"""Attention-based CUT's `external_attention` selector: attention of every position to S
learned memory units picks the patches whose assignment to the memory is sharpest
(docs/design/selection.md#attention-modules-of-attention-based-cut).
"""
import keras
import tensorflow as tf

from tfattncut.selection.base import (LearnedSelector, Selection, flatten_positions,
                                      gather_positions, most_significant)


class ExternalAttentionSelector(LearnedSelector):
    """External attention (Guo et al.) with memories M_k (C→S) and M_v (S→C), no biases.

    A = softmax over the N positions of X M_kᵀ, then each row divided by (1e-9 + its sum
    over the S units) (the paper's double normalisation); significance = −entropy over S.

    Routing, "source from X, translated from X~ with the source's A": the module's output
    A M_v depends on the features only through A, so X and X~ enter as in the external-
    attention block's residual, X + A M_v. Source vectors = X_sel + (A M_v)_sel, translated
    vectors = X~_sel + (A M_v)_sel with the same A from the source. (Using A M_v alone would
    give both domains the same vector and no signal to G.)
    Parameters: 2·C·S; 32,768 for C = 256, S = 64.

    channels: C of the layer this selector serves; memory_units: S; initializer: for M_k
      and M_v (default: the reference's xavier, gain 0.02, as for every weight of F).
    """

    def __init__(self, num_patches, channels, memory_units=64, initializer=None, **kwargs):
        super().__init__(num_patches, channels, initializer, **kwargs)
        self.memory_units = memory_units
        self.memory_key = keras.layers.Dense(memory_units, use_bias=False,
                                             kernel_initializer=self.initializer,
                                             name="memory_key")
        self.memory_value = keras.layers.Dense(channels, use_bias=False,
                                               kernel_initializer=self.initializer,
                                               name="memory_value")
        self.build()

    def build(self, input_shape=None):
        # Weights from the known C, inside this layer's name scope (paths select_i/memory_...).
        self.memory_key.build([None, self.channels])
        self.memory_value.build([None, self.memory_units])

    def call(self, source, translated, seed):
        source = flatten_positions(source)
        attention = tf.nn.softmax(self.memory_key(source), axis=1)  # over N: [B, N, S]
        attention = attention / (1e-9 + tf.reduce_sum(attention, axis=-1, keepdims=True))
        # xlogy: a unit whose weight underflows to 0 contributes 0, not 0·(−inf).
        indices = most_significant(tf.reduce_sum(tf.math.xlogy(attention, attention), -1),
                                   self.num_patches)
        memory = self.memory_value(gather_positions(attention, indices))  # [B, P, C]
        return Selection(
            source=gather_positions(source, indices) + memory,
            translated=gather_positions(flatten_positions(translated), indices) + memory,
            indices=indices,
        )

    def get_config(self):
        return {**super().get_config(), "memory_units": self.memory_units}
