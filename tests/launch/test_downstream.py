"""launch.downstream as a real process with configs/downstream.cfg, shrunk by overrides to
a tiny synthetic set and one epoch."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.testdata import tiny_config, write_tiny_run
from tfattncut.data import synthetic
from tfattncut.evaluation import downstream

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DownstreamCLITest(tf.test.TestCase):

    def test_flagfile_with_overrides_runs(self):
        root = tempfile.mkdtemp()
        data = os.path.join(root, "synth")
        synthetic.generate_dataset(data, size=64, num_train=4, num_test=2, progress=False)
        config = tiny_config(root, name="run")
        generator = write_tiny_run(config)
        output = os.path.join(root, "out")
        command = [
            sys.executable, "-m", "launch.downstream", "--flagfile=configs/downstream.cfg",
            f"--dataroot={data}", "--make_synthetic=false", f"--checkpoint={config.run_dir}",
            f"--output={output}", "--epochs=1", "--batch_size=2", "--width=4"]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("| segmenter trained on | mean IoU |", result.stdout)
        self.assertTrue(os.path.isfile(os.path.join(output, downstream.CHART)))
        self.assertIn("Mean IoU on 2 images", result.stdout)
        with open(os.path.join(output, downstream.REPORT)) as f:
            report = json.load(f)
        # The overrides reached the run (the flagfile says 5 epochs, 8 per batch, width 32).
        self.assertEqual({k: report["settings"][k] for k in (
            "epochs", "batch_size", "width", "train_images", "test_images")},
            dict(epochs=1, batch_size=2, width=4, train_images=4, test_images=2))
        # Each arm's printed row carries its reported scores, each a fraction.
        self.assertEqual(list(report["results"]),
                         [downstream.RAW, downstream.TRANSLATED, downstream.UPPER])
        for name, scores in report["results"].items():
            values = [scores[k] for k in ("mean_iou", "pixel_accuracy", "mean_class_accuracy")]
            for value in values:
                self.assertBetween(value, 0.0, 1.0, name)
            self.assertIn(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |",
                          result.stdout)
        # The translated arm trained on --checkpoint's translations of trainA (uint8: a value
        # at a rounding boundary may land one level off between kernels).
        sources = sorted(os.listdir(os.path.join(data, "trainA")))
        written = sorted(os.listdir(os.path.join(output, "trainA_translated")))
        self.assertEqual([os.path.splitext(n)[0] for n in written],
                         [os.path.splitext(n)[0] for n in sources])
        for source, target in zip(sources, written):
            image = np.asarray(Image.open(os.path.join(data, "trainA", source)).convert("RGB"))
            fake = generator(image[None].astype(np.float32) / 127.5 - 1).numpy()[0]
            self.assertAllClose(np.asarray(Image.open(os.path.join(output, "trainA_translated",
                                                                   target))),
                                np.round((np.clip(fake, -1, 1) + 1) * 127.5), rtol=0, atol=1)
        # The same command again would replace these results: refused, the report kept.
        with open(os.path.join(output, downstream.REPORT)) as f:
            before = f.read()
        again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(again.returncode, 1, again.stderr[-3000:])
        self.assertIn(f"launch.downstream: error: --output={output}: "
                      f"{os.path.join(output, downstream.REPORT)} exists, and 3 more files this "
                      "would replace; pass --overwrite", again.stderr)
        with open(os.path.join(output, downstream.REPORT)) as f:
            self.assertEqual(f.read(), before)

    def test_missing_checkpoint_fails_before_rendering_the_data(self):
        root = tempfile.mkdtemp()
        data = os.path.join(root, "synth")
        result = subprocess.run(
            [sys.executable, "-m", "launch.downstream", "--flagfile=configs/downstream.cfg",
             f"--dataroot={data}", f"--checkpoint={root}/missing", f"--output={root}/out"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertIn(f"launch.downstream: error: --checkpoint={root}/missing: neither a run "
                      "directory nor a checkpoint prefix", result.stderr)
        self.assertFalse(os.path.exists(data))  # the flagfile's --make_synthetic did not run
