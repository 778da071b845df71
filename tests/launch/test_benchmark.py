"""launch.benchmark as a process: flag combinations it refuses, naming the flags."""
import os
import subprocess
import sys

import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BenchmarkCLITest(tf.test.TestCase):

    def test_refuses_modes_that_do_not_combine(self):
        for args, message in [
                (["--profile_layers"], "--profile_layers profiles the bulk path: add --bulk"),
                (["--bulk", "--serving"], "choose one of --train, --serving, --bulk"),
                (["--train", "--size=64x32"], "--size=64x32: only --bulk takes HxW"),
                (["--train", "--selectors=random,nope"],
                 "--selectors: nope not among the selectors (random, qs_global,"),
                (["--bulk", "--size=8x8", "--workers=1,x"],
                 "--workers=['1', 'x']: must be positive integers")]:
            result = subprocess.run([sys.executable, "-m", "launch.benchmark", *args],
                                    cwd=ROOT, capture_output=True, text=True, timeout=300)
            self.assertNotEqual(result.returncode, 0, args)
            self.assertIn(message, result.stderr + result.stdout, args)
            self.assertNotIn("measuring", result.stderr, args)  # before any worker starts

    def test_a_failing_worker_keeps_the_rows_measured_before_it(self):
        # --qs_layers is checked only where a non-random selector is built: the random row
        # is measured, the qs_global row's worker fails.
        result = subprocess.run(
            [sys.executable, "-m", "launch.benchmark", "--train", "--selectors=random,qs_global",
             "--qs_layers=99", "--steps=1", "--warmup=0", "--size=32", "--netG=resnet_6blocks",
             "--ngf=2", "--ndf=2", "--batch_size=1"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1],
                         "launch.benchmark: error: measuring qs_global failed: its worker "
                         "exited with status 1 (its error is above); the table above holds "
                         "the rows measured before it")
        table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
        self.assertLen(table, 2)  # the header and the random row
        self.assertStartsWith(table[1], "| random | cut | random | 32 | 1 | 1 |")
