"""Inception Score (docs/design/metrics.md#inception-score): exp(E_x KL(p(y|x) ‖ p(y))),
mean ± std over splits."""
import tensorflow as tf


def _split_score(logits):
    """IS of one split from logits [n, K]; p(y) is the split's mean prediction."""
    log_p_yx = tf.nn.log_softmax(logits, axis=1)
    p_yx = tf.exp(log_p_yx)
    log_p_y = tf.math.log(tf.reduce_mean(p_yx, axis=0, keepdims=True))
    # A class whose probability underflows to 0 in every image has log p(y) = -inf; its
    # terms are 0 (the limit of p log p), not 0 * inf = nan.
    kl = tf.reduce_sum(tf.math.multiply_no_nan(log_p_yx - log_p_y, p_yx), axis=1)
    return tf.exp(tf.reduce_mean(kl))


def inception_score(logits, num_splits=10):
    """Mean and population std of the per-split scores; float64 scalars.

    logits: [N, K] class logits in image order. Split i holds rows
    [i*N//S, (i+1)*N//S), as in the OpenAI reference code, so N need not divide evenly.
    """
    logits = tf.cast(logits, tf.float64)
    rows = int(logits.shape[0])
    if rows < num_splits:
        raise ValueError(
            f"Inception Score with {num_splits} splits needs at least {num_splits} images; "
            f"found {rows}.")
    scores = tf.stack([
        _split_score(logits[i * rows // num_splits:(i + 1) * rows // num_splits])
        for i in range(num_splits)
    ])
    return tf.reduce_mean(scores), tf.math.reduce_std(scores)
