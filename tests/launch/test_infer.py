"""launch.infer as a process against an in-process server, and its refusals of bad flags
before any request."""
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
            again = infer("--model_name=tiny", f"--output={output}")
            missing = infer("--model_name=nope", f"--output={output}", "--overwrite")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Wrote 1 translation(s)", result.stdout)
        self.assertEqual(Image.open(os.path.join(output, "frame.png")).size, (14, 11))
        self.assertEqual(again.returncode, 1, again.stderr)  # before any request
        self.assertEqual(again.stderr.strip().splitlines()[-1],
                         f"launch.infer: error: --output={output}: {output}/frame.png exists; "
                         "pass --overwrite to replace them, or choose another --output")
        self.assertEqual(missing.returncode, 1, missing.stderr)
        self.assertRegex(missing.stderr.strip().splitlines()[-1],
                         f"^launch.infer: error: --server=127.0.0.1:{server.port}: NOT_FOUND: "
                         "no model named 'nope'")


class InferCLIErrorTest(tf.test.TestCase):

    def test_bad_flags_and_an_output_file_are_refused_naming_the_flag(self):
        root = tempfile.mkdtemp()
        image = os.path.join(root, "frame.png")
        Image.new("RGB", (8, 8)).save(image)
        output = f"--output={os.path.join(root, 'out')}"
        cases = {  # wanted message: flags
            "flag --retries=-1: -1 is not a non-negative integer": ["--retries=-1", output],
            "--timeout_seconds must be > 0": ["--timeout_seconds=0", output],
            "flag --model_version=-1: -1 is not a non-negative integer":
                ["--model_version=-1", output],
            f"launch.infer: error: --output={image}: {image} exists and is not a folder": [
                f"--output={image}"],
        }
        for want, flags in cases.items():
            with self.subTest(want):
                # No server listens on port 1: each error must come before any request.
                result = subprocess.run(
                    [sys.executable, "-m", "launch.infer", "--server=127.0.0.1:1",
                     "--model_name=tiny", f"--input={image}", "--retries=0", *flags],
                    cwd=ROOT, capture_output=True, text=True, timeout=300)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertNotIn("Traceback", result.stderr)
                self.assertIn(want, result.stderr)
