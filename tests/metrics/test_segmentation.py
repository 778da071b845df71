"""Segmentation scores on hand-made label maps with hand-computed values."""
import numpy as np
import tensorflow as tf

from tfattncut.metrics import segmentation

# Two 2x4 maps, 3 classes; 255 = ignore.
_LABELS = np.array([[[0, 0, 1, 1],
                     [2, 2, 255, 255]],
                    [[0, 1, 1, 1],
                     [255, 2, 2, 0]]])
_PREDICTIONS = np.array([[[0, 1, 1, 1],
                          [2, 0, 2, 1]],
                         [[0, 1, 2, 1],
                          [0, 2, 2, 0]]])


class SegmentationTest(tf.test.TestCase):

    def test_confusion_matrix_skips_ignored_pixels(self):
        # Counted pixels (label -> prediction):
        #   image 0: 0->0, 0->1, 1->1, 1->1, 2->2, 2->0
        #   image 1: 0->0, 1->1, 1->2, 1->1, 2->2, 2->2, 0->0
        expected = np.array([[3, 1, 0],
                             [0, 4, 1],
                             [1, 0, 3]])
        matrix = segmentation.confusion_matrix(_LABELS, _PREDICTIONS, num_classes=3)
        self.assertAllEqual(matrix, expected)

    def test_scores_over_batches(self):
        accumulator = segmentation.ConfusionAccumulator(num_classes=3)
        for labels, predictions in zip(_LABELS, _PREDICTIONS):
            accumulator.update(labels[None], predictions[None])
        scores = accumulator.result()
        # IoU = TP / (TP + FP + FN): class 0: 3 / (3+1+1), class 1: 4 / (4+1+1),
        # class 2: 3 / (3+1+1); class accuracy = TP / row sum: 3/4, 4/5, 3/4.
        iou = np.array([3 / 5, 4 / 6, 3 / 5])
        self.assertAllClose(scores.per_class_iou, iou)
        self.assertAllClose(scores.mean_iou, iou.mean())
        self.assertAllClose(scores.pixel_accuracy, 10 / 13)
        self.assertAllClose(scores.mean_class_accuracy, np.mean([3 / 4, 4 / 5, 3 / 4]))

    def test_absent_class_has_no_iou_and_is_left_out_of_means(self):
        labels = np.array([[0, 0, 1, 255]])
        predictions = np.array([[0, 1, 1, 3]])
        scores = segmentation.scores_from_confusion(
            segmentation.confusion_matrix(labels, predictions, num_classes=4))
        # Classes 2 and 3 appear in neither labels nor (counted) predictions.
        self.assertAllClose(scores.per_class_iou, [1 / 2, 1 / 2, np.nan, np.nan])
        self.assertAllClose(scores.mean_iou, 0.5)
        self.assertAllClose(scores.mean_class_accuracy, np.mean([1 / 2, 1.0]))
        self.assertAllClose(scores.pixel_accuracy, 2 / 3)

    def test_out_of_range_ids_are_refused(self):
        with self.assertRaisesRegex(ValueError, "label value 7 .* num_classes"):
            segmentation.confusion_matrix(np.array([[7, 0]]), np.array([[0, 0]]), num_classes=3)
        with self.assertRaisesRegex(ValueError, "prediction value 3"):
            segmentation.confusion_matrix(np.array([[1, 0]]), np.array([[3, 0]]), num_classes=3)
