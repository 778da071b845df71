"""Inception Score against its limits (uniform -> 1, K evenly used classes -> K) and NumPy."""
import numpy as np
import scipy.special
import tensorflow as tf

from tfattncut.metrics import inception_score


def _numpy_is(logits, splits):
    """The OpenAI reference computation, on softmax probabilities."""
    preds = scipy.special.softmax(logits.astype(np.float64), axis=1)
    n = len(preds)
    scores = []
    for i in range(splits):
        part = preds[i * n // splits:(i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return np.mean(scores), np.std(scores)


class InceptionScoreTest(tf.test.TestCase):

    def test_uniform_predictor_scores_one(self):
        mean, std = inception_score.inception_score(np.zeros([50, 1008], np.float32))
        self.assertAllClose(mean, 1.0, atol=1e-12)
        self.assertAllClose(std, 0.0, atol=1e-12)

    def test_confident_predictor_spread_over_k_classes_scores_k(self):
        classes = 7
        labels = np.arange(10 * classes) % classes
        # Logits 1000 apart: softmax underflows to exact zeros off the true class.
        logits = np.eye(classes + 3)[labels] * 1000.0
        mean, std = inception_score.inception_score(logits, num_splits=10)
        self.assertAllClose(mean, classes, rtol=1e-12)
        self.assertAllClose(std, 0.0, atol=1e-9)

    def test_matches_numpy_with_uneven_splits(self):
        logits = np.random.default_rng(0).normal(scale=3.0, size=(103, 20)).astype(np.float32)
        mean, std = inception_score.inception_score(logits, num_splits=10)
        expected_mean, expected_std = _numpy_is(logits, 10)
        self.assertAllClose(mean, expected_mean, rtol=1e-10)
        self.assertAllClose(std, expected_std, rtol=1e-8)

    def test_fewer_images_than_splits_are_refused(self):
        with self.assertRaisesRegex(ValueError, "at least 10 images"):
            inception_score.inception_score(np.zeros([4, 3], np.float32))
