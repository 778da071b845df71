"""Tests of the two looks: A colours each key of the scene with one colour (so its pixels and
labels cannot disagree), B varies within a key; B's gamma is the same on every CPU."""
import math
import os
import subprocess
import sys

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


class PowerTest(tf.test.TestCase):
    """B's gamma: correctly rounded, and computed without NumPy's CPU-dispatched power."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.x = np.concatenate([rng.random(20000).astype(np.float32),
                                 np.array([0.0, 1.0, 0.5, 1e-30], np.float32)])

    def test_matches_the_correctly_rounded_power(self):
        for exponent in (0.9, 0.97, 1.0, 1.04, 1.1):
            wanted = np.float64(np.float32(exponent))
            exact = np.array([math.pow(float(v), wanted) for v in self.x])
            # Exact: both are the float32 nearest to one real number, ours from within 1e-16
            # of it and math.pow's (glibc's double pow) from within half a double ulp.
            self.assertAllEqual(street_styles._power(self.x, exponent),
                                exact.astype(np.float32), msg=exponent)

    def test_gives_the_same_bits_with_numpys_simd_code_paths_turned_off(self):
        # NumPy picks SVML, AVX2 or baseline loops at run time (the reason for _power); with
        # every dispatched extension of this CPU turned off the bits must not move. Exact:
        # the same IEEE operations on the same inputs.
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
        path = os.path.join(self.get_temp_dir(), "power.npy")
        code = ("import sys, numpy as np; from tfattncut.data import street_styles; "
                "np.save(sys.argv[2], street_styles._power(np.load(sys.argv[1]), 0.93))")
        inputs = os.path.join(self.get_temp_dir(), "x.npy")
        np.save(inputs, self.x)
        subprocess.run([sys.executable, "-c", code, inputs, path], check=True,
                       env={**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(found)})
        self.assertAllEqual(np.load(path), street_styles._power(self.x, 0.93))
