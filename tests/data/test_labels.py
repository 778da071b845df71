"""Tests of the Cityscapes label table against hand-picked rows of the official one."""
import numpy as np
import tensorflow as tf

from tfattncut.data import labels


class LabelsTest(tf.test.TestCase):

    def test_train_id_mapping(self):
        label_ids = np.array([[7, 8, 11, 17], [19, 21, 23, 26], [0, 33, -1, 300]])
        self.assertAllEqual(labels.to_train_ids(label_ids),
                            [[0, 1, 2, 5], [6, 8, 10, 13], [255, 18, 255, 255]])
        self.assertEqual(labels.to_train_ids(label_ids).dtype, np.uint8)
        train_ids = sorted(t for t in labels.CITYSCAPES_TRAIN_IDS.values() if t != 255)
        self.assertEqual(train_ids, list(range(19)))
        self.assertLen(labels.TRAIN_CLASSES, 19)
        self.assertEqual(labels.TRAIN_CLASSES[13], "car")


if __name__ == "__main__":
    tf.test.main()
