"""launch.evaluate as a real process: the segmentation score of an exported SavedModel on
hand-made label maps (tests/evaluation/segmentation_data.py has the hand count)."""
import json
import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests.evaluation import segmentation_data
from tfattncut.evaluation import segmenter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class EvaluateCLITest(tf.test.TestCase):

    def test_segmentation_score_of_a_saved_model(self):
        root = tempfile.mkdtemp()
        image_dir, label_dir = segmentation_data.write_scenes(root)
        saved = segmenter.export_segmenter(segmentation_data.colour_segmenter(),
                                           os.path.join(root, "segmenter"))
        output = os.path.join(root, "report.json")
        result = subprocess.run(
            [sys.executable, "-m", "launch.evaluate", f"--fake={image_dir}",
             f"--segmenter={saved}", f"--labels={label_dir}", f"--output={output}"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
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
        result = subprocess.run(
            [sys.executable, "-m", "launch.evaluate", f"--fake={image_dir}",
             f"--real={image_dir}", "--metrics=swd", f"--output={image}"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         f"launch.evaluate: error: --output={image} exists and is not an "
                         "evaluation report; writing the report would replace it: choose "
                         "another path")
        with open(image, "rb") as f:
            self.assertEqual(f.read(), before)
