"""Attention-based CUT's `bam` selector: a bottleneck attention module (Park et al.) gates
the source features, and the positions it amplifies most are compared
(docs/design/selection.md#attention-modules-of-attention-based-cut).
"""
import keras
import tensorflow as tf

from tfattncut.selection.base import reduced_width
from tfattncut.selection.gated import GatedSelector


class BAMSelector(GatedSelector):
    """M = sigmoid(Mc + Ms) from the source; vectors = (1 + M) ⊙ X and (1 + M) ⊙ X~.

    Channel gate Mc [B, 1, 1, C]: global average pool → Dense(C→C/r) → ReLU → Dense(C/r→C).
    Spatial gate Ms [B, H, W, 1]: 1×1 conv (C→C/r) → ReLU → two 3×3 convs (C/r→C/r,
    dilation d, zero 'same' padding) each → ReLU → 1×1 conv (C/r→1). r = 16, d = 4.

    BAM's BatchNorms (after the first Dense and after each spatial conv but the last) are
    left out, not replaced: at batch size 1 the channel gate's BatchNorm sees one vector and
    would output its offset alone, and a per-sample norm of that one vector is not BAM either;
    the convs keep their biases, which carry BatchNorm's learned offset. No batch statistics,
    so training and evaluation compute the same gate.
    Parameters: 2·C·C/r + C/r + C (channel) + C·C/r + C/r + 2·(9·(C/r)² + C/r) + C/r + 1
    (spatial); 17,233 for C = 256 (8,464 + 8,769).

    channels: C of the layer this selector serves; initializer: for every kernel (default:
      the reference's xavier, gain 0.02, as for every weight of F); biases start at 0.
    """

    residual = True

    def __init__(self, num_patches, channels, reduction=16, dilation=4, initializer=None,
                 **kwargs):
        super().__init__(num_patches, channels, initializer, **kwargs)
        self.reduction = reduction
        self.dilation = dilation
        hidden = self.hidden = reduced_width("bam", channels, reduction)
        self.channel_reduce = keras.layers.Dense(hidden, activation="relu",
                                                 kernel_initializer=self.initializer,
                                                 name="channel_reduce")
        self.channel_expand = keras.layers.Dense(channels, kernel_initializer=self.initializer,
                                                 name="channel_expand")
        self.spatial = [
            keras.layers.Conv2D(filters, size, padding="same", dilation_rate=rate,
                                activation=activation, kernel_initializer=self.initializer,
                                name=name)
            for name, filters, size, rate, activation in (
                ("spatial_reduce", hidden, 1, 1, "relu"),
                ("spatial_dilated_0", hidden, 3, dilation, "relu"),
                ("spatial_dilated_1", hidden, 3, dilation, "relu"),
                ("spatial_out", 1, 1, 1, None))]
        self.build()

    def build(self, input_shape=None):
        # Weights from the known C, inside this layer's name scope (paths select_i/...).
        self.channel_reduce.build([None, self.channels])
        self.channel_expand.build([None, self.hidden])
        for layer, inputs in zip(self.spatial, [self.channels] + 3 * [self.hidden]):
            layer.build([None, None, None, inputs])

    def gate(self, source):
        """[B, H, W, C] -> M [B, H, W, C]."""
        pooled = tf.reduce_mean(source, axis=[1, 2])
        channel = self.channel_expand(self.channel_reduce(pooled))[:, tf.newaxis, tf.newaxis]
        spatial = source
        for layer in self.spatial:
            spatial = layer(spatial)
        return tf.sigmoid(channel + spatial)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "dilation": self.dilation}
