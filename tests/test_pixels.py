"""tfattncut.pixels: the [-1, 1] <-> uint8 and [0, 1] conversions every module shares."""
import numpy as np
import tensorflow as tf

from tfattncut import pixels


class PixelsTest(tf.test.TestCase):

    def test_to_uint8_rounds_and_clips(self):
        self.assertAllEqual(pixels.to_uint8(tf.constant([-2.0, -1.0, 0.0, 1.0 / 255, 1.5])),
                            [0, 0, 128, 128, 255])

    def test_every_uint8_level_survives_the_round_trip(self):
        levels = np.arange(256, dtype=np.uint8)
        self.assertAllEqual(pixels.to_uint8(pixels.from_uint8(levels)), levels)
        # v / 127.5 - 1 in float32, as the data pipeline has always computed it.
        self.assertAllEqual(pixels.from_uint8(levels),
                            levels.astype(np.float32) / np.float32(127.5) - np.float32(1))

    def test_to_unit_range_does_not_clip(self):
        # Halving and adding 1 are exact in float32 here.
        self.assertAllEqual(pixels.to_unit_range(tf.constant([-1.0, 0.0, 1.0, 3.0])),
                            [0.0, 0.5, 1.0, 2.0])

    def test_from_unit_range_inverts_to_unit_range(self):
        # Doubling and subtracting 1 are exact in float32 at these values.
        self.assertAllEqual(pixels.from_unit_range(tf.constant([0.0, 0.25, 1.0])),
                            [-1.0, -0.5, 1.0])
        values = tf.random.stateless_uniform([64], [3, 4])
        # Rounding in either direction: within an ulp of [0, 1].
        self.assertAllClose(pixels.to_unit_range(pixels.from_unit_range(values)), values,
                            rtol=0, atol=1e-7)
