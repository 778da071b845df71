"""The gating modules of attention-based CUT (BAM, triplet attention) as one family: a gate
over the source features ranks the positions and rescales the vectors kept.

The selection is deterministic: ties go to the lower raster index (base.most_significant).
"""
import tensorflow as tf

from tfattncut.selection.base import (LearnedSelector, Selection, flatten_positions,
                                      gather_positions, most_significant)


class GatedSelector(LearnedSelector):
    """A module that rescales the features with a gate M in (0, 1) computed from the source.

    significance of a position = mean over channels of M there; vectors = (r + M) ⊙ X at the
    P most significant positions, the same M applied to X~ (r = 1 for a residual gate as in
    BAM, 0 for a plain gate). Subclasses implement `gate`.
    """

    residual = False

    def gate(self, source):
        """[B, H, W, C] source features -> M [B, H, W, C]."""
        raise NotImplementedError

    def call(self, source, translated, seed):
        gate = flatten_positions(self.gate(source))
        indices = most_significant(tf.reduce_mean(gate, axis=-1), self.num_patches)
        scale = gather_positions(gate, indices) + float(self.residual)
        return Selection(
            source=scale * gather_positions(flatten_positions(source), indices),
            translated=scale * gather_positions(flatten_positions(translated), indices),
            indices=indices,
        )
