"""launch.evaluate as a real process: the segmentation score of an exported SavedModel on
hand-made label maps (tests/evaluation/segmentation_data.py has the hand count), and user
mistakes reported as one line."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tests.evaluation import segmentation_data
from tests.testdata import write_png

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _evaluate(*flags):
    """`python -m launch.evaluate FLAGS` from the repository; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "launch.evaluate", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


class EvaluateCLITest(tf.test.TestCase):

    def test_segmentation_score_of_a_saved_model(self):
        root = tempfile.mkdtemp()
        image_dir, label_dir = segmentation_data.write_scenes(root)
        saved = segmentation_data.export_colour_segmenter(root)
        output = os.path.join(root, "report.json")
        result = _evaluate(f"--fake={image_dir}", f"--segmenter={saved}",
                           f"--labels={label_dir}", f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(output) as f:
            report = json.load(f)
        for name, iou in segmentation_data.EXPECTED_IOU.items():
            self.assertAllClose(report["per_class_iou"][name], iou)
            self.assertIn(f"| {name} | {iou:.4f} |", result.stdout)
        self.assertIsNone(report["per_class_iou"]["building"])
        metrics = report["metrics"]
        self.assertAllClose(metrics["mean_iou"], sum(segmentation_data.EXPECTED_IOU.values()) / 4)
        self.assertAllClose(metrics["pixel_accuracy"], segmentation_data.EXPECTED_PIXEL_ACCURACY)
        self.assertAllClose(metrics["mean_class_accuracy"],
                            segmentation_data.EXPECTED_CLASS_ACCURACY)
        self.assertIn("No Inception backbone", result.stdout)
        self.assertIn(f"Report: {output}", result.stdout)

    def test_refuses_to_write_the_report_over_an_input_image(self):
        root = tempfile.mkdtemp()
        image_dir, _ = segmentation_data.write_scenes(root)
        image = os.path.join(image_dir, sorted(os.listdir(image_dir))[0])
        with open(image, "rb") as f:
            before = f.read()
        result = _evaluate(f"--fake={image_dir}", f"--real={image_dir}", "--metrics=swd",
                           f"--output={image}")
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         f"launch.evaluate: error: --output={image} exists and is not an "
                         "evaluation report; writing the report would replace it: choose "
                         "another path")
        with open(image, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_junk_weights_and_tiny_images_for_ssim_are_one_line_errors(self):
        root = tempfile.mkdtemp()
        junk = os.path.join(root, "junk.pb")
        with open(junk, "wb") as f:
            f.write(b"this is not a graph\x00\xff\xfe" * 10)
        tiny = os.path.dirname(write_png(os.path.join(root, "tiny"), "0.png",
                                         np.zeros([8, 8, 3], np.uint8)))
        for flags, message in (
                ([f"--fake={tiny}", f"--real={tiny}", "--metrics=fid",
                  f"--inception=fid2015:{junk}"],
                 f"'fid2015:{junk}' is not a frozen TensorFlow graph (a GraphDef protobuf)"),
                ([f"--fake={tiny}", f"--paired={tiny}"],
                 "SSIM compares 11x11 windows, but batch 0 has 8x8 images")):
            result = _evaluate(*flags)
            self.assertEqual(result.returncode, 1, result.stderr[-3000:])
            self.assertNotIn("Traceback", result.stderr)
            self.assertStartsWith(result.stderr.strip().splitlines()[-1],
                                  f"launch.evaluate: error: {message}")
