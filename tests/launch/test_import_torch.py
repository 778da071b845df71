"""launch.import_torch as a process on the committed fixture."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tfattncut.inference import load_translator

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


class ImportTorchCLITest(tf.test.TestCase):

    def test_mistakes_are_one_line_that_names_the_flag(self):
        folder = tempfile.mkdtemp()
        a_file = os.path.join(folder, "notes.txt")
        with open(a_file, "w") as f:
            f.write("not a folder")
        for flags, message in [
                (["--preset=study", f"--out={folder}/imported"],
                 "--preset=study: configs/study.cfg does not parse as launch.train's flags"),
                (["--preset=cut", f"--out={a_file}/imported"], f"--out={a_file}/imported: ")]:
            result = subprocess.run(
                [sys.executable, "-m", "launch.import_torch",
                 f"--netG={os.path.join(FIXTURES, 'cut_ngf2_6blocks.pth')}", *flags],
                cwd=ROOT, capture_output=True, text=True, timeout=300)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertIn(f"launch.import_torch: error: {message}", result.stderr)
        self.assertEqual(os.listdir(folder), ["notes.txt"])

    def test_writes_a_run_that_load_translator_accepts(self):
        out = os.path.join(tempfile.mkdtemp(), "imported")
        result = subprocess.run(
            [sys.executable, "-m", "launch.import_torch",
             f"--netG={os.path.join(FIXTURES, 'cut_ngf2_6blocks.pth')}", "--preset=cut",
             f"--out={out}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"--checkpoint={out}", result.stdout)
        translator, config = load_translator(out)
        self.assertEqual(config.ngf, 2)
        io = np.load(os.path.join(FIXTURES, "cut_ngf2_6blocks_io.npz"))
        self.assertAllClose(translator(tf.constant(io["images"].transpose(0, 2, 3, 1))),
                            io["translated"].transpose(0, 2, 3, 1), atol=2e-4)
