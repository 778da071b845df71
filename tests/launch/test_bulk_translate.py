"""launch.bulk_translate as a process: flags that are neither ours nor Beam's, an input that
matches nothing and an output folder that holds the inputs are one clear error line before
any work (the pipeline itself is tests/bulk/test_pipeline.py's)."""
import os
import subprocess
import sys
import tempfile

import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BulkTranslateCLITest(tf.test.TestCase):

    def test_an_unknown_flag_is_one_error_line_before_any_work(self):
        root = tempfile.mkdtemp()
        result = subprocess.run(
            [sys.executable, "-m", "launch.bulk_translate", f"--model={root}/none",
             f"--input={root}/*.png", f"--output={root}/out", "--direct_num_workers=1",
             "--max_image_pixel=5"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         "launch.bulk_translate: error: unknown flag(s) --max_image_pixel: "
                         "neither flags of launch.bulk_translate (--helpfull) nor Beam "
                         "pipeline options")
        self.assertFalse(os.path.exists(os.path.join(root, "out")))

    def test_an_input_that_matches_nothing_is_refused_before_the_checkpoint_is_read(self):
        root = tempfile.mkdtemp()
        result = subprocess.run(
            [sys.executable, "-m", "launch.bulk_translate", f"--checkpoint={root}/no_run",
             f"--input={root}/*.png", f"--output={root}/out"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         f"launch.bulk_translate: error: --input={root}/*.png matches no file")
        self.assertFalse(os.path.exists(os.path.join(root, "out")))

    def test_an_output_folder_holding_the_inputs_is_refused_however_it_is_written(self):
        root = tempfile.mkdtemp()
        os.makedirs(os.path.join(root, "frames"))
        with open(os.path.join(root, "frames", "a.png"), "wb") as f:
            f.write(b"not decoded before the check")
        result = subprocess.run(
            [sys.executable, "-m", "launch.bulk_translate", f"--checkpoint={root}/no_run",
             "--input=./frames/*.png", f"--output={root}/frames/"],
            cwd=root, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                filter(None, [REPO, os.environ.get("PYTHONPATH")]))})
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         f"launch.bulk_translate: error: --input={root}/frames/*.png lies in the "
                         f"output folder {root}/frames (or its _labels twin), and a job never "
                         f"translates its own outputs: choose an --output outside {root}/frames/")
        self.assertEqual(os.listdir(os.path.join(root, "frames")), ["a.png"])
