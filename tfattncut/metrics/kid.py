"""Kernel Inception Distance (docs/design/metrics.md#kid): unbiased MMD² with the cubic
polynomial kernel, averaged over random subsets (Bińkowski et al. 2018; torch-fidelity's
defaults)."""
import tensorflow as tf


def subset_indices(num_rows, num_subsets, subset_size, seed):
    """Rows of each subset: int32 [S, m], m distinct rows per subset, drawn without replacement.

    seed: int32 [2] stateless-RNG seed, so a rerun (or a NumPy oracle) sees the same draws.
    """
    noise = tf.random.stateless_uniform([num_subsets, num_rows], seed=seed)
    return tf.argsort(noise, axis=1)[:, :subset_size]


def polynomial_mmd2(x, y):
    """Unbiased MMD² of two equal-size samples x, y [m, D], k(a, b) = (aᵀb / D + 1)³.

    The unbiased estimator drops the kernel's diagonal from the within-set terms.
    """
    x = tf.cast(x, tf.float64)
    y = tf.cast(y, tf.float64)
    dim = tf.cast(tf.shape(x)[1], tf.float64)
    m = tf.cast(tf.shape(x)[0], tf.float64)

    def kernel(a, b):
        return (tf.matmul(a, b, transpose_b=True) / dim + 1.0) ** 3

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (tf.reduce_sum(k_xx) - tf.linalg.trace(k_xx)
              + tf.reduce_sum(k_yy) - tf.linalg.trace(k_yy)) / (m * (m - 1.0))
    return within - 2.0 * tf.reduce_mean(k_xy)


def kid(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """KID mean and std (population std, as torch-fidelity) over `num_subsets` subsets.

    features_a: [Na, D], features_b: [Nb, D] pool features (float32 is fine).
    Each subset takes min(subset_size, Na, Nb) rows from each set, drawn independently
    for the two sets. Returns two float64 scalars.
    """
    features_a = tf.convert_to_tensor(features_a)
    features_b = tf.convert_to_tensor(features_b)
    rows_a, rows_b = int(features_a.shape[0]), int(features_b.shape[0])
    size = min(subset_size, rows_a, rows_b)
    if size < 2:
        raise ValueError(
            f"KID needs at least 2 feature rows per set; found {rows_a} and {rows_b}.")
    ids_a = subset_indices(rows_a, num_subsets, size, seed=[seed, 0])
    ids_b = subset_indices(rows_b, num_subsets, size, seed=[seed, 1])
    # One subset at a time keeps memory at three m x m kernels.
    estimates = tf.map_fn(
        lambda ids: polynomial_mmd2(tf.gather(features_a, ids[0]), tf.gather(features_b, ids[1])),
        (ids_a, ids_b),
        fn_output_signature=tf.float64,
    )
    return tf.reduce_mean(estimates), tf.math.reduce_std(estimates)
