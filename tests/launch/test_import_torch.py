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
