"""QS-Attn query selection (docs/design/selection.md#qs-attn): keep the P source queries
whose attention is most peaked, and route both domains through those attention rows.

Every QS-Attn selector is two steps, and the variants (here and in ablations.py) differ in
one of them only:
  select: [B, H, W, C] source -> [B, P] query ids (no gradient: they are indices);
  route:  the ids -> the [B, P, C] source and translated vectors. The attention weights come
          from the source and are NOT stop-gradient
          (docs/design/losses.md#qs-attn-gradient-path).
The module-level functions below are the shared pieces; the selectors are thin compositions.
"""
import dataclasses

import tensorflow as tf

from tfattncut.options import NON_NEGATIVE, option
from tfattncut.selection.base import (Selection, Selector, flatten_positions, gather_positions,
                                      most_significant)

WINDOW = 7
RADIUS = WINDOW // 2
LAYOUTS = ("reference", "correct")
TIE_BREAKS = ("random", "index")
BLOCK_SIZE = 512  # --qs_block_size's default: rows of the global entropy computed at once


@dataclasses.dataclass(frozen=True)
class QSOptions:
    """What every QS-Attn selector (here and in ablations.py) lets a run choose."""
    qs_tie_break: str = option(
        "random", "How equal scores are ranked (many entropies are exactly 0 early in "
        "training): random (uniformly, from the step's seed, like the reference's GPU sort) "
        "or index (lowest position first).", TIE_BREAKS)
    qs_block_size: int = option(
        BLOCK_SIZE, "Rows per block of the memory-efficient global entropy (0: dense N×N).",
        bounds=NON_NEGATIVE)


@dataclasses.dataclass(frozen=True)
class QSLocalOptions(QSOptions):
    """The local selectors' window layout besides QSOptions."""
    qs_local_layout: str = option(
        "reference", "Window layout: reference (the reference code's mixed-up (C, 49) "
        "layout, which produced the published numbers) or correct (the true 7x7 "
        "neighbours).", LAYOUTS)


def at_least_float32(features):
    """float16 / bfloat16 features (--mixed_precision) as float32, others unchanged: the
    attention logits, softmax and entropy are computed in float32 or wider."""
    if features.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(features, tf.float32)
    return features


def softmax_entropy(logits):
    """Entropy of softmax(logits) over the last axis: [..., N] -> [...].

    Written as H = log Z - sum(e * s) / Z on max-shifted logits s, e = exp(s), Z = sum(e): an
    underflowed e multiplies a finite logit, which gives the 0 * log 0 = 0 convention without
    a log of zero; the shift keeps both terms small, so a peaked row does not lose H to
    cancellation; and exp runs once over the N x N scores (it is most of the selection's cost).
    """
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    exps = tf.exp(shifted)
    normaliser = tf.reduce_sum(exps, axis=-1)
    return tf.math.log(normaliser) - tf.reduce_sum(exps * shifted, axis=-1) / normaliser


def row_scores(features, score, block_size=None):
    """score(logits [B, R, N]) -> [B, R], for every row of S = X Xᵀ: [B, N, C] -> [B, N].

    block_size=None builds the dense N x N matrix (the reference's way; used by tests).
    Otherwise R = block_size query rows at a time, one block after another, so the extra
    memory peaks at B * R * N instead of B * N * N. The scores only choose indices, so no
    gradient is traced through the loop.
    """
    features = tf.stop_gradient(features)
    if block_size is None:
        return score(tf.linalg.matmul(features, features, transpose_b=True))
    shape = tf.shape(features)
    batch, num_positions = shape[0], shape[1]
    rows = tf.minimum(block_size, num_positions)
    num_blocks = (num_positions + rows - 1) // rows
    # Zero query rows round N up to whole blocks; their (finite) scores are sliced off below.
    queries = tf.pad(features, [[0, 0], [0, num_blocks * rows - num_positions], [0, 0]])
    queries = tf.reshape(queries, [batch, num_blocks, rows, shape[2]])
    blocks = tf.map_fn(
        lambda block: score(tf.linalg.matmul(block, features, transpose_b=True)),
        tf.transpose(queries, [1, 0, 2, 3]),
        fn_output_signature=features.dtype,
        parallel_iterations=1,  # one block alive at a time: that is the memory bound
    )
    return tf.reshape(tf.transpose(blocks, [1, 0, 2]), [batch, -1])[:, :num_positions]


def attention_rows(features, ids, blocked=True):
    """Rows ids of A = softmax(X Xᵀ): [B, N, C], [B, P] -> [B, P, N], with gradient to X.

    Blocked: only the P selected rows of S are computed (P x N memory); dense: all of A,
    then the rows are gathered. Both are the same function of X, gradient included.
    """
    if blocked:
        queries = gather_positions(features, ids)
        return tf.nn.softmax(tf.linalg.matmul(queries, features, transpose_b=True))
    attention = tf.nn.softmax(tf.linalg.matmul(features, features, transpose_b=True))
    return gather_positions(attention, ids)


