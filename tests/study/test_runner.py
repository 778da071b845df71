"""A whole study end to end: 2 variants x 2 screen seeds and a confirmation seed at 32²,
8 steps each, scored with tiny scorers (slow: a few minutes)."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.python.framework import config as tf_config

from tests.study.fixtures import tiny_study
from tfattncut import machine
from tfattncut.study import plan, runner, scores
from tfattncut.study.report import write_report
from tfattncut.training.trainer import Trainer

pytestmark = pytest.mark.slow


class StudyEndToEndTest(tf.test.TestCase):

    def test_trains_scores_resumes_skips_and_reports(self):
        tf_config.enable_op_determinism()  # as launch.study runs (process_settings)
        self.addCleanup(tf_config.disable_op_determinism)
        settings, data, made = tiny_study(variants=("cut", "qsattn_global"),
                                          stages=("screen", "confirm"), confirm_seeds=(5,))
        study = runner.Study(settings, data, made)
        # No family to choose from: the confirmation's arms are known, and it follows the
        # screen of its candidates.
        self.assertEqual([r.name for r in study.planned()],
                         ["cut_seed0", "qsattn_global_seed0", "cut_seed1",
                          "qsattn_global_seed1", "cut_seed5", "qsattn_global_seed5"])
        # An interrupted run: cut_seed1 stopped at step 2 of 8; the study resumes it.
        interrupted = plan.run_config(settings, plan.Run("screen", "cut", 1))
        Trainer(interrupted.replace(max_steps=2)).fit()

        self.assertEqual(study.run(), 6)
        resumed = tf.train.get_checkpoint_state(
            os.path.join(settings.runs_dir, "cut_seed1", "checkpoints"))
        self.assertEndsWith(resumed.model_checkpoint_path, "ckpt-8")
        with open(scores.score_path(settings.study_dir, "qsattn_global_seed5")) as f:
            confirmed = json.load(f)
        self.assertEqual((confirmed["stage"], confirmed["steps"]), ("confirm", 8))
        self.assertEqual(confirmed["scorer"], made.fingerprint)
        self.assertEqual(confirmed["data_hash"], data.hash)
        self.assertEqual(sorted(confirmed["downstream_miou_per_seed"]), ["0", "1"])
        self.assertAllClose(confirmed["downstream_miou"],
                            np.mean(list(confirmed["downstream_miou_per_seed"].values())))
        for key in ("label_miou", "kid_seg", "fid_seg", "psnr", "ssim", "input_distance",
                    "step_time_s"):
            self.assertTrue(np.isfinite(confirmed[key]), key)
        self.assertCountEqual(confirmed["zero_entropy_fraction"], ["layer_12", "layer_16"])

        numbers = write_report(settings, made, data)
        self.assertEqual(sorted(numbers["stages"]), ["confirm", "screen"])
        self.assertEqual(numbers["stages"]["screen"]["variants"]["cut"]["seeds"], [0, 1])
        grid_path = os.path.join(settings.study_dir, "samples.png")
        self.assertEqual(Image.open(grid_path).size[1], 64 * 4)  # inputs, two methods, real B
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            self.assertIn("## Stage 2, the confirmation", f.read())

        # Everything scored: a rerun trains and scores nothing.
        self.assertEqual(runner.Study(settings, data, made).run(), 0)

        # Scored again from its run directory, a run reproduces its score file to the bit
        # (one machine, op determinism as launch.study enables it); a changed recorded score
        # is named.
        self.assertEqual(study.verify("qsattn_global_seed5"), {})
        path = scores.score_path(settings.study_dir, "qsattn_global_seed5")
        with open(path, "w") as f:
            json.dump({**confirmed, "label_miou": 0.5}, f)
        self.assertEqual(list(study.verify("qsattn_global_seed5")), ["label_miou"])
        with self.assertRaisesRegex(FileNotFoundError, "--verify=nothing_seed0: no "):
            study.verify("nothing_seed0")

        # On a machine without the run directories the grid is drawn from the saved rows:
        # the same pixels (PNG round trip of the same uint8 tiles, so exact).
        before = np.asarray(Image.open(grid_path))
        shutil.rmtree(settings.runs_dir)
        write_report(settings, made, data)
        self.assertAllEqual(np.asarray(Image.open(grid_path)), before)

        # Merged from a study run elsewhere: that folder's rows are in the grid too.
        elsewhere = os.path.join(self.get_temp_dir(), "elsewhere")
        for kind, suffix in (("scores", ".json"), ("samples", ".png")):
            os.makedirs(os.path.join(elsewhere, kind))
            shutil.move(os.path.join(settings.study_dir, kind, "qsattn_global_seed0" + suffix),
                        os.path.join(elsewhere, kind))
        write_report(settings, made, data, [elsewhere])
        self.assertAllEqual(np.asarray(Image.open(grid_path)), before)

        for kind, suffix in (("scores", ".json"), ("samples", ".png")):
            shutil.move(os.path.join(elsewhere, kind, "qsattn_global_seed0" + suffix),
                        os.path.join(settings.study_dir, kind))

        # CUT's seed 1 scored on another machine: this one trains it again, to pair with its
        # qsattn_global_seed1, and leaves CUT again on a third machine (which trained
        # qsattn_global_seed5) to that machine.
        for name, machine_trained in (("cut_seed1", "another CPU"),
                                      ("qsattn_global_seed5", "a third CPU")):
            path = scores.score_path(settings.study_dir, name)
            with open(path) as f:
                values = json.load(f)
            with open(path, "w") as f:
                json.dump({**values, "machine": machine_trained}, f)
        here = plan.machine_tag(machine.describe())
        self.assertEqual(study.run(), 1)
        with open(scores.score_path(settings.study_dir, f"cut_seed1_on_{here}")) as f:
            again = json.load(f)
        self.assertEqual((again["stage"], again["variant"], again["seed"]),
                         (plan.SAME_MACHINE, "cut", 1))
        self.assertEqual([r.name for r in study.planned() if r.machine],
                         ["cut_seed5_on_a_third_cpu"])
