"""Gathering runs' evaluation reports into one table and one plot."""
import os
import tempfile

import tensorflow as tf
from PIL import Image

from tests.evaluation.fake_runs import write_run
from tfattncut.evaluation import compare, reports


class CompareTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.run_a = write_run(cls.root, "cut", "random", [
            (2, "fid2015:x.pb", {"fid": 50.0, "kid": 0.02, "kid_std": 0.001}),
            (1, "fid2015:x.pb", {"fid": 60.0, "kid": 0.03, "kid_std": 0.002}),
            (3, "fid2015:x.pb", {"fid": 55.0, "kid": 0.01, "kid_std": 0.003}),
        ])
        cls.run_b = write_run(cls.root, "qs", "qs_global", [
            (None, "fid2015:x.pb", {"fid": 70.0, "psnr": 20.0}),
            (1, "fid2015:x.pb", {"fid": 40.0, "swd": 3.0}),
        ])

    def test_table_rows_take_the_newest_report_and_the_best_fid(self):
        table, plot = compare.compare([self.run_a, self.run_b], os.path.join(self.root, "out"))
        lines = table.splitlines()
        self.assertEqual(lines[0], "| run | method | epoch | backbone | fid | kid | swd | "
                                   "best fid (epoch) |")
        self.assertEqual(lines[2], "| cut | cut/random | 3 | fid2015:x.pb | 55.0000 | "
                                   "0.0100 ± 0.0030 | — | 50.0000 (2) |")
        self.assertEqual(lines[3], "| qs | cut/qs_global | 1 | fid2015:x.pb | 40.0000 | — | "
                                   "3.0000 | 40.0000 (1) |")
        self.assertIn("FID/KID/IS from the Inception backbone fid2015:x.pb.", table)
        with open(os.path.join(self.root, "out", compare.TABLE)) as f:
            self.assertEqual(f.read(), table + "\n")
        # Panels fid, kid, swd (the epoch-less psnr is not plotted); two runs in the legend.
        self.assertEqual(Image.open(plot).size, (640, 3 * 260 + 2 * 22 + 10))

    def test_series_are_sorted_by_epoch(self):
        run = compare.load_run(self.run_a)
        self.assertEqual(run.series("fid"), [(1, 60.0), (2, 50.0), (3, 55.0)])
        self.assertEqual(compare.load_run(self.run_b).reports[0].get("epoch"), None)

    def test_backbone_warnings(self):
        run_c = write_run(self.root, "smoke", "random", [(1, "random", {"fid": 1.0})])
        runs = [compare.load_run(self.run_a), compare.load_run(run_c)]
        notes = " ".join(compare.backbone_notes(runs))
        self.assertIn("different Inception backbones (fid2015:x.pb, random)", notes)
        self.assertIn("'random' is for smoke tests only", notes)

    def test_run_without_reports_is_an_error(self):
        empty = os.path.join(self.root, "empty")
        os.makedirs(empty)
        with self.assertRaisesRegex(FileNotFoundError, "--runs: .*empty has no evaluation "
                                                       "reports.*launch.evaluate --checkpoint"):
            compare.load_run(empty)

    def test_runs_of_one_folder_name_get_the_parents_that_tell_them_apart(self):
        root = tempfile.mkdtemp()
        same = [write_run(os.path.join(root, parent), "x", "random", [(1, "random", {"fid": f})])
                for parent, f in (("a", 1.0), ("b", 2.0))]
        other = write_run(os.path.join(root, "c"), "y", "random", [(1, "random", {"fid": 3.0})])
        self.assertEqual(compare.run_names(same + [other]), ["a/x", "b/x", "y"])
        self.assertEqual(compare.run_names([os.path.join(root, "a", "x"), "x"]),
                         ["a/x", f"{os.path.basename(os.getcwd())}/x"])
        table, plot = compare.compare(same, os.path.join(root, "out"))
        self.assertIn("| a/x | cut/random | 1 | random | 1.0000 |", table)
        self.assertIn("| b/x | cut/random | 1 | random | 2.0000 |", table)
        # One fid panel and a legend of two lines, not one.
        self.assertEqual(Image.open(plot).size, (640, 260 + 2 * 22 + 10))
        with self.assertRaisesRegex(ValueError, f"--runs names one run twice: {same[0]} and "
                                                f"{same[0]}/"):
            compare.run_names([same[0], same[0] + "/"])

    def test_reports_without_a_needed_field_name_the_file_and_field(self):
        root = tempfile.mkdtemp()
        run_dir = write_run(root, "run", "random", [])
        path = os.path.join(run_dir, reports.EVAL_FOLDER, "evaluate.json")
        for report, field in (({"metrics": {"fid": 3.0}}, "inception.backbone"),
                              ({"metrics": {"fid": "3"}, "inception": {"backbone": None}},
                               "metrics.fid"),
                              ({"metrics": {}, "inception": {"backbone": None}, "epoch": "2"},
                               "epoch")):
            reports.write_json(report, path)
            with self.assertRaisesRegex(ValueError, f"{path}: .*field '{field}'"):
                compare.load_run(run_dir)

    def test_an_output_that_is_a_file_is_refused_first(self):
        output = os.path.join(tempfile.mkdtemp(), "compare")
        with open(output, "w") as f:
            f.write("mine")
        with self.assertRaisesRegex(NotADirectoryError,
                                    f"--output=.*: {output} exists and is not a folder"):
            compare.compare([os.path.join(self.root, "no_such_run")], output)

    def test_no_runs_is_refused_and_an_old_plot_is_not_left_beside_a_new_table(self):
        output = os.path.join(tempfile.mkdtemp(), "compare")
        with self.assertRaisesRegex(ValueError, "^--runs names no run"):
            compare.compare([], output)
        self.assertFalse(os.path.exists(output))
        _, plot = compare.compare([self.run_a], output)
        self.assertTrue(os.path.isfile(plot))
        epochless = write_run(tempfile.mkdtemp(), "once", "random",
                              [(None, "random", {"fid": 1.0})])
        table, plot = compare.compare([epochless], output)
        self.assertIsNone(plot)
        self.assertIn("| once |", table)
        self.assertFalse(os.path.exists(os.path.join(output, compare.PLOT)))
