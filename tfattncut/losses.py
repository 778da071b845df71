"""The objectives of docs/design/losses.md as pure functions on tensors.

All return the mean over the local batch; under a distribution strategy the caller divides by
the number of replicas before taking gradients (Keras sums gradients across replicas).
They compute in float32 whatever their inputs' dtype (float16 / bfloat16 networks under
--mixed_precision): the logits, softmax and means stay accurate and the loss scale fits.
"""
import tensorflow as tf

from tfattncut.options import GAN_MODES


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
    (docs/design/losses.md#gan-losses)."""
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


def patch_nce_loss(queries, keys, temperature=0.07, negatives_from_minibatch=False,
                   patch_labels=None):
    """PatchNCE for one layer: mean cross-entropy of each query against its key.

    queries: [B, P, d] projected features of the translated image (gradient flows).
    keys:    [B, P, d] projected source features at the same positions (stop-gradient).
    Negatives are the other P-1 keys of the same image (or of the whole batch); a query's
    own key in the negative block is set to -10 before the division by the temperature.
    patch_labels: int [B, P], the class of each patch (negative: unknown), or None. A key of
      the query's own class is then no negative: it leaves the denominator (label-aware
      PatchNCE). Patches of unknown class, and labels that all differ, mask nothing.
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
    if patch_labels is not None:
        labels = tf.reshape(patch_labels, tf.shape(negatives)[:2])  # [G, M], as the queries
        same_class = tf.logical_and(tf.equal(labels[:, :, None], labels[:, None, :]),
                                    labels[:, :, None] >= 0)
        negatives = tf.where(tf.logical_and(same_class, tf.logical_not(diagonal)),
                             tf.constant(-float("inf"), negatives.dtype), negatives)
    negatives = tf.reshape(negatives, tf.concat([tf.shape(positives)[:2], [-1]], 0))
    logits = tf.concat([positives, negatives], axis=-1) / temperature
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.zeros(tf.shape(logits)[:-1], tf.int32), logits=logits))


def layer_mean_nce(queries, keys, lambda_nce, temperature=0.07,
                   negatives_from_minibatch=False, patch_labels=None):
    """λ_NCE · mean over the NCE layers of patch_nce_loss(queries, keys): lists of [B, P, d],
    one entry per layer (CUT's and DCLGAN's contrastive term); patch_labels: a list of
    [B, P] per layer (see patch_nce_loss), or None."""
    patch_labels = patch_labels or [None] * len(keys)
    total = tf.add_n([patch_nce_loss(q, k, temperature, negatives_from_minibatch, labels)
                      for q, k, labels in zip(queries, keys, patch_labels)])
    return lambda_nce * total / len(keys)


def pixel_cross_entropy(logits, labels, ignore_label):
    """Semantic consistency's CE(S(x), y): softmax cross-entropy of logits [B, H, W, K]
    against integer labels [B, H, W], pixels labelled `ignore_label` left out. The mean over
    images of each image's mean over its labelled pixels (0 for an image without any), so
    the local means of equal batch shares average to the whole batch's, as every loss here.
    """
    labelled = tf.not_equal(labels, ignore_label)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(labelled, labels, tf.zeros_like(labels)), logits=_float32(logits))
    labelled = tf.cast(labelled, tf.float32)
    per_image = tf.math.divide_no_nan(tf.reduce_sum(per_pixel * labelled, axis=[1, 2]),
                                      tf.reduce_sum(labelled, axis=[1, 2]))
    return tf.reduce_mean(per_image)


def l1_loss(a, b):
    """mean |a - b| (identity and cycle terms of the baselines)."""
    return tf.reduce_mean(tf.abs(_float32(a) - _float32(b)))
