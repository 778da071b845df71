"""The contract every patch selector follows.

A selector decides which P feature vectors of one NCE layer the contrastive loss compares.
It sees the source features X (from G's forward pass on the real image) and the translated
features X~ (G's encoder on the generated image) together, because every method in
docs/design/selection.md#the-contract must pick -- or route -- both at the same positions
with the same weights. Selectors are Keras layers so that the ones with weights (the
attention modules of attention-based CUT) live inside the projection heads F and are
trained by F's optimiser.
"""
import collections

import keras
import tensorflow as tf

from tfattncut.layers import make_initializer
from tfattncut.options import NoOptions
from tfattncut.randomness import philox_bits


class Selection(collections.namedtuple("Selection", ["source", "translated", "indices"])):
    """What a selector returns for one layer.

    source:     [B, P, C] vectors from the source features (the keys, after the heads).
    translated: [B, P, C] vectors from the translated features (the queries).
    indices:    [B, P] int32 flat positions (row-major over H then W) that were chosen, for
                visualisation; for routed selectors, the positions of the selected queries.
    """


class SelectionMap(collections.namedtuple(
        "SelectionMap", ["layer", "indices", "significance", "grid", "zero_entropy_fraction"])):
    """Where a selector looks on one NCE layer, for TensorBoard.

    layer: the nce layer number; indices: [B, P] selected positions; significance: [B, N]
    what the selector ranks by, or None; grid: the feature map's (h, w);
    zero_entropy_fraction: scalar share of positions tied at entropy 0, or None for
    selectors that do not rank by entropy.
    """


class Selector(keras.layers.Layer):
    """Base class: `call(source, translated, seed) -> Selection`.

    source, translated: [B, H, W, C] feature maps of the same layer (same shape).
    seed: int32 [2], a stateless-RNG seed that changes every step; selectors that draw random
      positions must use only `tf.random.stateless_*` ops with it, so that a resumed run and
      every replica of a distribution strategy draw exactly the same positions.
    num_patches: P; a selector returns min(P, H*W) vectors.

    A selector is built for a run by its own `from_run_config`; `options` is the frozen
    dataclass of its own flags (tfattncut.options.option fields), none by default.
    """

    options = NoOptions

    def __init__(self, num_patches, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches

    @classmethod
    def from_run_config(cls, config, channels, name):
        """This selector for an NCE layer of `channels` channels, as the run's Config asks:
        --num_patches and `arguments_from(config, channels)`. (Not Keras' `from_config`,
        which rebuilds a layer from its own `get_config`.)"""
        return cls(config.num_patches, name=name, **cls.arguments_from(config, channels))

    @classmethod
    def arguments_from(cls, config, channels):
        """The constructor's arguments besides num_patches and name that the run's Config
        sets; none by default."""
        del config, channels
        return {}

    def call(self, source, translated, seed):
        raise NotImplementedError

    def significance(self, source):
        """What the selector ranks positions by, [B, H, W, C] -> [B, N] (TensorBoard's heat
        map), or None for a selector without one."""
        del source

    def zero_entropy_fraction(self, source):
        """The share of positions tied at entropy 0, [B, H, W, C] -> scalar, or None for a
        selector that does not rank by entropy."""
        del source
        return None

    def get_config(self):
        return {**super().get_config(), "num_patches": self.num_patches}


class LearnedSelector(Selector):
    """A selector with weights of its own (attention-based CUT's modules): sized to its
    layer's `channels` and initialised as every weight of F (--init_type, --init_gain;
    `initializer` default: the reference's xavier, gain 0.02)."""

    def __init__(self, num_patches, channels, initializer=None, **kwargs):
        super().__init__(num_patches, **kwargs)
        self.channels = channels
        self.initializer = initializer or make_initializer()

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "initializer": self.initializer}

    @classmethod
    def arguments_from(cls, config, channels):
        return {"channels": channels,
                "initializer": make_initializer(config.init_type, config.init_gain)}


def reduced_width(module, channels, reduction):
    """C // reduction for a module's bottleneck; an error that says what to do when C is too
    small (the generator's first NCE layer has C = 3)."""
    if channels < reduction:
        raise ValueError(
            f"{module} reduces C to C/{reduction} and needs at least {reduction} channels; "
            f"this NCE layer has {channels}. Leave it out of --qs_layers.")
    return channels // reduction


def gather_positions(values, indices):
    """values [B, N, ...], indices [B, P] -> [B, P, ...], each image at its own positions."""
    return tf.gather(values, indices, batch_dims=1)


def flatten_positions(features):
    """[B, H, W, C] -> [B, H*W, C] in raster order (the N axis of
    docs/design/selection.md#the-contract)."""
    shape = tf.shape(features)
    return tf.reshape(features, [shape[0], shape[1] * shape[2], features.shape[-1]])


def patch_count(num_patches, values, axis=1):
    """P = min(num_patches, N), N = the size of `values` along `axis`; a Python int when N is
    static, because XLA needs a static k for top_k and slicing."""
    num_positions = values.shape[axis]
    if num_positions is None:
        return tf.minimum(num_patches, tf.shape(values)[axis])
    return min(num_patches, num_positions)


def most_significant(scores, num_patches, tie_seed=None):
    """[B, N] scores -> int32 [B, P] positions of the P largest, P = min(num_patches, N).

    Most significant first. Equal scores: with no `tie_seed`, the lower position first
    (`tf.math.top_k` keeps the lower index, eagerly and under XLA); with an int32 [2]
    `tie_seed`, in the order of a random permutation of the N positions drawn from it, so
    tied positions are chosen uniformly at random. The permutation is one per seed, shared
    by the batch (as `random`'s positions are), so every replica breaks ties as one device
    with the whole batch would, and compiled and uncompiled runs agree (random_positions).
    """
    count = patch_count(num_patches, scores, axis=-1)
    # XLA's top_k orders -0.0 below +0.0 and TF's kernel ties them (minus an entropy of 0
    # is -0.0): one zero keeps compiled and uncompiled rankings equal.
    scores = tf.where(tf.equal(scores, 0.0), tf.zeros_like(scores), scores)
    if tie_seed is None:
        return tf.math.top_k(scores, k=count).indices
    num_positions = scores.shape[-1] or tf.shape(scores)[-1]
    order = random_positions(num_positions, num_positions, tie_seed)
    ranked = tf.math.top_k(tf.gather(scores, order, axis=-1), k=count).indices
    return tf.gather(order, ranked)


def random_positions(num_positions, count, seed):
    """int32 [count] distinct random positions of range(num_positions), a stateless draw.

    Integer Philox noise with a stable argsort, so compiled and uncompiled runs pick the same
    positions (tfattncut.randomness).
    """
    return tf.argsort(philox_bits([num_positions], seed), stable=True)[:count]
