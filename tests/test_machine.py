"""tfattncut.machine: the one-line machine description benchmarks and the study record, and
the matmul peak benchmarks compare with."""
import os
import tempfile
from unittest import mock

import tensorflow as tf

from tfattncut import machine

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw
processor\t: 1
model name\t: another model, never reported
flags\t\t: fpu
"""


class DescribeTest(tf.test.TestCase):

    def test_first_cpu_model_and_the_vector_units_that_pick_kernels(self):
        path = os.path.join(tempfile.mkdtemp(), "cpuinfo")
        with open(path, "w") as f:
            f.write(CPUINFO)
        text = machine.describe(path)
        cores = len(os.sched_getaffinity(0))
        self.assertStartsWith(
            text, f"Intel(R) Xeon(R) CPU @ 2.20GHz, {cores} cores (avx2, fma, avx512f), ")
        self.assertNotIn("another model", text)

    def test_without_cpuinfo_names_the_platform(self):
        text = machine.describe(os.path.join(tempfile.mkdtemp(), "missing"))
        self.assertRegex(text, r"^\S.*, \d+ cores, (no GPU|GPU: .+)$")


class MatmulPeakTest(tf.test.TestCase):

    def test_best_of_every_size_and_repeat_after_each_warm_up(self):
        # Size 64: timed 0.5 s and 0.25 s; size 32: 0.1 s and 0.05 s (warm-ups untimed).
        # The fastest rate counts, whichever size and repeat it came from: 64 at 0.25 s
        # (2.1 MFLOP/ms against 32's best, 1.3).
        with mock.patch.object(machine.time, "perf_counter",
                               side_effect=[0, 0.5, 1, 1.25, 2, 2.1, 3, 3.05]):
            peak = machine.matmul_peak_gflop_per_s(sizes=(64, 32), repeats=2)
        self.assertAllClose(peak, 2 * 64 ** 3 / 0.25 / 1e9)
