"""tfattncut.bulk.benchmark on a tiny generator: the prepared run, its export and images; rows
that translate every image; the reference row's command and parsing; the table's GFLOP/s and
share of the matmul peak; the layer profile, whose layers add up to the generator."""
import os
import stat
import tempfile

import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.bulk import benchmark
from tfattncut.models.generator import GENERATOR_BLOCKS, build_generator
from tfattncut.training.benchmark import count_flops

SIZE = (24, 40)
COUNT = 2


class BulkBenchmarkTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.config = tiny_config(cls.root)
        cls.gflop = benchmark.prepare(cls.root, cls.config, *SIZE, COUNT)

    def test_prepare_writes_the_run_its_export_and_the_images(self):
        self.assertTrue(os.path.isfile(os.path.join(self.root, "run", "config.json")))
        self.assertTrue(os.path.isfile(os.path.join(
            self.root, "saved_models", "bench", "1", "saved_model.pb")))
        images = sorted(os.listdir(os.path.join(self.root, "images")))
        self.assertEqual(images, ["0000.png", "0001.png"])
        decoded = tf.io.decode_png(tf.io.read_file(os.path.join(self.root, "images", images[0])))
        self.assertEqual(decoded.shape, (*SIZE, 3))
        # The 7x7 stem alone, 3 -> ngf 4 channels at 24x40: 2 * 49 * 3 * 4 * 960 FLOPs.
        self.assertGreater(self.gflop, 2 * 49 * 3 * 4 * 960 / 1e9)

    def test_each_row_translates_every_image(self):
        for row, output in ((benchmark.TRANSLATE, "out_translate"), ("1", "out_beam1")):
            result = benchmark.measure(self.root, row)
            self.assertEqual(result["images"], COUNT, row)
            # The same Python float division on the same numbers.
            self.assertEqual(result["images_per_s"], COUNT / result["seconds"])
            self.assertGreater(result["peak_memory_mb"], 0)
            self.assertLen([name for name in os.listdir(os.path.join(self.root, output))
                            if name.endswith(".png")], COUNT, row)

    def test_reference_row_runs_the_script_with_the_generator_size(self):
        # A stand-in interpreter (torch is not a test dependency): it records its arguments
        # and prints the script's JSON line.
        folder = tempfile.mkdtemp()
        python = os.path.join(folder, "python")
        with open(python, "w") as f:
            f.write(f"#!/bin/sh\necho \"$@\" > {folder}/args\n"
                    "echo 'torch warning'\n"
                    "echo '{\"images\": 2, \"seconds\": 4.0, \"peak_memory_mb\": 100.0}'\n")
        os.chmod(python, os.stat(python).st_mode | stat.S_IEXEC)
        row = benchmark.measure_reference(self.root, python, self.config)
        with open(os.path.join(folder, "args")) as f:
            args = f.read().split()
        self.assertEqual(args[0], benchmark.TORCH_REFERENCE)
        self.assertTrue(os.path.isfile(benchmark.TORCH_REFERENCE))
        self.assertIn("--ngf=4", args)
        self.assertIn("--blocks=6", args)
        self.assertEqual(row["images_per_s"], 0.5)
        with self.assertRaisesRegex(ValueError, "--netG=unet_256"):
            benchmark.measure_reference(self.root, python, self.config.replace(netG="unet_256"))

    def test_table_states_gflop_per_s_and_the_share_of_the_peak(self):
        rows = [{"path": "translate", "workers": 1, "images": 4, "seconds": 8.0,
                 "images_per_s": 0.5, "peak_memory_mb": 1000.0},
                {"path": "beam", "workers": 2, "images": 4, "seconds": 4.0,
                 "images_per_s": 1.0, "peak_memory_mb": 900.0}]
        table = benchmark.format_table(rows, 100.0, 1052, 1914, peak_gflop_per_s=200.0)
        self.assertIn("matmul peak 200 GFLOP/s", table)
        # 0.5 images/s x 100 GFLOP = 50 GFLOP/s = 25 % of the peak; the second row twice that.
        self.assertIn("| translate | 1 | 4 | 8.0 | 0.500 | 50.0 | 25 | 1000 | 1.00 |", table)
        self.assertIn("| beam | 2 | 4 | 4.0 | 1.000 | 100.0 | 50 | 900 | 2.00 |", table)


class LayerProfileTest(tf.test.TestCase):

    def test_every_layer_is_timed_and_the_flops_add_up_to_the_generator(self):
        config = tiny_config("/unused")
        kinds, whole_seconds = benchmark.profile_layers(config, *SIZE, repeats=1)
        generator = build_generator(config)
        generator(tf.zeros([1, 8, 8, 3]))
        graph = tf.function(generator).get_concrete_function(tf.TensorSpec([1, *SIZE, 3])).graph
        # The same integer FLOP counts, summed as floats in another order.
        self.assertAllClose(sum(entry["gflop"] for entry in kinds.values()),
                            sum(count_flops(graph).values()) / 1e9, rtol=1e-9, atol=0)
        # Each residual block is timed as its 7 layers and its sum.
        blocks = GENERATOR_BLOCKS[config.netG]
        self.assertEqual(sum(entry["layers"] for entry in kinds.values()),
                         len(generator.layer_list) + blocks * 7)
        self.assertTrue(all(entry["seconds"] > 0 for entry in kinds.values()))
        self.assertGreater(whole_seconds, 0)
        self.assertEqual(kinds["residual block: sum, 16->16 channels, 6x10 in"]["layers"],
                         blocks)

    def test_table_states_rates_where_there_are_flops(self):
        kinds = {"Conv 3x3, 64->128 channels, 1052x1916 in":
                 {"layers": 1, "seconds": 3.0, "gflop": 300.0},
                 "ReLU, 64->64 channels, 1052x1916 in":
                 {"layers": 2, "seconds": 1.0, "gflop": 0.0}}
        table = benchmark.format_layer_profile(kinds, 4.5, 1052, 1916, peak_gflop_per_s=200.0)
        self.assertIn("the layers take 4.0 s one by one, the whole forward pass 4.5 s; "
                      "300 GFLOP, 66.7 GFLOP/s overall", table)
        # 300 GFLOP in 3 s = 100 GFLOP/s = 50 % of the peak; 75 % of the time.
        self.assertIn("| Conv 3x3, 64->128 channels, 1052x1916 in | 1 | 3.00 | 75.0 | 300.0 | "
                      "100.0 | 50 |", table)
        self.assertIn("| ReLU, 64->64 channels, 1052x1916 in | 2 | 1.00 | 25.0 | 0.0 | - | - |",
                      table)
