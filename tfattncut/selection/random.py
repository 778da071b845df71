"""CUT's selector: the same random positions for every image and for both domains."""
import tensorflow as tf

from tfattncut.selection.base import Selection, Selector, flatten_positions, random_positions


class RandomSelector(Selector):
    """A fresh random permutation of the N positions each step; its first min(P, N) ids."""

    def call(self, source, translated, seed):
        source = flatten_positions(source)
        translated = flatten_positions(translated)
        num_positions = tf.shape(source)[1]
        count = tf.minimum(self.num_patches, num_positions)
        ids = random_positions(num_positions, count, seed)
        batch = tf.shape(source)[0]
        return Selection(
            source=tf.gather(source, ids, axis=1),
            translated=tf.gather(translated, ids, axis=1),
            indices=tf.tile(ids[tf.newaxis], [batch, 1]),
        )
