"""Attention-based CUT's `triplet_attention` selector: triplet attention (Misra et al.) gates
the source features through its three cross-dimension branches, and the positions it lets
through most are compared
(docs/design/selection.md#attention-modules-of-attention-based-cut).
"""
import keras
import tensorflow as tf

from tfattncut.selection.gated import GatedSelector


class _ZPoolGate(keras.layers.Layer):
    """One branch: Z-pool over the last axis → k×k conv (2→1) → norm → sigmoid.

    [B, R, S, D] -> [B, R, S, 1]: the gate over the 2-D plane (R, S) that remains once the
    third axis D is pooled. Z-pool = [max, mean] over D, in that channel order.

    The reference's BatchNorm of the conv output is replaced by a per-sample norm of that
    one-channel map over (R, S), with the same learned scale and offset and epsilon 1e-5: it is
    BatchNorm's computation without the batch axis, so the gate is standardised the same way
    at batch size 1 and needs no running statistics. The conv has no bias, as in the
    reference, since the norm would remove it.
    """

    def __init__(self, kernel_size, initializer, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(1, kernel_size, padding="same", use_bias=False,
                                        kernel_initializer=initializer, name="conv")
        self.norm = keras.layers.GroupNormalization(groups=1, epsilon=1e-5, name="norm")

    def build(self, input_shape=None):
        self.conv.build([None, None, None, 2])
        self.norm.build([None, None, None, 1])

    def call(self, x):
        pooled = tf.stack([tf.reduce_max(x, axis=-1), tf.reduce_mean(x, axis=-1)], axis=-1)
        return tf.sigmoid(self.norm(self.conv(pooled)))


class TripletAttentionSelector(GatedSelector):
    """M = mean of the three branch gates; vectors = M ⊙ X and M ⊙ X~ (M from the source).

    Averaging the three gated outputs (X ⊙ g1 + X ⊙ g2 + X ⊙ g3) / 3 is X ⊙ M, so the module
    is one gate M [B, H, W, C]. Each branch sees X rotated so that the pooled axis is last and
    the plane it convolves is laid out as in the reference's NCHW permutes:
      C–W interaction: plane (C, W), pooled over H, gate [B, 1, W, C];
      C–H interaction: plane (H, C), pooled over W, gate [B, H, 1, C];
      H–W interaction: plane (H, W), pooled over C, gate [B, H, W, 1].
    Parameters: 3 × (2·k² + 2), independent of C; 300 for k = 7 (so also for C = 256).

    channels: C of the layer this selector serves (no weight depends on it);
    initializer: for the conv kernels (default: the reference's xavier, gain 0.02, as for
      every weight of F).
    """

    # Each permutation is its own inverse, so it also rotates the gate back.
    _PERMUTATIONS = {"gate_cw": [0, 3, 2, 1], "gate_hc": [0, 1, 3, 2], "gate_hw": [0, 1, 2, 3]}

    def __init__(self, num_patches, channels, kernel_size=7, initializer=None, **kwargs):
        super().__init__(num_patches, channels, initializer, **kwargs)
        self.kernel_size = kernel_size
        self.branches = {name: _ZPoolGate(kernel_size, self.initializer, name=name)
                         for name in self._PERMUTATIONS}
        self.build()

    def build(self, input_shape=None):
        # Inside this layer's name scope, so weight paths read select_i/gate_cw/conv/kernel.
        for branch in self.branches.values():
            branch.build()

    def gate(self, source):
        """[B, H, W, C] -> M [B, H, W, C]."""
        gates = [tf.transpose(self.branches[name](tf.transpose(source, perm)), perm)
                 for name, perm in self._PERMUTATIONS.items()]
        return (gates[0] + gates[1] + gates[2]) / 3.0  # broadcasts to [B, H, W, C]

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
