"""--profile_steps writes a TensorBoard profile of a run; top_ops reads its op table back."""
import glob
import os
import re
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tests.testdata import tiny_config, write_unaligned_folders
from tfattncut import config as config_lib
from tfattncut.training import profiling
from tfattncut.training.trainer import Trainer

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


class ProfilingTest(tf.test.TestCase):

    def test_a_run_writes_a_profile_whose_top_ops_are_the_step(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="profile_test_"), count=4)
        config = tiny_config(root, name="profiled", max_steps=3, profile_steps=(2, 3))
        trainer = Trainer(config)
        trainer.fit()
        logdir = os.path.join(config.run_dir, "logs")
        self.assertLen(glob.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb")), 1)
        self.assertFalse(trainer._profiler.active)

        ops = profiling.top_ops(logdir, count=5)
        self.assertLen(ops, 5)
        times = [o["self_time_us"] for o in ops]
        self.assertEqual(times, sorted(times, reverse=True))
        # Two profiled steps of CUT: its convolutions (and their gradients) ran twice each.
        self.assertTrue(any("Conv2D" in o["type"] and o["occurrences"] >= 2 for o in ops), ops)
        self.assertTrue(all(0.0 < o["self_time_percent"] <= 100.0 for o in ops), ops)
        table = profiling.format_top_ops(ops).splitlines()
        self.assertEqual(table[0], "| where | type | op | count | self time (ms) | % |")
        self.assertLen(table, 2 + 5)

    def test_a_folder_without_profile_names_the_flag(self):
        with self.assertRaisesRegex(FileNotFoundError, "--profile_steps=A,B"):
            profiling.profile_files(tempfile.mkdtemp())

    def test_a_damaged_profile_is_named(self):
        logdir = tempfile.mkdtemp()
        path = os.path.join(logdir, "plugins", "profile", "2024", "h.xplane.pb")
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(np.random.default_rng(0).bytes(100))
        with self.assertRaisesRegex(ValueError, f"^{re.escape(path)}: TensorFlow cannot read "
                                                r"this profile \(.+\); profile again .*"
                                                "--profile_steps=A,B"):
            profiling.top_ops(logdir)
        open(path, "wb").close()  # an empty file is a valid profile of nothing
        with self.assertRaisesRegex(ValueError, f"^{re.escape(path)}: the profile holds no "
                                                "TensorFlow ops; profile again"):
            profiling.top_ops(logdir)

    def test_a_window_past_the_last_step_is_refused_before_the_run_starts(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="profile_test_"), count=4)
        config = tiny_config(root, name="late", max_steps=3, profile_steps=(4, 5))
        with self.assertRaisesRegex(ValueError, r"^--profile_steps=4,5 starts after the run's "
                                                r"last step \(3\), so nothing would be "
                                                r"profiled: choose steps in 1..3$"):
            Trainer(config).fit()
        self.assertFalse(os.path.exists(config.run_dir))
        with self.assertLogs(level="WARNING") as logs:
            profiling.check_window((2, 5), 3)
            profiling.check_window((1, 2), 3, start_step=2)
        self.assertRegex(logs.output[0], "ends after the run's last step: profiling steps 2..3")
        self.assertRegex(logs.output[1], "resumes at step 3, past that window")

    def test_profile_steps_must_be_a_window(self):
        for steps in [(3,), (3, 2), (0, 2), (1, 2, 3)]:
            with self.assertRaisesRegex(ValueError, "--profile_steps"):
                config_lib.validate(tiny_config("/unused", profile_steps=steps))
        config_lib.validate(tiny_config("/unused", profile_steps=(2, 2)))
