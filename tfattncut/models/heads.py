"""The projection side F of the contrastive loss: one selector and one MLP head per NCE layer.

Selectors with weights (the attention modules of attention-based CUT) live here, so they are
trained by F's optimiser and add nothing to G or D
(docs/design/selection.md#attention-modules-of-attention-based-cut).
"""
import keras
import tensorflow as tf

from tfattncut.layers import make_initializer
from tfattncut.options import INIT_GAIN, INIT_TYPE, NETF_NC
from tfattncut.randomness import split_seed
from tfattncut.selection import make_selectors


def unit_length(vectors):
    """v / (‖v‖₂ + 1e-7) over the last axis, in float32, as the reference normalises.

    The norm's gradient is NaN at v = 0 (a patch whose ReLU features are all zero at
    initialisation; observed under XLA), so the squared norm is floored at 1e-30: that
    changes no value by more than 1e-8 relative, and the gradient stays finite.
    """
    v = tf.cast(vectors, tf.float32)
    squared = tf.reduce_sum(tf.square(v), axis=-1, keepdims=True)
    return v / (tf.sqrt(tf.maximum(squared, 1e-30)) + 1e-7)


class ProjectionHead(keras.layers.Layer):
    """`mlp_sample`: Dense(C→nc), ReLU, Dense(nc→nc), then v / (‖v‖₂ + 1e-7)."""

    def __init__(self, channels, netF_nc=NETF_NC, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(netF_nc, activation="relu",
                                         kernel_initializer=initializer)
        self.out = keras.layers.Dense(netF_nc, kernel_initializer=initializer)
        self.hidden.build([None, channels])
        self.out.build([None, netF_nc])

    def call(self, vectors):
        """[B, P, C] -> [B, P, nc], unit length, float32 under any policy (the NCE logits are
        dot products of these)."""
        return unit_length(self.out(self.hidden(vectors)))


def layer_seeds_of(seed, num_layers):
    """One stateless seed per NCE layer (the same under XLA and in graph mode)."""
    return split_seed(seed, num_layers)


class PatchProjector(keras.Model):
    """F: for each NCE layer, select P positions of both feature maps, then project them.

    Built from the known encoder channel counts, so no data-dependent lazy creation.
    """

    def __init__(self, channels, selectors, netF_nc=NETF_NC, init_type=INIT_TYPE,
                 init_gain=INIT_GAIN, **kwargs):
        super().__init__(**kwargs)
        if len(channels) != len(selectors):
            raise ValueError(f"one selector per NCE layer: {len(channels)} layers, "
                             f"{len(selectors)} selectors")
        init = make_initializer(init_type, init_gain)
        self.selectors = list(selectors)
        self.heads = [ProjectionHead(c, netF_nc, init, name=f"head_{i}")
                      for i, c in enumerate(channels)]
        self.built = True

    def call(self, source_features, translated_features, seed):
        """Lists of [B, H, W, C] maps (one per layer) -> lists of keys, queries [B, P, nc]
        and the selected positions [B, P], per layer. `seed`: int32 [2], fresh each step."""
        return self.select_and_embed(source_features, translated_features, seed, self.heads)

    def select_and_embed(self, source_features, translated_features, seed, query_heads):
        """call's selection and keys, with the queries embedded by `query_heads` (one per
        layer): this projector's own in CUT; in DCLGAN the other projector's, since there the
        other generator's encoder gives the translated image's features."""
        keys, queries, positions = [], [], []
        layer_seeds = layer_seeds_of(seed, len(self.selectors))
        for i, (selector, key_head, query_head) in enumerate(
                zip(self.selectors, self.heads, query_heads)):
            selection = selector(source_features[i], translated_features[i], layer_seeds[i])
            keys.append(key_head(selection.source))
            queries.append(query_head(selection.translated))
            positions.append(selection.indices)
        return keys, queries, positions


def build_projector(config, generator, name="projector"):
    """F of the run's configuration for `generator`'s --nce_layers: the --selector of each
    layer (selection.make_selectors) and a --netF_nc head sized to its channels."""
    num_layers = len(generator.layer_list)
    if max(config.nce_layers) >= num_layers:
        raise ValueError(f"--nce_layers {config.nce_layers}: the generator has layers "
                         f"0..{num_layers - 1}")
    channels = generator.feature_channels(config.nce_layers)
    return PatchProjector(channels, make_selectors(config, channels), config.netF_nc,
                          config.init_type, config.init_gain, name=name)
