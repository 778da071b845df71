"""launch.compare as a real process on two fake run directories."""
import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests.evaluation.fake_runs import write_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CompareCLITest(tf.test.TestCase):

    def test_two_runs(self):
        root = tempfile.mkdtemp()
        runs = [write_run(root, "a", "random", [(1, "random", {"fid": 9.0}),
                                                (2, "random", {"fid": 7.0})]),
                write_run(root, "b", "qs_global", [(1, "random", {"fid": 8.0})])]
        output = os.path.join(root, "cmp")
        result = subprocess.run(
            [sys.executable, "-m", "launch.compare", f"--runs={','.join(runs)}",
             f"--output={output}"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("| a | cut/random | 2 | random | 7.0000 | 7.0000 (2) |", result.stdout)
        self.assertIn("| b | cut/qs_global | 1 | random | 8.0000 | 8.0000 (1) |", result.stdout)
        self.assertIn("smoke tests only", result.stdout)
        self.assertTrue(os.path.isfile(os.path.join(output, "compare.png")))
