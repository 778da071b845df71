"""The QS-Attn ablations of the paper's Table 3 (docs/design/selection.md#ablations).

Each one is qs_global with one step replaced: the queries are chosen differently, or they
are routed differently. All take qs_global's constructor arguments (block_size, blocked).
"""
import tensorflow as tf

from tfattncut.selection.base import (flatten_positions, gather_positions, patch_count,
                                      random_positions)
from tfattncut.selection.qsattn import QSGlobal, attention_rows


class QSRandomRoute(QSGlobal):
    """Flag value `qs_random_route` (model B): random query ids, routed by their global rows.

    The ids are a stateless permutation of N drawn from `seed`, shared by every image; the
    source's A rows at those ids route both domains.
    """

    def select(self, source, seed):
        features = flatten_positions(source)
        ids = random_positions(tf.shape(features)[1], patch_count(self.num_patches, features),
                               seed)
        return tf.tile(ids[tf.newaxis], [tf.shape(features)[0], 1])


class QSSelectOnly(QSGlobal):
    """Flag value `qs_select_only` (model C): entropy selection, no routing.

    The selected raw X and X~ vectors, so the translated branch gets no gradient from the
    source (as in plain CUT).
    """

    def route(self, source, translated, ids):
        return (
            gather_positions(flatten_positions(source), ids),
            gather_positions(flatten_positions(translated), ids),
        )


class QSSelfRoute(QSGlobal):
    """Flag value `qs_self_route` (model D): each domain routed by its own attention matrix.

    Rows chosen by the source entropy; source vectors = A[ids] X with A = softmax(X Xᵀ),
    translated vectors = Ã[ids] X~ with Ã = softmax(X~ X~ᵀ).
    """

    def route(self, source, translated, ids):
        return tuple(
            tf.linalg.matmul(attention_rows(features, ids, self.blocked), features)
            for features in (flatten_positions(source), flatten_positions(translated))
        )


def query_sparsity(logits, channels):
    """Informer's M_i = max_j(S_ij / sqrt(C)) - mean_j(S_ij / sqrt(C)): [B, R, N] -> [B, R]."""
    logits *= tf.math.rsqrt(tf.cast(channels, logits.dtype))
    return tf.reduce_max(logits, axis=-1) - tf.reduce_mean(logits, axis=-1)


class Informer(QSGlobal):
    """Flag value `informer` (model F): the P queries of largest query sparsity (above),
    S = X Xᵀ computed blockwise like the entropies, routed by their global A rows (the
    unscaled softmax(S), as qs_global).
    """

    def select(self, source, seed):
        features = flatten_positions(source)
        channels = tf.shape(features)[2]
        sparsity = self.global_scores(features, lambda logits: query_sparsity(logits, channels))
        return self.most_significant(sparsity, seed)

    def zero_entropy_fraction(self, source):
        """None: Informer ranks by query sparsity, not entropy."""
        return None
