"""The selectors' shared position steps (base.py): the top-P pick against a stable NumPy sort,
and the per-image gather."""
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from tfattncut.selection.base import gather_positions, most_significant


def stable_top(scores, count):
    """NumPy oracle: the count largest per row, equal scores in increasing index order."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :count]


class MostSignificantTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("eager", False), ("xla", True))
    def test_ties_go_to_the_lower_index(self, jit):
        # Three levels only, so most positions tie with many others.
        scores = np.random.default_rng(0).integers(0, 3, size=(3, 20)).astype(np.float32)
        scores[2] = 1.0  # one image where every position ties
        pick = tf.function(lambda s: most_significant(s, 7), jit_compile=True) if jit else (
            lambda s: most_significant(s, 7))
        indices = pick(tf.constant(scores)).numpy()
        self.assertAllEqual(indices, stable_top(scores, 7))
        self.assertAllEqual(indices[2], np.arange(7))

    def test_at_most_all_positions(self):
        scores = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
        indices = most_significant(tf.constant(scores), 256).numpy()
        self.assertAllEqual(indices, stable_top(scores, 5))

    def test_gather_takes_each_image_at_its_own_positions(self):
        values = np.random.default_rng(2).standard_normal((2, 6, 3)).astype(np.float32)
        indices = np.array([[5, 0], [2, 2]], np.int32)
        expected = np.stack([values[0, [5, 0]], values[1, [2, 2]]])
        self.assertAllEqual(gather_positions(tf.constant(values), tf.constant(indices)),
                            expected)