def cross_route(source, translated, ids, blocked=True):
    """The default routing: the source's A rows applied to both domains.

    source, translated: [B, N, C]; ids: [B, P]. Returns ([B, P, C], [B, P, C]).
    """
    rows = attention_rows(source, ids, blocked)
    return tf.linalg.matmul(rows, source), tf.linalg.matmul(rows, translated)


def all_positions(features):
    """[B, H, W, C] -> [B, N] int32 ids 0..N-1 for every image."""
    shape = tf.shape(features)
    return tf.tile(tf.range(shape[1] * shape[2])[tf.newaxis], [shape[0], 1])


def local_windows(features, ids):
    """The 7x7 neighbourhood of each position in ids: [B, H, W, C], [B, P] -> [B, P, 49, C].

    Neighbour k = 7 * dy + dx holds the vector at (y + dy - 3, x + dx - 3), zeros outside the
    map: the layout of tf.image.extract_patches, i.e. the correct reading of an unfold.
    Gathering only at ids keeps routing at P * 49 * C memory.
    """
    shape = tf.shape(features)
    width = shape[2]
    padded_width = width + 2 * RADIUS
    padded = tf.pad(features, [[0, 0], [RADIUS, RADIUS], [RADIUS, RADIUS], [0, 0]])
    padded = tf.reshape(padded, [shape[0], -1, shape[3]])
    offsets = tf.reshape(
        tf.range(WINDOW)[:, tf.newaxis] * padded_width + tf.range(WINDOW)[tf.newaxis, :], [-1]
    )
    # A position's window starts at its own (y, x) in the padded map.
    corners = (ids // width) * padded_width + ids % width
    return tf.gather(padded, corners[..., tf.newaxis] + offsets, batch_dims=1)


def reference_keys(windows):
    """The keys the reference code compares against: [B, P, 49, C] -> [B, P, 49, C].

    torch's unfold lays a window out channel-major (flat m = 49 * c + k); the reference
    reshapes that vector to (49, C) as if it were neighbour-major, so its key j, channel c'
    is flat entry m = C * j + c', i.e. neighbour m % 49 of channel m // 49.
    """
    shape = tf.shape(windows)
    channel_major = tf.reshape(tf.transpose(windows, [0, 1, 3, 2]), [shape[0], shape[1], -1])
    return tf.reshape(channel_major, shape)


def reference_values(windows):
    """The value vectors the reference code routes: [B, P, 49, C] -> [B, P, 49, C].

    The reference gathers the selected windows with feat_local[arange(B)[:, None], :, ids]
    expecting [B, C*49, P], but advanced indices split by a slice put their dimensions
    first, so it gets [B, P, C*49] (channel-major windows). Its permute(0, 2, 1), meant to
    give [B, P, C*49], thus gives [B, C*49, P], which .view reads row-major as [B*P, 49, C].
    So value (p, j, c') of selected query p is entry o = 49*C*p + C*j + c' of the image's
    [C*49, P] array: selected window o % P, flat m = o // P (neighbour m % 49 of channel
    m // 49). Values of different selected queries are mixed.
    """
    shape = tf.shape(windows)
    channel_major = tf.reshape(tf.transpose(windows, [0, 1, 3, 2]), [shape[0], shape[1], -1])
    return tf.reshape(tf.transpose(channel_major, [0, 2, 1]), shape)


def local_logits(features, ids, layout="correct"):
    """Scores of each query at ids against its 49 neighbour keys: -> [B, P, 49]."""
    keys = local_windows(features, ids)
    if layout == "reference":
        keys = reference_keys(keys)
    queries = gather_positions(flatten_positions(features), ids)
    return tf.einsum("bpkc,bpc->bpk", keys, queries)


class QSGlobal(Selector):
    """Flag value `qs_global`: global entropy selection, cross-domain routing.

    Per image, the P rows of A = softmax(X Xᵀ) with the smallest entropy are selected;
    source vectors A_qs X, translated vectors A_qs X~ (A_qs from the source only).

    block_size: rows of S per step when computing the entropies (see row_scores).
    blocked: False computes the dense N x N matrix instead; the same result, for tests.
    tie_break: how equal scores are ranked (flag qs_tie_break). "random" (default): uniformly
        at random from the step's seed, as the reference's GPU sort does in effect; at
        initialisation most rows of a deep layer have entropy exactly 0, and "index" (lowest
        position first, for tests with pinned indices) would then pick the image's top strip.
    Subclasses change `select` or `route`; both receive [B, H, W, C] maps.
    """

    options = QSOptions

    def __init__(self, num_patches, block_size=BLOCK_SIZE, blocked=True, tie_break="random",
                 **kwargs):
        super().__init__(num_patches, **kwargs)
        if block_size < 1:
            raise ValueError(f"{type(self).__name__}: block_size must be >= 1, got {block_size}.")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"{type(self).__name__}: tie_break (flag qs_tie_break) must be one "
                             f"of {TIE_BREAKS}, got {tie_break!r}.")
        self.block_size = block_size
        self.blocked = blocked
        self.tie_break = tie_break

    @classmethod
    def arguments_from(cls, config, channels):
        """--qs_tie_break, and --qs_block_size (0: the dense computation)."""
        del channels
        blocking = ({"block_size": config.qs_block_size} if config.qs_block_size
                    else {"blocked": False})
        return {**blocking, "tie_break": config.qs_tie_break}

    def call(self, source, translated, seed):
        source, translated = at_least_float32(source), at_least_float32(translated)
        if not source.shape.is_compatible_with(translated.shape):
            raise ValueError(
                f"{type(self).__name__}: source features {source.shape} and translated "
                f"features {translated.shape} must come from the same NCE layer (same shape)."
            )
        ids = self.select(source, seed)
        routed_source, routed_translated = self.route(source, translated, ids)
        return Selection(source=routed_source, translated=routed_translated, indices=ids)

    def global_scores(self, features, score):
        """row_scores with this selector's blocking: [B, N, C] -> [B, N]."""
        return row_scores(features, score, self.block_size if self.blocked else None)

    def significance(self, source):
        """[B, H, W, C] -> [B, N]: minus the entropy of each attention row, so the most
        significant (lowest-entropy) queries score highest; also the TensorBoard heat map."""
        return -self.global_scores(flatten_positions(at_least_float32(source)),
                                   softmax_entropy)

    def select(self, source, seed):
        return self.most_significant(self.significance(source), seed)

    def most_significant(self, scores, seed):
        """The P highest `scores` [B, N], ties broken by `tie_break` -> [B, P]."""
        return most_significant(scores, self.num_patches,
                                seed if self.tie_break == "random" else None)

    def zero_entropy_fraction(self, source):
        """The fraction of positions whose entropy is exactly 0 (one-hot attention), [B, H, W,
        C] -> scalar: these rows tie, so the tie rule, not the features, picks among them."""
        return tf.reduce_mean(tf.cast(tf.equal(self.significance(source), 0.0), tf.float32))

    def route(self, source, translated, ids):
        return cross_route(
            flatten_positions(source), flatten_positions(translated), ids, self.blocked
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size, "blocked": self.blocked,
                "tie_break": self.tie_break}


