"""Running moments and activation collection against NumPy's mean / cov / concatenate."""
import numpy as np
import tensorflow as tf

from tfattncut.metrics import streaming


def _fake_backbone(images):
    """A deterministic stand-in: features = per-image channel means and squares, logits = sums."""
    images = np.asarray(images, np.float64)
    means = images.mean(axis=(1, 2))
    return np.concatenate([means, means**2], axis=1), images.sum(axis=(1, 2))


class MomentsTest(tf.test.TestCase):

    def test_batched_sums_give_numpy_mean_and_cov(self):
        rng = np.random.default_rng(3)
        rows = rng.normal(loc=2.0, size=(97, 6)) @ rng.normal(size=(6, 6))
        moments = streaming.Moments(6)
        for start in range(0, 97, 20):
            moments.update(rows[start:start + 20].astype(np.float32))
        expected = rows.astype(np.float32).astype(np.float64)
        self.assertEqual(moments.count, 97)
        self.assertAllClose(moments.mean(), expected.mean(axis=0), rtol=1e-12, atol=1e-12)
        self.assertAllClose(moments.covariance(), np.cov(expected, rowvar=False),
                            rtol=1e-10, atol=1e-10)

    def test_covariance_of_one_row_is_refused(self):
        moments = streaming.Moments(3)
        moments.update(np.ones([1, 3], np.float32))
        with self.assertRaisesRegex(ValueError, "at least 2"):
            moments.covariance()


class CollectTest(tf.test.TestCase):

    def test_collects_features_logits_and_moments_over_a_dataset(self):
        rng = np.random.default_rng(4)
        images = rng.uniform(-1, 1, size=(7, 5, 5, 3)).astype(np.float32)
        batches = tf.data.Dataset.from_tensor_slices(images).batch(3)
        activations = streaming.collect(_fake_backbone, batches)
        features, logits = _fake_backbone(images)
        # The same float64 function per image; only collect's float32 storage rounds (6e-8
        # relative), so these bounds stay tight.
        self.assertAllClose(activations.features, features, rtol=1e-6, atol=1e-6)
        self.assertAllClose(activations.logits, logits, rtol=1e-6, atol=1e-5)
        self.assertEqual(activations.moments.count, 7)
        self.assertAllClose(activations.moments.covariance(), np.cov(features, rowvar=False),
                            rtol=1e-5, atol=1e-7)

    def test_features_can_be_dropped(self):
        images = np.zeros([2, 4, 4, 3], np.float32)
        activations = streaming.collect(_fake_backbone, [images], keep_features=False)
        self.assertIsNone(activations.features)
        self.assertEqual(activations.logits.shape, (2, 3))

    def test_empty_set_is_refused(self):
        with self.assertRaisesRegex(ValueError, "empty"):
            streaming.collect(_fake_backbone, [])
