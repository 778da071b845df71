"""CUT's default selector: distinct random positions, the same for both maps and the whole
batch, checked against NumPy indexing of the flattened maps."""
import numpy as np
import tensorflow as tf

from tfattncut.selection.random import RandomSelector


class RandomSelectorTest(tf.test.TestCase):

    def test_distinct_positions_shared_by_both_maps_and_the_batch(self):
        rng = np.random.default_rng(0)
        source = rng.normal(size=[2, 4, 5, 3]).astype(np.float32)
        translated = rng.normal(size=[2, 4, 5, 3]).astype(np.float32)
        selector = RandomSelector(num_patches=6)
        seed = tf.constant([3, 7], tf.int32)
        selection = selector(source, translated, seed)
        ids = selection.indices.numpy()
        self.assertEqual(ids.shape, (2, 6))
        self.assertAllEqual(ids[0], ids[1])  # one draw for the batch
        self.assertLen(set(ids[0]), 6)
        self.assertTrue(np.all((ids >= 0) & (ids < 20)))
        # Gathers copy values exactly: compare bit for bit with NumPy's indexing.
        self.assertAllEqual(selection.source, source.reshape([2, 20, 3])[:, ids[0]])
        self.assertAllEqual(selection.translated, translated.reshape([2, 20, 3])[:, ids[0]])
        # The same seed draws the same positions; another seed others.
        self.assertAllEqual(selector(source, translated, seed).indices, ids)
        self.assertNotAllEqual(selector(source, translated, seed + 1).indices, ids)

    def test_more_patches_than_positions_take_every_position_once(self):
        source = np.zeros([1, 2, 3, 4], np.float32)
        ids = RandomSelector(num_patches=256)(source, source, tf.constant([0, 1])).indices
        self.assertEqual(sorted(ids.numpy()[0]), list(range(6)))
