"""Tests of the Cityscapes label table against hand-picked rows of the official one, and of
reading label map files."""
import os

import numpy as np
import tensorflow as tf
from PIL import Image

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

    def test_label_ids_become_train_ids(self):
        path = os.path.join(self.get_temp_dir(), "ids.png")
        Image.fromarray(np.array([[7, 26, 0, 23]], np.uint8)).save(path)
        self.assertAllEqual(labels.read_train_ids(path), [[0, 13, 255, 10]])
        rgb = os.path.join(self.get_temp_dir(), "rgb.png")
        Image.fromarray(np.zeros([2, 2, 3], np.uint8)).save(rgb)
        with self.assertRaisesRegex(ValueError, "rgb.png has mode RGB.*single-channel"):
            labels.read_train_ids(rgb)
