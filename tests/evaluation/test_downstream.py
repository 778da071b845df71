"""The downstream experiment end to end on a tiny synthetic set, with its B score recomputed
from the exported segmenter by a NumPy confusion matrix."""
import json
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.data import folders, synthetic
from tfattncut.evaluation import downstream, segmenter


def _numpy_mean_iou(labels, predictions, num_classes):
    keep = labels != 255
    matrix = np.bincount(num_classes * labels[keep].astype(int) + predictions[keep],
                         minlength=num_classes ** 2).reshape(num_classes, num_classes)
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    return np.mean(np.diag(matrix)[union > 0] / union[union > 0])


class DownstreamTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.data = os.path.join(cls.root, "synth")
        synthetic.generate_dataset(cls.data, size=64, num_train=6, num_test=3, progress=False)

    def test_three_arms_end_to_end(self):
        config = tiny_config(self.root, name="run")
        write_tiny_run(config)
        output = os.path.join(self.root, "downstream")
        report = downstream.run_downstream(self.data, config.run_dir, output, epochs=1,
                                           batch_size=3, width=4)
        self.assertEqual(list(report["results"]), [downstream.RAW, downstream.TRANSLATED,
                                                   downstream.UPPER])
        self.assertEqual(report["settings"]["train_images"], 6)
        with open(os.path.join(output, downstream.REPORT)) as f:
            self.assertEqual(json.load(f), report)
        self.assertEqual(Image.open(os.path.join(output, downstream.CHART)).size[1], 400)
        translated = folders.list_images(os.path.join(output, "trainA_translated"))
        self.assertLen(translated, 6)
        self.assertEqual(Image.open(translated[0]).size, (64, 64))
        table = downstream.format_table(report)
        for name in report["results"]:
            self.assertIn(f"| {name} | {report['results'][name]['mean_iou']:.4f} |", table)

        # The upper bound's score, recomputed from its SavedModel with a NumPy oracle.
        model = segmenter.load_segmenter(os.path.join(output, downstream.SEGMENTER_B))
        test_b = folders.list_images(os.path.join(self.data, "testB"))
        images = tf.stack([folders.load_image(p) for p in test_b])
        predictions = np.argmax(model(images), axis=-1)
        labels = np.stack([synthetic.to_train_ids(np.asarray(Image.open(
            os.path.join(self.data, "testB_labels", os.path.basename(p)[:-4] + ".png"))))
            for p in test_b])
        self.assertAllClose(report["results"][downstream.UPPER]["mean_iou"],
                            _numpy_mean_iou(labels, predictions, segmenter.NUM_CLASSES))

    def test_a_BtoA_run_is_refused(self):
        config = tiny_config(self.root, name="backwards", direction="BtoA")
        write_tiny_run(config)
        with self.assertRaisesRegex(ValueError, "--direction=BtoA.*needs an AtoB run"):
            downstream.run_downstream(self.data, config.run_dir, os.path.join(self.root, "x"))
