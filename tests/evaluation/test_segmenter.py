"""The downstream segmenter on folders: scoring on hand-made label maps, training and the
SavedModel round trip."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from tests.evaluation import segmentation_data
from tfattncut.data.labels import TRAIN_CLASSES, read_train_ids
from tfattncut.evaluation import segmenter
from tfattncut.models.segmenter import NUM_CLASSES, build_segmenter, load_segmenter


class SegmenterTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.image_dir, cls.label_dir = segmentation_data.write_scenes(cls.root)
        cls.image_paths = sorted(os.path.join(cls.image_dir, n) for n in os.listdir(cls.image_dir))

    def test_score_on_hand_made_label_maps(self):
        scores = segmenter.score_segmenter(segmentation_data.colour_segmenter(),
                                           self.image_paths, self.label_dir, batch_size=1)
        report = segmenter.scores_dict(scores)
        for name, iou in segmentation_data.EXPECTED_IOU.items():
            self.assertAllClose(report["per_class_iou"][name], iou)
        self.assertIsNone(report["per_class_iou"]["building"])
        self.assertAllClose(report["mean_iou"], np.mean(list(
            segmentation_data.EXPECTED_IOU.values())))
        self.assertAllClose(report["pixel_accuracy"], segmentation_data.EXPECTED_PIXEL_ACCURACY)
        self.assertAllClose(report["mean_class_accuracy"],
                            segmentation_data.EXPECTED_CLASS_ACCURACY)

    def test_training_learns_the_colour_classes(self):
        model = segmenter.train_segmenter(self.image_paths, self.label_dir, epochs=60,
                                          batch_size=2, learning_rate=1e-2, width=8)
        predictions = segmenter.predict(model, tf.stack(
            [tf.cast(tf.io.decode_png(tf.io.read_file(p)), tf.float32) / 127.5 - 1.0
             for p in self.image_paths]))
        labels = np.stack([read_train_ids(os.path.join(self.label_dir, n))
                           for n in sorted(os.listdir(self.label_dir))])
        counted = labels != 255
        # The labels are learnable pixel by pixel except where they contradict the colour.
        self.assertGreater(np.mean(predictions.numpy()[counted] == labels[counted]), 0.9)

    def test_saved_model_round_trip(self):
        model = build_segmenter(width=4)
        path = segmenter.export_segmenter(model, os.path.join(self.root, "saved"))
        loaded = load_segmenter(path)
        images = tf.random.stateless_uniform([2, 8, 6, 3], [1, 2], -1.0, 1.0)
        # The SavedModel's graph (fused kernels) against eager calls.
        self.assertAllClose(loaded(images), model(images), rtol=1e-4, atol=1e-4)
        with self.assertRaisesRegex(FileNotFoundError, "--segmenter=.*not a SavedModel"):
            load_segmenter(self.root)

    def test_odd_sizes_and_wrong_class_counts_are_refused(self):
        with self.assertRaisesRegex(ValueError, "even image sizes"):
            segmenter.predict(segmentation_data.colour_segmenter(), tf.zeros([1, 5, 6, 3]))
        wrong = build_segmenter(num_classes=4, width=4)
        with self.assertRaisesRegex(ValueError, "4 class scores per pixel; expected 19"):
            segmenter.predict(wrong, tf.zeros([1, 4, 6, 3]))
        self.assertLen(TRAIN_CLASSES, NUM_CLASSES)
