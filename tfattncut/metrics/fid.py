"""Fréchet Inception Distance (docs/design/metrics.md#fid): the Fréchet distance of two
Gaussians fitted to the pool features of two image sets."""
import tensorflow as tf


def _sqrt_psd(matrix):
    """Square root of a symmetric PSD matrix [D, D] via eigh.

    Round-off leaves covariances with tiny negative eigenvalues (always when N <= D); they
    are clipped to 0 so the root stays real.
    """
    values, vectors = tf.linalg.eigh(matrix)
    roots = tf.sqrt(tf.maximum(values, 0.0))
    return tf.matmul(vectors * roots[tf.newaxis, :], vectors, transpose_b=True)


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½), in float64.

    mean_a, mean_b: [D]; cov_a, cov_b: [D, D].
    Tr((Σa Σb)^½) = Tr((Σa^½ Σb Σa^½)^½): the inner matrix is symmetric PSD, so a symmetric
    eigendecomposition suffices where scipy's general sqrtm would need a Schur form and
    could return complex round-off.
    """
    mean_a, cov_a, mean_b, cov_b = (
        tf.cast(t, tf.float64) for t in (mean_a, cov_a, mean_b, cov_b))
    root_a = _sqrt_psd(cov_a)
    inner = tf.matmul(root_a, tf.matmul(cov_b, root_a))
    # Symmetrise: the product is symmetric only up to round-off, and eigh reads one triangle.
    inner = 0.5 * (inner + tf.transpose(inner))
    trace_sqrt = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(inner), 0.0)))
    mean_term = tf.reduce_sum(tf.square(mean_a - mean_b))
    return mean_term + tf.linalg.trace(cov_a) + tf.linalg.trace(cov_b) - 2.0 * trace_sqrt


def fid(moments_a, moments_b):
    """FID of two sets from their running moments (`streaming.Moments`); float64 scalar."""
    return frechet_distance(
        moments_a.mean(), moments_a.covariance(), moments_b.mean(), moments_b.covariance())
