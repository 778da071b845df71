"""Seeds derived inside a compiled step must equal those of graph mode."""
import tensorflow as tf

from tfattncut import randomness
from tfattncut.randomness import philox_bits, split_seed


def nested_draws(seed):
    """Seeds two derivations deep, and bits drawn from one: what a training step does."""
    _, derived, _ = split_seed(seed, 3)
    layer_seeds = split_seed(derived, 5)
    return tf.stack(layer_seeds), philox_bits([64], layer_seeds[3])


class RandomnessTest(tf.test.TestCase):

    def test_xla_draws_equal_graph_draws(self):
        seed = tf.constant([1, 2])
        graph = tf.function(nested_draws)(seed)
        compiled = tf.function(nested_draws, jit_compile=True)(seed)
        for got, want in zip(compiled, graph):
            self.assertAllEqual(got, want)

    def test_split_seeds_differ_and_repeat(self):
        seeds = tf.stack(split_seed(tf.constant([3, 4]), 4)).numpy()
        self.assertEqual(seeds.shape, (4, 2))
        self.assertLen({tuple(s) for s in seeds}, 4)
        self.assertAllEqual(seeds, tf.stack(split_seed(tf.constant([3, 4]), 4)))

    def test_a_step_seed_takes_every_allowed_run_seed(self):
        self.assertAllEqual(randomness.step_seed(7, 3), [7, 3])
        # The largest --seed wraps into int32 (-1) instead of failing to convert.
        seed = randomness.step_seed(2**32 - 1, 5)
        self.assertEqual(seed.dtype, tf.int32)
        self.assertAllEqual(seed, [-1, 5])
