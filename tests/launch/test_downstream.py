"""launch.downstream as a real process with configs/downstream.cfg, shrunk by overrides to
a tiny synthetic set and one epoch."""
import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.data import synthetic
from tfattncut.evaluation import downstream

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DownstreamCLITest(tf.test.TestCase):

    def test_flagfile_with_overrides_runs(self):
        root = tempfile.mkdtemp()
        data = os.path.join(root, "synth")
        synthetic.generate_dataset(data, size=64, num_train=4, num_test=2, progress=False)
        config = tiny_config(root, name="run")
        write_tiny_run(config)
        output = os.path.join(root, "out")
        result = subprocess.run(
            [sys.executable, "-m", "launch.downstream", "--flagfile=configs/downstream.cfg",
             f"--dataroot={data}", "--make_synthetic=false", f"--checkpoint={config.run_dir}",
             f"--output={output}", "--epochs=1", "--batch_size=2", "--width=4"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("| segmenter trained on | mean IoU |", result.stdout)
        for name in (downstream.RAW, downstream.TRANSLATED, downstream.UPPER):
            self.assertRegex(result.stdout, rf"\| {name.replace('(', '.').replace(')', '.')} "
                                            rf"\| 0\.\d{{4}} \|")
        for name in (downstream.REPORT, downstream.CHART):
            self.assertTrue(os.path.isfile(os.path.join(output, name)))
        self.assertIn("Mean IoU on 2 images", result.stdout)
