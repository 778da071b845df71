"""launch.train as a real process: a SIGTERM saves the current step and the run resumes."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from tests.testdata import as_flags, tiny_config, write_unaligned_folders
from tfattncut.training.trainer import EXIT_PREEMPTED

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_training(config):
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "launch.train", *as_flags(config)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class TrainProcessTest(tf.test.TestCase):

    def test_sigterm_checkpoints_then_resume_finishes(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="train_cli_"), count=4)
        config = tiny_config(root, name="preempted", n_epochs=50, n_epochs_decay=0,
                             checkpoint_every=1000, resume=True)
        process = start_training(config)
        checkpoints = os.path.join(config.run_dir, "checkpoints")
        logs = os.path.join(config.run_dir, "logs")
        deadline = time.time() + 300
        # Wait until some steps have run (the first step writes the event file).
        while not (os.path.isdir(logs) and os.listdir(logs)) and time.time() < deadline:
            self.assertIsNone(process.poll(), "training exited early")
            time.sleep(0.5)
        time.sleep(3)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=300)
        self.assertEqual(process.returncode, EXIT_PREEMPTED, output[-2000:])
        self.assertIn("--resume", output)
        saved = tf.train.latest_checkpoint(checkpoints)
        self.assertIsNotNone(saved, output[-2000:])
        stopped_at = int(saved.rsplit("-", 1)[1])
        self.assertGreater(stopped_at, 0)

        finish = config.replace(max_steps=stopped_at + 2)
        process = start_training(finish)
        output, _ = process.communicate(timeout=300)
        self.assertEqual(process.returncode, 0, output[-2000:])
        self.assertIn(f"Resumed from {saved}", output)
        self.assertTrue(tf.train.latest_checkpoint(checkpoints).endswith(f"-{stopped_at + 2}"))
