"""launch.export as a process: what a killed export left is removed, and saved_model_cli's
view of what it wrote."""
import json
import os
import subprocess
import sys
import tempfile

import pytest
import tensorflow as tf

from tests.serving.servingdata import save_tiny_run

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExportCLITest(tf.test.TestCase):

    def test_exports_versions_that_saved_model_cli_lists_cleanly(self):
        root = tempfile.mkdtemp()
        config, _ = save_tiny_run(root)
        export_dir = os.path.join(root, "saved_models")
        killed = subprocess.Popen([sys.executable, "-c", "pass"])  # as if killed mid-save
        killed.wait()
        stale = os.path.join(export_dir, "tiny", f".staging-2-{killed.pid}")
        os.makedirs(os.path.join(stale, "variables"))
        result = subprocess.run(
            [sys.executable, "-m", "launch.export", f"--checkpoint={config.run_dir}",
             "--name=tiny", f"--export_dir={export_dir}", "--version=3",
             "--max_image_pixels=4096"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        path = os.path.join(export_dir, "tiny", "3")
        self.assertIn(f"Exported {path}", result.stdout)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["3"])
        with open(os.path.join(path, "assets.extra", "tfattncut.json")) as f:
            self.assertEqual(json.load(f)["max_image_pixels"], 4096)
        shown = subprocess.run(["saved_model_cli", "show", "--all", "--dir", path],
                               capture_output=True, text=True, timeout=300)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        for text in ("signature_def['serving_default']", "inputs['images']", "DT_UINT8",
                     "signature_def['translate_float']", "DT_FLOAT",
                     "signature_def['translate_encoded']", "inputs['image_bytes']",
                     "outputs['translated_bytes']", "outputs['translated']",
                     "Method name is: tensorflow/serving/predict"):
            self.assertIn(text, shown.stdout)
        self.assertNotIn("keras_tensor", shown.stdout)
        self.assertNotIn("output_0", shown.stdout)
