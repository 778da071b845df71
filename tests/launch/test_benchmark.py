"""launch.benchmark as a process: flag combinations it refuses, naming the flags."""
import os
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BenchmarkCLITest(tf.test.TestCase):

    def test_refuses_modes_that_do_not_combine(self):
        for args, message in [
                (["--profile_layers"], "--profile_layers profiles the bulk path: add --bulk"),
                (["--bulk", "--serving"], "choose one of --train, --serving, --bulk"),
                (["--train", "--size=64x32"], "--size=64x32: only --bulk takes HxW")]:
            result = subprocess.run([sys.executable, "-m", "launch.benchmark", *args],
                                    cwd=ROOT, capture_output=True, text=True, timeout=300)
            self.assertNotEqual(result.returncode, 0, args)
            self.assertIn(message, result.stderr + result.stdout, args)


if __name__ == "__main__":
    tf.test.main()
