"""The downstream segmenter: network, label conversion, scoring on hand-made label maps,
training and the SavedModel round trip."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.evaluation import segmentation_data
from tfattncut.data.labels import TRAIN_CLASSES
from tfattncut.evaluation import segmenter


class SegmenterTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.image_dir, cls.label_dir = segmentation_data.write_scenes(cls.root)
        cls.image_paths = sorted(os.path.join(cls.image_dir, n) for n in os.listdir(cls.image_dir))

    def test_network_shape_weights_and_seeded_init(self):
        width = 8
        model = segmenter.build_segmenter(width=width, seed=3)
        self.assertEqual(model(tf.zeros([2, 16, 24, 3])).shape, [2, 16, 24, 19])
        # conv 3->w, conv w->2w, two conv 2w->2w (3x3, with biases), conv 1x1 3w->19.
        expected = ((9 * 3 + 1) * width + (9 * width + 1) * 2 * width
                    + 2 * (9 * 2 * width + 1) * 2 * width + (3 * width + 1) * 19)
        self.assertEqual(model.count_params(), expected)
        again = segmenter.build_segmenter(width=width, seed=3)
        for a, b in zip(model.weights, again.weights):
            self.assertAllEqual(a, b)  # the same seeded draws: exact

    def test_label_ids_become_train_ids(self):
        path = os.path.join(self.root, "ids.png")
        Image.fromarray(np.array([[7, 26, 0, 23]], np.uint8)).save(path)
        self.assertAllEqual(segmenter.read_train_ids(path), [[0, 13, 255, 10]])
        rgb = os.path.join(self.root, "rgb.png")
        Image.fromarray(np.zeros([2, 2, 3], np.uint8)).save(rgb)
        with self.assertRaisesRegex(ValueError, "rgb.png has mode RGB.*single-channel"):
            segmenter.read_train_ids(rgb)

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
        labels = np.stack([segmenter.read_train_ids(os.path.join(self.label_dir, n))
                           for n in sorted(os.listdir(self.label_dir))])
        counted = labels != 255
        # The labels are learnable pixel by pixel except where they contradict the colour.
        self.assertGreater(np.mean(predictions.numpy()[counted] == labels[counted]), 0.9)

    def test_saved_model_round_trip(self):
        model = segmenter.build_segmenter(width=4)
        path = segmenter.export_segmenter(model, os.path.join(self.root, "saved"))
        loaded = segmenter.load_segmenter(path)
        images = tf.random.stateless_uniform([2, 8, 6, 3], [1, 2], -1.0, 1.0)
        # The SavedModel's graph (fused kernels) against eager calls.
        self.assertAllClose(loaded(images), model(images), rtol=1e-4, atol=1e-4)
        with self.assertRaisesRegex(FileNotFoundError, "--segmenter=.*not a SavedModel"):
            segmenter.load_segmenter(self.root)

    def test_a_saved_model_of_other_inputs_is_refused_naming_them(self):
        # E.g. an exported translator, whose serving_default takes uint8 images.
        module = tf.Module()
        module.f = tf.function(lambda images: {"translated": images},
                               input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        path = os.path.join(self.root, "translator")
        tf.saved_model.save(module, path, signatures={"serving_default": module.f})
        with self.assertRaisesRegex(ValueError, "--segmenter=.*translator: expected a "
                                                "serving_default signature from float32 images"
                                                ".*; its serving_default takes images uint8"):
            segmenter.load_segmenter(path)

    def test_odd_sizes_and_wrong_class_counts_are_refused(self):
        with self.assertRaisesRegex(ValueError, "even image sizes"):
            segmenter.predict(segmentation_data.colour_segmenter(), tf.zeros([1, 5, 6, 3]))
        wrong = segmenter.build_segmenter(num_classes=4, width=4)
        with self.assertRaisesRegex(ValueError, "4 class scores per pixel; expected 19"):
            segmenter.predict(wrong, tf.zeros([1, 4, 6, 3]))
        self.assertLen(TRAIN_CLASSES, segmenter.NUM_CLASSES)
