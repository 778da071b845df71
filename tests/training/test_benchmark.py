"""The step-time benchmark's measurement and table."""
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.training import benchmark


class BenchmarkTest(tf.test.TestCase):

    def test_measures_a_tiny_step(self):
        row = benchmark.measure_training_step(tiny_config("/unused"), steps=2, warmup=1)
        self.assertGreater(row["step_s"], 0.0)
        self.assertAllClose(row["images_per_s"], 1.0 / row["step_s"])
        self.assertGreater(row["peak_memory_mb"], 10.0)
        self.assertEqual((row["selector"], row["size"], row["jit"]), ("random", 64, False))

    def test_table_ratio_to_random(self):
        rows = [dict(model="cut", selector=s, size=64, batch=1, step_s=t, step_s_std=0.0,
                     images_per_s=1 / t, peak_memory_mb=100.0)
                for s, t in (("random", 2.0), ("qs_global", 2.2))]
        table = benchmark.format_table(rows)
        self.assertIn("| cut | qs_global | 64 | 1 | 2.200 |", table)
        self.assertTrue(table.splitlines()[-1].endswith("| 1.100 |"))
