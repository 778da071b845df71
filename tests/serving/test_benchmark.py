"""tfattncut.serving.benchmark at a toy size: one row per path and concurrency."""
import pytest
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.serving import benchmark

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


class BenchmarkTest(tf.test.TestCase):

    def test_rows_and_table(self):
        rows = benchmark.run_serving_benchmark(
            size=16, requests=4, concurrencies=(1, 2),
            config=tiny_config("/unused", crop_size=16, load_size=16))
        self.assertEqual([(r["path"], r["concurrency"]) for r in rows],
                         [(p, c) for p in benchmark.PATHS for c in (1, 2)])
        for row in rows:
            self.assertEqual(row["requests"], 4)
            self.assertGreater(row["p50_ms"], 0)
            self.assertGreaterEqual(row["p99_ms"], row["p50_ms"])
            self.assertGreater(row["images_per_s"], 0)
        table = benchmark.format_table(rows).splitlines()
        self.assertLen(table, 2 + len(rows))
        self.assertIn("| grpc+batching | 2 | 4 |", table[-1])
