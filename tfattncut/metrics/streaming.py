"""One pass of a backbone over an image set, kept in the form FID, KID and IS need.

FID needs only the first two moments, so those are running float64 sums (count, Σx, Σxxᵀ):
50k images cost one D x D matrix, not 50k rows. KID subsamples rows, so it needs the
features themselves (float32, 50k x 2048 is 400 MB); IS needs the per-image logits.
"""
import dataclasses

import numpy as np
import tensorflow as tf


class Moments:
    """Running count, Σx and Σxxᵀ of feature rows, in float64."""

    def __init__(self, dim):
        self.count = 0
        self.sum = tf.zeros([dim], tf.float64)
        self.sum_outer = tf.zeros([dim, dim], tf.float64)

    def update(self, features):
        """features: [B, D]; adds the rows to the sums."""
        x = tf.cast(features, tf.float64)
        self.count += int(x.shape[0])
        self.sum += tf.reduce_sum(x, axis=0)
        self.sum_outer += tf.matmul(x, x, transpose_a=True)

    def mean(self):
        """[D] float64."""
        return self.sum / self.count

    def covariance(self):
        """[D, D] float64, unbiased (N - 1), as np.cov and the reference FID code use."""
        if self.count < 2:
            raise ValueError(
                f"A covariance needs at least 2 feature rows; this set has {self.count}.")
        mean = self.mean()
        scatter = self.sum_outer - self.count * tf.tensordot(mean, mean, axes=0)
        return scatter / (self.count - 1)


@dataclasses.dataclass
class Activations:
    """What a backbone leaves behind for one image set.

    moments:  running moments of the pool features (for FID).
    features: [N, D] float32 pool features (for KID), or None when not kept.
    logits:   [N, K] float32 class logits in input order (for IS).
    """

    moments: Moments
    features: np.ndarray | None
    logits: np.ndarray


def collect(backbone, batches, keep_features=True):
    """Runs `backbone` over every batch and accumulates its outputs.

    backbone: a callable images [B, H, W, 3] -> (features [B, D], logits [B, K]), e.g. from
      `tfattncut.metrics.inception.load_backbone`.
    batches: an iterable (a list, a generator, a `tf.data.Dataset`) of image batches
      [B, H, W, 3] float32 in [-1, 1].
    keep_features: keep the feature rows (KID needs them; FID and IS do not).
    """
    moments = None
    features, logits = [], []
    for images in batches:
        batch_features, batch_logits = backbone(images)
        if moments is None:
            moments = Moments(batch_features.shape[-1])
        moments.update(batch_features)
        if keep_features:
            features.append(np.asarray(batch_features, np.float32))
        logits.append(np.asarray(batch_logits, np.float32))
    if moments is None:
        raise ValueError("No image batches to collect activations from: the image set is empty.")
    return Activations(
        moments=moments,
        features=np.concatenate(features) if keep_features else None,
        logits=np.concatenate(logits),
    )