class QSLocal(QSGlobal):
    """Flag value `qs_local`: 7x7 local entropy selection, local routing.

    For each position, softmax over its 49 neighbour keys (zero padding 3) of key . X_i; the
    P positions with the smallest entropy are routed as the 49 weights . the 49 neighbour
    values, X's for the source and X~'s (same positions, source weights) for the translated.

    layout: "reference" (default, so the presets reproduce the published numbers): what the
        reference PyTorch code (PatchSampleF in networks_local.py) computes: keys =
        reference_keys(windows) (an unfolded window read as (49, C) although it is (C, 49)),
        values = reference_values(windows) (additionally shuffled across the selected
        queries of an image by its gather). "correct": keys and values are the true 7x7
        neighbours (local_windows), the documented alternative.
    Selection materialises the 49 windows of all N positions (stop-gradient), as the
    reference's unfold does; block_size / blocked only matter for subclasses that route
    globally.
    """

    options = QSLocalOptions

    def __init__(self, num_patches, layout="reference", **kwargs):
        super().__init__(num_patches, **kwargs)
        if layout not in LAYOUTS:
            raise ValueError(
                f"{type(self).__name__}: layout (flag qs_local_layout) must be one of "
                f"{LAYOUTS}, got {layout!r}."
            )
        self.layout = layout

    @classmethod
    def arguments_from(cls, config, channels):
        return {**super().arguments_from(config, channels), "layout": config.qs_local_layout}

    def significance(self, source):
        """[B, H, W, C] -> [B, N]: minus the local (7×7) entropy of each position."""
        source = tf.stop_gradient(at_least_float32(source))
        return -softmax_entropy(local_logits(source, all_positions(source), self.layout))

    def route(self, source, translated, ids):
        weights = tf.nn.softmax(local_logits(source, ids, self.layout))
        routed = []
        for features in (source, translated):
            values = local_windows(features, ids)
            if self.layout == "reference":
                values = reference_values(values)
            routed.append(tf.einsum("bpk,bpkc->bpc", weights, values))
        return tuple(routed)

    def get_config(self):
        return {**super().get_config(), "layout": self.layout}


class QSLocalGlobal(QSLocal):
    """Flag value `qs_local_global`: select by local entropy (as qs_local, same `layout`
    option, which here only affects the keys), route with the global rows A[b, ids_b, :]
    (as qs_global; only those P rows are computed when blocked)."""

    route = QSGlobal.route

