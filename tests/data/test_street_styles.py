"""Tests of the two looks: A colours each key of the scene with one colour (so its pixels and
labels cannot disagree), B varies within a key."""
import numpy as np
import tensorflow as tf

from tfattncut.data import street_scenes, street_styles


class StreetStylesTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.scene = street_scenes.draw_scene(np.random.default_rng(0), 64)
        self.keys = np.asarray(self.scene.image)

    def test_style_a_gives_each_key_one_colour(self):
        image = street_styles.style_a(self.scene)
        self.assertEqual((image.shape, image.dtype), ((64, 64, 3), np.uint8))
        for key in np.unique(self.keys):
            self.assertLen(np.unique(image[self.keys == key], axis=0), 1, key)

    def test_style_b_varies_within_a_key_and_picks_a_jpeg_quality(self):
        image, quality = street_styles.style_b(self.scene, np.random.default_rng(1))
        self.assertEqual((image.shape, image.dtype), ((64, 64, 3), np.uint8))
        self.assertBetween(quality, 75, 90)
        sky = self.keys == self.scene.keys[("sky", 0, 0)]
        self.assertGreater(len(np.unique(image[sky], axis=0)), 1)
