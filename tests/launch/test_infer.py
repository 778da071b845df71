"""launch.infer as a process against an in-process server."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.serving.servingdata import export_tiny_model
from tfattncut.serving.server import ModelServer

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InferCLITest(tf.test.TestCase):

    def test_translates_files_and_reports_server_errors(self):
        root = tempfile.mkdtemp()
        path = export_tiny_model(root).path
        image = os.path.join(root, "frame.png")
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (11, 14, 3), np.uint8)).save(
            image)
        output = os.path.join(root, "out")
        with ModelServer({"tiny": os.path.dirname(path)}, port=0, host="127.0.0.1",
                         poll_wait_seconds=0) as server:
            def infer(*flags):
                return subprocess.run(
                    [sys.executable, "-m", "launch.infer", f"--server=127.0.0.1:{server.port}",
                     f"--input={image}", *flags], cwd=ROOT, capture_output=True, text=True,
                    timeout=300)

            result = infer("--model_name=tiny", f"--output={output}", "--concurrency=2")
            missing = infer("--model_name=nope", f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Wrote 1 translation(s)", result.stdout)
        self.assertEqual(Image.open(os.path.join(output, "frame.png")).size, (14, 11))
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("NOT_FOUND: no model named 'nope'", missing.stderr)
