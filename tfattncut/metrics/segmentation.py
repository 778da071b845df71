"""Segmentation score (docs/design/metrics.md#segmentation-score): how well a segmentation
model's predictions on translated images match the source labels, from one confusion matrix
accumulated over the whole set.

The scores follow the FCN / pix2pix Cityscapes evaluation (`fast_hist`): per-class IoU
TP / (TP + FP + FN) and class accuracy TP / (TP + FN), averaged over the classes where they
are defined (a class absent from both labels and predictions has no IoU).
"""
import collections

import numpy as np
import tensorflow as tf

IGNORE_LABEL = 255


class SegmentationScores(collections.namedtuple(
        "SegmentationScores",
        ["mean_iou", "pixel_accuracy", "mean_class_accuracy", "per_class_iou"])):
    """Floats, and per_class_iou a float64 [K] array with NaN for classes without an IoU."""


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """int64 [K, K] counts, rows = true class, columns = predicted class.

    labels, predictions: integer maps of one shape, e.g. [B, H, W]. Pixels labelled
    `ignore_label` are left out; every other label and every prediction must lie in [0, K).
    """
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
    keep = tf.not_equal(labels, ignore_label)
    labels = tf.boolean_mask(labels, keep)
    predictions = tf.boolean_mask(predictions, keep)
    for name, values in (("label", labels), ("prediction", predictions)):
        bad = tf.logical_or(values < 0, values >= num_classes)
        if tf.reduce_any(bad):
            raise ValueError(
                f"A {name} value {int(tf.boolean_mask(values, bad)[0])} lies outside the "
                f"{num_classes} classes [0, {num_classes}) and is not the ignore label "
                f"{ignore_label}; check num_classes and the label map's class ids.")
    return tf.math.confusion_matrix(labels, predictions, num_classes=num_classes,
                                    dtype=tf.int64)


class ConfusionAccumulator:
    """Sums confusion matrices over batches, so a whole test set fits in K x K counts."""

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL):
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.matrix = tf.zeros([num_classes, num_classes], tf.int64)

    def update(self, labels, predictions):
        """labels, predictions: integer maps [B, H, W] (see `confusion_matrix`)."""
        self.matrix += confusion_matrix(labels, predictions, self.num_classes,
                                        self.ignore_label)

    def result(self):
        return scores_from_confusion(self.matrix)


def scores_from_confusion(matrix):
    """SegmentationScores from a [K, K] confusion matrix (rows true, columns predicted)."""
    matrix = np.asarray(matrix, np.float64)
    total = matrix.sum()
    if total == 0:
        raise ValueError("The confusion matrix is empty: every pixel was ignored or none given.")
    true_positive = np.diag(matrix)
    per_label = matrix.sum(axis=1)
    union = per_label + matrix.sum(axis=0) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class_iou = np.where(union > 0, true_positive / union, np.nan)
        class_accuracy = np.where(per_label > 0, true_positive / per_label, np.nan)
    return SegmentationScores(
        mean_iou=float(np.nanmean(per_class_iou)),
        pixel_accuracy=float(true_positive.sum() / total),
        mean_class_accuracy=float(np.nanmean(class_accuracy)),
        per_class_iou=per_class_iou,
    )
