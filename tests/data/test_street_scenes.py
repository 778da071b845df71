"""Tests of the street-scene geometry: what a scene's label map may hold, and that it is a pure
function of the random generator."""
import numpy as np
import tensorflow as tf

from tfattncut.data import labels, street_scenes


class StreetScenesTest(tf.test.TestCase):

    def test_label_map_is_each_keys_material_label(self):
        for seed in range(3):
            scene = street_scenes.draw_scene(np.random.default_rng(seed), 64)
            keys = np.asarray(scene.image)
            label_map = street_scenes.label_map(scene)
            self.assertEqual((label_map.shape, label_map.dtype), ((64, 64), np.uint8))
            # Oracle: the label of each pixel's (material, tint, face) key, looked up one by one.
            specs = {key: spec for spec, key in scene.keys.items()}
            expected = np.vectorize(lambda k: street_scenes.MATERIALS[specs[k][0]].label)(keys)
            self.assertAllEqual(label_map, expected)
            found = set(np.unique(label_map).tolist())
            self.assertContainsSubset(found, set(street_scenes.SCENE_LABEL_IDS))
            self.assertContainsSubset({labels.SKY, labels.ROAD, labels.SIDEWALK}, found)

    def test_same_generator_state_draws_the_same_scene(self):
        first = street_scenes.draw_scene(np.random.default_rng([4, 1]), 64)
        again = street_scenes.draw_scene(np.random.default_rng([4, 1]), 64)
        other = street_scenes.draw_scene(np.random.default_rng([4, 2]), 64)
        self.assertAllEqual(np.asarray(first.image), np.asarray(again.image))
        self.assertEqual(first.keys, again.keys)
        self.assertNotAllEqual(street_scenes.label_map(first), street_scenes.label_map(other))
