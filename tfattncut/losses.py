"""The objectives of losses.md as pure functions on tensors.

All return the mean over the local batch; under a distribution strategy the caller divides by
the number of replicas before taking gradients (Keras sums gradients across replicas).
They compute in float32 whatever their inputs' dtype (float16 / bfloat16 networks under
--mixed_precision): the logits, softmax and means stay accurate and the loss scale fits.
"""
import tensorflow as tf

GAN_MODES = ("lsgan", "vanilla", "hinge")


def _float32(x):
    return tf.cast(x, tf.float32)


def _bce(logits, target):
    labels = tf.fill(tf.shape(logits), target)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_terms(gan_mode, real_logits, fake_logits):
    """D's loss on real y and on generated G(x) (already stop-gradient), each a mean over
    every patch: (real_term, fake_term), unweighted, as the reference logs them."""
    real_logits, fake_logits = _float32(real_logits), _float32(fake_logits)
    if gan_mode == "lsgan":
        return tf.reduce_mean(tf.square(real_logits - 1.0)), tf.reduce_mean(tf.square(fake_logits))
    if gan_mode == "vanilla":
        return _bce(real_logits, 1.0), _bce(fake_logits, 0.0)
    if gan_mode == "hinge":
        return (tf.reduce_mean(tf.nn.relu(1.0 - real_logits)),
                tf.reduce_mean(tf.nn.relu(1.0 + fake_logits)))
    raise ValueError(f"--gan_mode must be one of {', '.join(GAN_MODES)}; got {gan_mode!r}")


def discriminator_loss(gan_mode, real_term, fake_term):
    """½·(real + fake) for lsgan and vanilla (the reference's D loss); hinge is the plain sum
    (losses.md)."""
    return real_term + fake_term if gan_mode == "hinge" else 0.5 * (real_term + fake_term)


def generator_gan_loss(gan_mode, fake_logits):
    """G's adversarial loss on D(G(x))."""
    fake_logits = _float32(fake_logits)
    if gan_mode == "lsgan":
        return tf.reduce_mean(tf.square(fake_logits - 1.0))
    if gan_mode == "vanilla":
        return _bce(fake_logits, 1.0)
    if gan_mode == "hinge":
        return -tf.reduce_mean(fake_logits)
    raise ValueError(f"--gan_mode must be one of {', '.join(GAN_MODES)}; got {gan_mode!r}")


def patch_nce_loss(queries, keys, temperature=0.07, negatives_from_minibatch=False):
    """PatchNCE for one layer: mean cross-entropy of each query against its key.

    queries: [B, P, d] projected features of the translated image (gradient flows).
    keys:    [B, P, d] projected source features at the same positions (stop-gradient).
    Negatives are the other P-1 keys of the same image (or of the whole batch); a query's
    own key in the negative block is set to -10 before the division by the temperature.
    """
    queries, keys = _float32(queries), tf.stop_gradient(_float32(keys))
    positives = tf.reduce_sum(queries * keys, axis=-1, keepdims=True)  # [B, P, 1]
    if negatives_from_minibatch:
        dim = queries.shape[-1]
        queries = tf.reshape(queries, [1, -1, dim])
        keys = tf.reshape(keys, [1, -1, dim])
    negatives = tf.matmul(queries, keys, transpose_b=True)  # [G, M, M]
    diagonal = tf.eye(tf.shape(negatives)[-1], dtype=tf.bool)
    negatives = tf.where(diagonal, tf.constant(-10.0, negatives.dtype), negatives)
    negatives = tf.reshape(negatives, tf.concat([tf.shape(positives)[:2], [-1]], 0))
    logits = tf.concat([positives, negatives], axis=-1) / temperature
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.zeros(tf.shape(logits)[:-1], tf.int32), logits=logits))


def layer_mean_nce(queries, keys, lambda_nce, temperature=0.07,
                   negatives_from_minibatch=False):
    """λ_NCE · mean over the NCE layers of patch_nce_loss(queries, keys): lists of [B, P, d],
    one entry per layer (CUT's and DCLGAN's contrastive term)."""
    total = tf.add_n([patch_nce_loss(q, k, temperature, negatives_from_minibatch)
                      for q, k in zip(queries, keys)])
    return lambda_nce * total / len(keys)


def l1_loss(a, b):
    """mean |a - b| (identity and cycle terms of the baselines)."""
    return tf.reduce_mean(tf.abs(_float32(a) - _float32(b)))
