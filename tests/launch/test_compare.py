"""launch.compare as a real process on fake run directories."""
import os
import subprocess
import sys
import tempfile

import pytest
import tensorflow as tf

from tests.evaluation.fake_runs import write_run

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _compare(*flags):
    """`python -m launch.compare FLAGS` from the repository; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "launch.compare", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


class CompareCLITest(tf.test.TestCase):

    def test_two_runs(self):
        root = tempfile.mkdtemp()
        runs = [write_run(root, "a", "random", [(1, "random", {"fid": 9.0}),
                                                (2, "random", {"fid": 7.0})]),
                write_run(root, "b", "qs_global", [(1, "random", {"fid": 8.0})])]
        output = os.path.join(root, "cmp")
        result = _compare(f"--runs={','.join(runs)}", f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("| a | cut/random | 2 | random | 7.0000 | 7.0000 (2) |", result.stdout)
        self.assertIn("| b | cut/qs_global | 1 | random | 8.0000 | 8.0000 (1) |", result.stdout)
        self.assertIn("smoke tests only", result.stdout)
        self.assertTrue(os.path.isfile(os.path.join(output, "compare.png")))

    def test_an_output_that_is_a_file_is_a_one_line_error(self):
        root = tempfile.mkdtemp()
        run = write_run(root, "a", "random", [(1, "random", {"fid": 9.0})])
        output = os.path.join(root, "cmp")
        with open(output, "w") as f:
            f.write("mine")
        result = _compare(f"--runs={run}", f"--output={output}")
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         f"launch.compare: error: --output={output}: {output} exists and is "
                         f"not a folder; name a folder (it is created if missing)")
