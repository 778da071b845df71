"""The report's files: where a run's per-epoch reports go, and a JSON that refuses what JSON
cannot hold."""
import math
import os
import tempfile

import tensorflow as tf

from tfattncut.evaluation import reports


class ReportsTest(tf.test.TestCase):

    def test_epoch_reports_go_to_the_runs_eval_folder(self):
        self.assertEqual(reports.epoch_report_path("runs/x", 3), "runs/x/eval/epoch_0003.json")

    def test_non_finite_metrics_are_refused_naming_them(self):
        path = os.path.join(tempfile.mkdtemp(), "report.json")
        report = {"inputs": {}, "inception": {"backbone": None},
                  "metrics": {"fid": 3.0, "swd": math.nan, "swd_16": -math.inf}}
        with self.assertRaisesRegex(ValueError, f"Not writing {path}: metrics.swd is nan, "
                                                "metrics.swd_16 is -inf, which JSON cannot hold"):
            reports.write_json(report, path)
        self.assertFalse(os.path.exists(path))
