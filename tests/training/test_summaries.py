"""Image grids and the selection overlay."""
import numpy as np
import tensorflow as tf

from tfattncut.training import summaries


class SummariesTest(tf.test.TestCase):

    def test_grids_skip_rows_with_missing_images(self):
        images = {"real_a": -tf.ones([2, 4, 4, 3]), "fake_b": tf.ones([2, 4, 4, 3]),
                  "mask": tf.zeros([2, 4, 4, 1])}
        grids = summaries.image_grids(images, {"t": ("real_a", "fake_b"), "m": ("mask",),
                                               "x": ("real_a", "idt_b")})
        self.assertEqual(set(grids), {"t", "m"})
        self.assertEqual(grids["t"].shape, (2, 4, 8, 3))
        # Constant ±1 inputs map to 0, 1 and 0.5 exactly.
        self.assertAllClose(grids["t"][:, :, :4], tf.zeros([2, 4, 4, 3]))
        self.assertAllClose(grids["t"][:, :, 4:], tf.ones([2, 4, 4, 3]))
        self.assertAllClose(grids["m"], tf.fill([2, 4, 4, 3], 0.5))

    def test_a_row_of_different_sizes_is_shown_at_the_first_size(self):
        # --preprocess=none: real_B keeps its own size; a constant image stays constant.
        images = {"real_a": -tf.ones([1, 8, 12, 3]), "real_b": tf.ones([1, 16, 4, 3])}
        grid = summaries.image_grids(images, {"t": ("real_a", "real_b")})["t"]
        self.assertEqual(grid.shape, (1, 8, 24, 3))
        self.assertAllClose(grid[:, :, 12:], tf.ones([1, 8, 12, 3]))

    def test_overlay_marks_selected_cells_and_significance(self):
        images = -tf.ones([1, 8, 8, 3])  # black: base 0
        indices = tf.constant([[0, 3]])  # cells (0, 0) and (1, 1) of a 2×2 grid
        significance = tf.constant([[0.0, 1.0, 2.0, 4.0]])
        overlay = summaries.selection_overlay(images, indices, significance, (2, 2)).numpy()
        # Marks are set, not computed: exact 0s and 1s, so the default bounds.
        green = overlay[0, :, :, 1]
        self.assertAllClose(green[:4, :4], np.ones([4, 4]))
        self.assertAllClose(green[4:, 4:], np.ones([4, 4]))
        self.assertAllClose(green[:4, 4:], np.zeros([4, 4]))
        red = overlay[0, :, :, 0]
        self.assertGreater(red[6, 6], red[1, 1])  # most significant cell is brightest
        self.assertAllInRange(overlay, 0.0, 1.0)
