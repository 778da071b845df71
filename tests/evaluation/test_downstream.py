"""The downstream experiment end to end on a tiny synthetic set: each arm's training images and
labels, the translations, and every arm's score recomputed from its segmenter by a NumPy
confusion matrix."""
import json
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.data import image_files, synthetic
from tfattncut.data.labels import to_train_ids
from tfattncut.evaluation import downstream, segmenter
from tfattncut.models import segmenter as segmenter_model

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


def _numpy_mean_iou(labels, predictions, num_classes):
    keep = labels != 255
    matrix = np.bincount(num_classes * labels[keep].astype(int) + predictions[keep],
                         minlength=num_classes ** 2).reshape(num_classes, num_classes)
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    return np.mean(np.diag(matrix)[union > 0] / union[union > 0])


def _stems(paths):
    return [os.path.splitext(os.path.basename(p))[0] for p in paths]


class DownstreamTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.data = os.path.join(cls.root, "synth")
        synthetic.generate_dataset(cls.data, size=64, num_train=6, num_test=3, progress=False)

    def test_three_arms_end_to_end(self):
        config = tiny_config(self.root, name="run")
        generator = write_tiny_run(config)
        output = os.path.join(self.root, "downstream")
        trained = []  # (image paths, label folder, segmenter) of each arm, in order
        train_segmenter = segmenter.train_segmenter

        def recording(paths, label_dir, *args):
            model = train_segmenter(paths, label_dir, *args)
            trained.append((list(paths), label_dir, model))
            return model

        with mock.patch.object(segmenter, "train_segmenter", recording):
            report = downstream.run_downstream(self.data, config.run_dir, output, epochs=1,
                                               batch_size=3, width=4)
        self.assertEqual(list(report["results"]), [downstream.RAW, downstream.TRANSLATED,
                                                   downstream.UPPER])
        self.assertEqual(report["settings"]["train_images"], 6)
        with open(os.path.join(output, downstream.REPORT)) as f:
            self.assertEqual(json.load(f), report)
        self.assertEqual(Image.open(os.path.join(output, downstream.CHART)).size[1], 400)
        translated = image_files.list_images(os.path.join(output, "trainA_translated"))
        self.assertLen(translated, 6)
        self.assertEqual(Image.open(translated[0]).size, (64, 64))
        table = downstream.format_table(report)
        for name in report["results"]:
            self.assertIn(f"| {name} | {report['results'][name]['mean_iou']:.4f} |", table)

        # Which images and labels each arm trains on: raw A, A translated (same stems, so
        # A's labels), B.
        train_a = sorted(os.path.join(self.data, "trainA", n)
                         for n in os.listdir(os.path.join(self.data, "trainA")))
        train_b = sorted(os.path.join(self.data, "trainB", n)
                         for n in os.listdir(os.path.join(self.data, "trainB")))
        self.assertEqual([(paths, label_dir) for paths, label_dir, _ in trained], [
            (train_a, os.path.join(self.data, "trainA_labels")),
            (translated, os.path.join(self.data, "trainA_labels")),
            (train_b, os.path.join(self.data, "trainB_labels"))])
        self.assertEqual(_stems(translated), _stems(train_a))
        # The translated arm's images are the generator's translations of A (written as
        # uint8: a value at a rounding boundary may land one level off between kernels).
        for source, written in zip(train_a, translated):
            image = np.asarray(Image.open(source).convert("RGB"), np.float32) / 127.5 - 1
            want = np.round((np.clip(generator(image[None]).numpy()[0], -1, 1) + 1) * 127.5)
            self.assertAllClose(np.asarray(Image.open(written)), want, rtol=0, atol=1)

        # Every arm's score, recomputed from its segmenter with a NumPy oracle on testB; the
        # upper bound's also from its exported SavedModel.
        test_b = sorted(os.path.join(self.data, "testB", n)
                        for n in os.listdir(os.path.join(self.data, "testB")))
        images = tf.stack([image_files.load_image(p) for p in test_b])
        labels = np.stack([to_train_ids(np.asarray(Image.open(
            os.path.join(self.data, "testB_labels", stem + ".png")))) for stem in _stems(test_b)])
        exported = segmenter_model.load_segmenter(os.path.join(output, downstream.SEGMENTER_B))
        models = [model for _, _, model in trained] + [exported]
        for name, model in zip(list(report["results"]) + [downstream.UPPER], models):
            predictions = np.argmax(model(images), axis=-1)
            # IoU is a ratio of pixel counts: the same predictions give the same value.
            self.assertAllClose(
                report["results"][name]["mean_iou"],
                _numpy_mean_iou(labels, predictions, segmenter_model.NUM_CLASSES), msg=name)

    def test_a_BtoA_run_is_refused(self):
        config = tiny_config(self.root, name="backwards", direction="BtoA")
        write_tiny_run(config)
        with self.assertRaisesRegex(ValueError, "--direction=BtoA.*needs an AtoB run"):
            downstream.run_downstream(self.data, config.run_dir, os.path.join(self.root, "x"))

    def test_a_missing_label_map_is_named_before_anything_is_translated(self):
        config = tiny_config(self.root, name="labels_missing")
        write_tiny_run(config)
        data = os.path.join(self.root, "no_trainB_label")
        shutil.copytree(self.data, data)
        missing = image_files.list_images(os.path.join(data, "trainB_labels"))[-1]
        os.remove(missing)
        output = os.path.join(self.root, "labels_missing_out")
        with self.assertRaisesRegex(FileNotFoundError, f"{data}/trainB_labels has no file for "
                                                       "1 of the 6 images"):
            downstream.run_downstream(data, config.run_dir, output)
        self.assertFalse(os.path.exists(output))

