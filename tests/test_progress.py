"""tfattncut.progress: plain lines in a log, a bar on a terminal, the whole loop's ETA."""
import io
import re

import tensorflow as tf

from tfattncut import progress as progress_lib

CONTROL = re.compile(r"[\b\r]|\x1b\[")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream, total=200, every=50, start=0, seconds_per_step=0.5):
    """Steps start+1..total at a fixed pace with losses equal to the step number."""
    clock = FakeClock()
    progress = progress_lib.Progress(total, every=every, stream=stream, start=start, clock=clock)
    progress.note("Epoch 1/4 (lr 0.0002)")
    for step in range(start + 1, total + 1):
        clock.now += seconds_per_step
        progress.update(step, {"G": float(step), "D": 1.0})
    return stream.getvalue()


class ProgressTest(tf.test.TestCase):

    def test_a_log_gets_plain_lines_every_n_steps_with_the_runs_eta(self):
        lines = run(io.StringIO()).splitlines()
        self.assertIsNone(CONTROL.search("\n".join(lines)))
        self.assertEqual(lines[0], "Epoch 1/4 (lr 0.0002)")
        self.assertEqual([line.split(":")[0] for line in lines[1:]],
                         ["step 50/200", "step 100/200", "step 150/200", "step 200/200"])
        # 2 steps/s measured from step 1 (the first step, which traces, is left out); the ETA
        # covers the 150 steps left of the whole loop (every epoch), not one epoch.
        self.assertEqual(lines[1], "step 50/200: 2 steps/s, ETA 0:01:15, G 25.5, D 1")
        # Losses are the mean over the steps since the previous line (51..100).
        self.assertIn("ETA 0:00:50, G 75.5,", lines[2])
        self.assertIn("ETA 0:00:00", lines[4])

    def test_a_resumed_loop_counts_from_where_it_resumed(self):
        lines = run(io.StringIO(), total=120, start=70).splitlines()
        self.assertEqual([line.split(":")[0] for line in lines[1:]],
                         ["step 100/120", "step 120/120"])
        self.assertIn("ETA 0:00:10", lines[1])  # 20 steps left at 2 steps/s

    def test_batches_that_cross_a_multiple_print_once(self):
        stream = io.StringIO()
        progress = progress_lib.Progress(None, unit="image", every=10, stream=stream,
                                         clock=FakeClock())
        for _ in range(5):
            progress.add(4)
        self.assertEqual([line.split(":")[0] for line in stream.getvalue().splitlines()],
                         ["image 12", "image 20"])  # total unknown: no ETA, no "/total"
        self.assertNotIn("ETA", stream.getvalue())

    def test_a_terminal_gets_one_bar_redrawn_in_place(self):
        output = run(Terminal())
        self.assertNotIn("\b", output)
        self.assertIn("\r[========================] step 200/200", output)
        self.assertTrue(output.endswith("\n"))
        self.assertEqual(output.count("\n"), 2)  # the note's line and the finished bar's

    def test_every_must_be_positive(self):
        with self.assertRaisesRegex(ValueError, "at least 1"):
            progress_lib.Progress(10, every=0)

    def test_format_duration(self):
        self.assertEqual(progress_lib.format_duration(3725.4), "1:02:05")
