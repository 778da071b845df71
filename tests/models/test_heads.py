"""Projection heads F: parameter count, normalisation, shared heads for both domains."""
import numpy as np
import tensorflow as tf

from tfattncut.models.heads import PatchProjector, ProjectionHead, unit_length
from tfattncut.selection.random import RandomSelector


class HeadsTest(tf.test.TestCase):

    def test_parameter_count(self):
        channels = [3, 128, 256, 256, 256]
        projector = PatchProjector(channels, [RandomSelector(256) for _ in channels])
        self.assertEqual(projector.count_params(), 560_384)

    def test_head_is_mlp_then_l2_norm(self):
        head = ProjectionHead(6, netF_nc=5)
        x = np.random.default_rng(0).normal(size=(2, 3, 6)).astype(np.float32)
        w1, b1 = head.hidden.get_weights()
        w2, b2 = head.out.get_weights()
        v = np.maximum(x @ w1 + b1, 0) @ w2 + b2
        expected = v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-7)
        # float32 matmuls in TF's and NumPy's BLAS orders; unit vectors: 1e-4.
        self.assertAllClose(head(x), expected, rtol=1e-4, atol=1e-4)

    def test_keys_and_queries_use_same_positions_and_head(self):
        projector = PatchProjector([4], [RandomSelector(5)], netF_nc=8)
        source = tf.random.normal([2, 4, 4, 4], seed=1)
        keys, queries, positions = projector([source], [source], tf.constant([3, 4]))
        self.assertAllClose(keys[0], queries[0])  # one head on the same rows: identical
        self.assertEqual(keys[0].shape, (2, 5, 8))
        self.assertEqual(positions[0].shape, (2, 5))
        # Unit length up to the 1e-7 added to the norm (small with the 0.02-gain init).
        self.assertAllClose(tf.norm(keys[0], axis=-1), tf.ones([2, 5]), atol=1e-3)


class UnitLengthTest(tf.test.TestCase):

    def test_matches_reference_and_zero_vector_has_finite_gradient(self):
        vectors = tf.constant([[3.0, 4.0], [0.0, 0.0], [1e-20, 0.0]])
        with tf.GradientTape() as tape:
            tape.watch(vectors)
            unit = unit_length(vectors)
            total = tf.reduce_sum(unit * tf.constant([[1.0, 2.0]]))
        # Exact inputs: the sqrt of 25 is exact and one division rounds, so the default bound.
        self.assertAllClose(unit[0], [3.0 / (5.0 + 1e-7), 4.0 / (5.0 + 1e-7)])
        self.assertAllEqual(unit[1], [0.0, 0.0])  # 0 / positive is exactly 0
        self.assertTrue(np.all(np.isfinite(tape.gradient(total, vectors).numpy())))
