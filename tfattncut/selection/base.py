"""The contract every patch selector follows.

A selector decides which P feature vectors of one NCE layer the contrastive loss compares.
It sees the source features X (from G's forward pass on the real image) and the translated
features X~ (G's encoder on the generated image) together, because every method in
selection.md must pick -- or route -- both at the same positions with the same weights.
Selectors are Keras layers so that the ones with weights (the attention modules of
attention-based CUT) live inside the projection heads F and are trained by F's optimiser.
"""
import collections

import keras
import tensorflow as tf

from tfattncut.randomness import philox_bits


class Selection(collections.namedtuple("Selection", ["source", "translated", "indices"])):
    """What a selector returns for one layer.

    source:     [B, P, C] vectors from the source features (the keys, after the heads).
    translated: [B, P, C] vectors from the translated features (the queries).
    indices:    [B, P] int32 flat positions (row-major over H then W) that were chosen, for
                visualisation; for routed selectors, the positions of the selected queries.
    """


class Selector(keras.layers.Layer):
    """Base class: `call(source, translated, seed) -> Selection`.

    source, translated: [B, H, W, C] feature maps of the same layer (same shape).
    seed: int32 [2], a stateless-RNG seed that changes every step; selectors that draw random
      positions must use only `tf.random.stateless_*` ops with it, so that a resumed run and
      every replica of a distribution strategy draw exactly the same positions.
    num_patches: P; a selector returns min(P, H*W) vectors.
    """

    def __init__(self, num_patches, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches

    def call(self, source, translated, seed):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "num_patches": self.num_patches}


def flatten_positions(features):
    """[B, H, W, C] -> [B, H*W, C] in raster order (the N axis of selection.md)."""
    shape = tf.shape(features)
    return tf.reshape(features, [shape[0], shape[1] * shape[2], features.shape[-1]])


def patch_count(num_patches, values, axis=1):
    """P = min(num_patches, N), N = the size of `values` along `axis`; a Python int when N is
    static, because XLA needs a static k for top_k and slicing."""
    num_positions = values.shape[axis]
    if num_positions is None:
        return tf.minimum(num_patches, tf.shape(values)[axis])
    return min(num_patches, num_positions)


def most_significant(scores, num_patches):
    """[B, N] scores -> int32 [B, P] positions of the P largest, P = min(num_patches, N).

    Most significant first; equal scores go to the lower position first (`tf.math.top_k`
    keeps the lower index, eagerly and under XLA), so eager and compiled runs agree.
    """
    return tf.math.top_k(scores, k=patch_count(num_patches, scores, axis=-1)).indices


def random_positions(num_positions, count, seed):
    """int32 [count] distinct random positions of range(num_positions), a stateless draw.

    Integer Philox noise with a stable argsort, so compiled and uncompiled runs pick the same
    positions (tfattncut.randomness).
    """
    return tf.argsort(philox_bits([num_positions], seed), stable=True)[:count]
