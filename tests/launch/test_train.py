"""launch.train as a real process: a SIGTERM saves the step reached and the resumed run
matches an uninterrupted one; so does a run SIGKILLed (losing at most --checkpoint_every
steps); a damaged newest checkpoint falls back to the newest intact one; user errors are one
line."""
import collections
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import tensorflow as tf

from tests.test_checkpoints import truncate
from tests.testdata import as_flags, tiny_config, write_unaligned_folders
from tfattncut import checkpoints
from tfattncut.training.trainer import EXIT_PREEMPTED, Trainer

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 300


def start_training(config):
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "launch.train", *as_flags(config)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoint_step(config):
    """The step of the run's newest complete checkpoint (0: none yet)."""
    latest = tf.train.latest_checkpoint(os.path.join(config.run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def finish(config):
    """Runs launch.train on `config` to its end; returns (exit status, output)."""
    process = start_training(config)
    output, _ = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, output


def event_files(config):
    return set(glob.glob(os.path.join(config.run_dir, "logs", "events.out.tfevents.*")))


def logged_losses(path):
    """{step: {tag: value}} of the loss/* scalars of one event file; a file cut short by
    SIGKILL ends at its last whole record."""
    losses = collections.defaultdict(dict)
    try:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("loss/"):
                    losses[event.step][value.tag] = float(tf.make_ndarray(value.tensor))
    except tf.errors.DataLossError:
        pass  # the killed process's last record was half written
    return losses


def steps_printed(output):
    """The last step launch.train's progress lines reported ("step N/TOTAL: ...")."""
    steps = [int(m[1]) for m in re.finditer(r"(?<![\w.])step (\d+)/\d+", output)]
    return steps[-1] if steps else 0


class TrainProcessTest(tf.test.TestCase):

    def wait_until(self, process, condition, what):
        deadline = time.time() + TIMEOUT_S
        while not condition():
            self.assertIsNone(process.poll(), f"training exited before {what}")
            self.assertLess(time.time(), deadline, f"no {what} after {TIMEOUT_S} s")
            time.sleep(0.02)

    def assert_losses_match(self, got, want, complete=True):
        """{step: {tag: loss}} of a run equal to those of the uninterrupted run; complete=False
        allows a killed run's last step to have been logged only in part."""
        for step, losses in got.items():
            if complete:
                self.assertEqual(losses.keys(), want[step].keys(), f"step {step}")
            self.assertContainsSubset(losses.keys(), want[step].keys(), f"step {step}")
            for tag, value in losses.items():
                self.assertAllClose(value, want[step][tag], rtol=1e-5,
                                    msg=f"{tag} at step {step}")

    def test_sigterm_checkpoints_the_step_reached_and_resumes_as_if_uninterrupted(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="train_cli_"), count=4)
        config = tiny_config(root, name="preempted", n_epochs=50, n_epochs_decay=0,
                             checkpoint_every=1000, image_every=1000, resume=True)
        process = start_training(config)
        # Wait until some steps have run (the first step writes the event file).
        self.wait_until(process, lambda: event_files(config), "event file")
        time.sleep(3)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=TIMEOUT_S)
        self.assertEqual(process.returncode, EXIT_PREEMPTED, output[-2000:])
        self.assertIn("--resume", output)
        stopped_at = checkpoint_step(config)
        self.assertGreater(stopped_at, 0, output[-2000:])
        self.assertIn(f"SIGTERM at step {stopped_at}: saved", output)
        (preempted_events,) = event_files(config)
        before = logged_losses(preempted_events)
        # The checkpoint holds the last step that ran: none ran after it, none is missing.
        self.assertEqual(sorted(before), list(range(1, stopped_at + 1)))

        end = stopped_at + 2
        status, output = finish(config.replace(max_steps=end))
        self.assertEqual(status, 0, output[-2000:])
        self.assertIn(f"Resumed from {os.path.join(config.run_dir, 'checkpoints')}/ckpt-"
                      f"{stopped_at} at step {stopped_at}", output)
        self.assertEqual(checkpoint_step(config), end)
        (resumed_events,) = event_files(config) - {preempted_events}
        after = logged_losses(resumed_events)
        self.assertEqual(sorted(after), [stopped_at + 1, end])

        straight = config.replace(name="straight", max_steps=end)
        status, output = finish(straight)
        self.assertEqual(status, 0, output[-2000:])
        (straight_events,) = event_files(straight)
        want = logged_losses(straight_events)
        self.assert_losses_match(before, want)
        self.assert_losses_match(after, want)

    def test_damaged_newest_checkpoint_resumes_from_the_newest_intact_one(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="train_damaged_"), count=4)
        config = tiny_config(root, name="damaged", checkpoint_every=1, max_steps=3,
                             image_every=1000, resume=True)
        Trainer(config).fit()
        folder = os.path.join(config.run_dir, "checkpoints")
        cut = truncate(os.path.join(folder, "ckpt-3.data-00000-of-00001"))
        shutil.rmtree(os.path.join(root, "testA"))  # so the summary explains the missing sheet
        status, output = finish(config.replace(max_steps=4))
        self.assertEqual(status, 0, output[-2000:])
        self.assertIn(f"Sample images:    none: no test images of the source domain under {root}",
                      output)
        self.assertRegex(output, f"Checkpoint {folder}/ckpt-3 is damaged.*Read less bytes")
        self.assertIn(f"Resumed from {folder}/ckpt-2 at step 2", output)
        self.assertEqual(checkpoint_step(config), 4)
        # The resumed run saved step 3 again; the damaged files were copied aside first.
        self.assertIsNone(checkpoints.damage(os.path.join(folder, "ckpt-3")))
        with open(os.path.join(folder, checkpoints.DAMAGED_FOLDER,
                               "ckpt-3.data-00000-of-00001"), "rb") as f:
            self.assertEqual(f.read(), cut)

    def test_user_errors_are_one_line(self):
        root = tempfile.mkdtemp(prefix="train_errors_")
        a_file = os.path.join(root, "a_file")
        open(a_file, "w").close()
        for flag, error in (
                ("--lr=-0.1", "FATAL Flags parsing error: flag --lr=-0.1: must be > 0"),
                (f"--dataroot={root}/missing",
                 f"launch.train: error: Image folder {root}/missing/trainA does not exist"),
                (f"--checkpoints_dir={a_file}/runs",
                 f"launch.train: error: --checkpoints_dir={a_file}/runs: {a_file} exists and "
                 "is not a folder")):
            config = tiny_config(root, name="errors")
            result = subprocess.run(
                [sys.executable, "-m", "launch.train", *as_flags(config), flag], cwd=REPO,
                capture_output=True, text=True, timeout=TIMEOUT_S,
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            self.assertEqual(result.returncode, 1, result.stderr[-2000:])
            self.assertNotIn("Traceback", result.stderr)
            self.assertIn(error, result.stderr)

    def test_sigkill_then_resume_matches_an_uninterrupted_run(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="train_kill_"), count=4)
        total = 24  # 4 images, batch 1, 5 + 1 epochs
        config = tiny_config(root, name="killed", n_epochs=5, n_epochs_decay=1, seed=3,
                             checkpoint_every=2, image_every=1000, log_every=1, resume=True)
        straight = config.replace(name="straight")
        status, output = finish(straight)
        self.assertEqual(status, 0, output[-2000:])
        (straight_events,) = event_files(straight)
        want = logged_losses(straight_events)
        self.assertEqual(sorted(want), list(range(1, total + 1)))

        # Kill at a random step after a random checkpoint, well before the end.
        rng = random.Random(0)
        after_checkpoint, delay_s = rng.choice([2, 4, 6, 8]), rng.uniform(0.0, 0.3)
        process = start_training(config)
        self.wait_until(process, lambda: checkpoint_step(config) >= after_checkpoint,
                        f"checkpoint {after_checkpoint}")
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=TIMEOUT_S)
        self.assertEqual(process.returncode, -signal.SIGKILL, "finished before the kill")
        killed_events = event_files(config)
        saved = checkpoint_step(config)
        done = steps_printed(output)
        self.assertGreaterEqual(saved, after_checkpoint)
        self.assertBetween(done - saved, 0, config.checkpoint_every, output[-2000:])

        status, output = finish(config)
        self.assertEqual(status, 0, output[-2000:])
        self.assertIn(f"ckpt-{saved} at step {saved}", output)
        self.assertIn(f"to step {total} ", output)
        self.assertEqual(checkpoint_step(config), total)
        (resumed_events,) = event_files(config) - killed_events
        resumed = logged_losses(resumed_events)
        self.assertEqual(sorted(resumed), list(range(saved + 1, total + 1)))
        before_kill = {}
        for path in killed_events:
            before_kill.update(logged_losses(path))
        self.assertNotEmpty(before_kill)
        # The kill may cut the last step's summaries short: a subset, but never more.
        self.assert_losses_match(before_kill, want, complete=False)
        self.assert_losses_match(resumed, want)
