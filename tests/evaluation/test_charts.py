"""Pillow charts: tick values, bar heights, the line chart's layout, image sheets."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.evaluation import charts


class ChartsTest(tf.test.TestCase):

    def test_nice_ticks(self):
        self.assertEqual(charts.nice_ticks(0.0, 0.83), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        self.assertEqual(charts.nice_ticks(3, 47), [0, 10, 20, 30, 40, 50])
        self.assertEqual(charts.nice_ticks(1, 1), [0.0, 0.5, 1.0, 1.5, 2.0])
        self.assertEqual(charts.nice_ticks(1, 3, integer=True), [1, 2, 3])

    def test_bar_heights_are_proportional_to_values(self):
        path = charts.bar_chart({"a": 0.2, "b": 0.6}, os.path.join(tempfile.mkdtemp(), "b.png"),
                                "title")
        pixels = np.asarray(Image.open(path).convert("RGB"))
        heights = [np.sum(np.all(pixels == colour, axis=-1).any(axis=1))
                   for colour in charts.PALETTE[:2]]
        # Axis 0..0.6 (ticks 0, 0.1, ..., 0.6): bar b spans the plot's height, bar a a third.
        self.assertAllClose(heights[0] / heights[1], 0.2 / 0.6, atol=0.02)

    def test_line_chart_layout(self):
        panels = {"fid": {"run1": [(1, 3.0), (2, 2.0)], "run2": [(2, 5.0)]},
                  "kid": {"run2": [(1, 0.1), (2, 0.05)]}}
        path = charts.line_chart(panels, os.path.join(tempfile.mkdtemp(), "l.png"))
        image = Image.open(path).convert("RGB")
        self.assertEqual(image.size, (640, 2 * 260 + 2 * 22 + 10))
        pixels = np.asarray(image)
        for colour in charts.PALETTE[:2]:  # one colour per run, in order of appearance
            self.assertTrue(np.all(pixels == colour, axis=-1).any())
        self.assertFalse(np.all(pixels == charts.PALETTE[2], axis=-1).any())

    def test_image_columns_under_named_headers(self):
        black, white = -np.ones([2, 8, 6, 3], np.float32), np.ones([1, 8, 6, 3], np.float32)
        sheet = charts.image_columns([("a", black), ("b", white)], header_height=12)
        self.assertEqual(sheet.shape, (12 + 2 * 8, 2 * 6, 3))
        self.assertLess(sheet[:12, :6].min(), 128)  # the name "a" is drawn over column a
        # Tiles are pasted as converted; the short column's missing cell stays white.
        self.assertAllEqual(sheet[12:, :6], np.zeros([16, 6, 3]))
        self.assertAllEqual(sheet[12:, 6:], np.full([16, 6, 3], 255))
