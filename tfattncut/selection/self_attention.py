"""Attention-based CUT's `self_attention` selector: the rows of a learned self-attention that
attend most sharply pick the patches, and route both domains
(docs/design/selection.md#attention-modules-of-attention-based-cut).
"""
import keras
import tensorflow as tf

from tfattncut.selection.base import (LearnedSelector, Selection, flatten_positions,
                                      gather_positions, most_significant, reduced_width)


class SelfAttentionSelector(LearnedSelector):
    """A = softmax(Q Kᵀ / √d) over positions, Q = X W_q + b_q, K = X W_k, d = C / reduction.

    significance = −entropy of each row of A (sharp rows first); source vectors = A_sel · X,
    translated vectors = A_sel · X~: the values are the raw features, so what the loss
    compares is still G's features, mixed the same way in both domains.

    The key projection has no bias: q_i · b_k is the same for every key of row i, so the row
    softmax cancels it and it would be a weight that never receives a gradient.
    Parameters: C·d + d + C·d; 16,416 for C = 256. Memory: A is [B, N, N] (64 MiB per image
    at N = 4096).

    channels: C of the layer this selector serves; initializer: for W_q and W_k (default:
      the reference's xavier, gain 0.02, as for every weight of F).
    """

    def __init__(self, num_patches, channels, reduction=8, initializer=None, **kwargs):
        super().__init__(num_patches, channels, initializer, **kwargs)
        self.reduction = reduction
        self.key_dim = reduced_width("self_attention", channels, reduction)
        self.query = keras.layers.Dense(self.key_dim, kernel_initializer=self.initializer,
                                        name="query")
        self.key = keras.layers.Dense(self.key_dim, use_bias=False,
                                      kernel_initializer=self.initializer, name="key")
        self.build()

    def build(self, input_shape=None):
        # Weights from the known C, inside this layer's name scope (paths select_i/query/...).
        self.query.build([None, self.channels])
        self.key.build([None, self.channels])

    def call(self, source, translated, seed):
        source = flatten_positions(source)
        logits = tf.matmul(self.query(source), self.key(source), transpose_b=True)
        log_attention = tf.nn.log_softmax(logits / self.key_dim**0.5, axis=-1)  # [B, N, N]
        attention = tf.exp(log_attention)
        # Σ A log A = −entropy; with log_softmax an underflowed A_ij contributes exactly 0.
        indices = most_significant(tf.reduce_sum(attention * log_attention, axis=-1),
                                   self.num_patches)
        rows = gather_positions(attention, indices)  # [B, P, N]
        return Selection(
            source=tf.matmul(rows, source),
            translated=tf.matmul(rows, flatten_positions(translated)),
            indices=indices,
        )

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
