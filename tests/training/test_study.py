"""The method study: its summary against hand computations, the merge of partial studies,
the event-file readers, and (end to end, small) training, scoring, resuming and skipping."""
import dataclasses
import json
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import stats

from tests.testdata import write_png
from tfattncut.data import synthetic
from tfattncut.evaluation import study_report
from tfattncut.training import study

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


def _scores(variant, seed, miou, label=0.5, fid=1.0):
    return {"variant": variant, "seed": seed, "model": "cut", "selector": "random",
            "steps": 8, "downstream_miou": miou, "label_miou": label, "fid_seg": fid,
            "kid_seg": 0.1, "step_time_s": 0.5, "images_per_s": 2.0,
            "zero_entropy_fraction": {}}


def _write(directory, name, scores):
    os.makedirs(os.path.join(directory, "scores"), exist_ok=True)
    with open(os.path.join(directory, "scores", name + ".json"), "w") as f:
        json.dump(scores, f)


def _settings(root, **kwargs):
    return study.StudySettings(study_dir=os.path.join(root, "results"),
                               runs_dir=os.path.join(root, "runs"), **kwargs)


class SummaryTest(tf.test.TestCase):

    def test_intervals_ranks_and_paired_differences(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut", "qsattn_global"), seeds=(0, 1, 2))
        cut, qs = [0.30, 0.34, 0.32], [0.40, 0.41, 0.45]
        for seed in range(3):
            _write(settings.study_dir, f"cut_seed{seed}", _scores("cut", seed, cut[seed]))
            _write(settings.study_dir, f"qsattn_global_seed{seed}",
                   _scores("qsattn_global", seed, qs[seed]))
        _write(settings.study_dir, "baseline_seed0",
               {"seed": 0, "raw_a_downstream_miou": 0.2, "b_downstream_miou": 0.6,
                "raw_test_a_label_miou": 0.1, "raw_test_a_fid_seg": 3.0})
        summary = study.write_report(settings)

        entry = summary["variants"]["cut"]["metrics"]["downstream_miou"]
        low, high = stats.t.interval(0.95, 2, loc=np.mean(cut), scale=stats.sem(cut))
        self.assertAllClose([entry["mean"], entry["low"], entry["high"]],
                            [np.mean(cut), low, high], rtol=1e-4)
        paired = summary["paired_vs_cut"]["qsattn_global"]["downstream_miou"]
        differences = np.subtract(qs, cut)
        low, high = stats.t.interval(0.95, 2, loc=differences.mean(),
                                     scale=stats.sem(differences))
        self.assertAllClose([paired["mean"], paired["low"], paired["high"]],
                            [differences.mean(), low, high], rtol=1e-4)
        self.assertEqual(paired["seeds"], [0, 1, 2])

        with open(os.path.join(settings.study_dir, "report.md")) as f:
            report = f.read()
        rows = [line for line in report.splitlines() if line.startswith("| 1 ") or
                line.startswith("| 2 ")]
        self.assertIn("qsattn_global", rows[0])  # ranked by downstream mIoU
        self.assertIn("cut", rows[1])
        self.assertIn("qsattn_global is better at this budget", report)
        # cut's interval [0.270, 0.370] and qsattn_global's [0.354, 0.486] overlap: the
        # ranking alone claims nothing (the paired difference is the sharper test).
        self.assertIn("Highest mean downstream mIoU: **qsattn_global** (0.4200 ± 0.0657); its "
                      "interval overlaps those of 1 of the 1 other method with two or more "
                      "seeds", report)
        # label mIoU is identical for both: a zero difference is no claim.
        self.assertIn("(label mIoU (FCN score)): +0.000", report)
        self.assertIn("segmenter trained on B (ceiling), mIoU on testB: 0.6000 (n=1)", report)
        with open(os.path.join(settings.study_dir, "report.json")) as f:
            self.assertLen(json.load(f)["runs"], 6)
        self.assertTrue(os.path.exists(os.path.join(settings.study_dir, "chart.png")))

    def test_segmenter_scores_are_paired_only_when_one_segmenter_scored_both_runs(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut", "qsattn_global"), seeds=(0, 1, 2))
        for seed in range(3):
            _write(settings.study_dir, f"cut_seed{seed}", _scores("cut", seed, 0.3, label=0.3))
            # Seed 2's qsattn_global run was scored by a retrained segmenter ("b2"); seed 1's
            # by the baseline's own, which its file names.
            identity = {0: {}, 1: {"segmenter": "a1"}, 2: {"segmenter": "b2"}}[seed]
            _write(settings.study_dir, f"qsattn_global_seed{seed}",
                   {**_scores("qsattn_global", seed, 0.4, label=0.2 + 0.1 * seed), **identity})
        _write(settings.study_dir, "baseline_seed1", {"seed": 1, "segmenter": "a1"})
        paired = study.write_report(settings)["paired_vs_cut"]["qsattn_global"]
        self.assertEqual(paired["downstream_miou"]["seeds"], [0, 1, 2])  # no segmenter
        for key in ("label_miou", "fid_seg"):
            self.assertEqual(paired[key]["seeds"], [0, 1], msg=key)
        self.assertAllClose(paired["label_miou"]["mean"], -0.05)  # (-0.1 + 0.0) / 2

    def test_top_sentence_says_when_the_leader_is_clear_and_when_it_has_one_seed(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut", "fastcut"), seeds=(0, 1, 2))
        for seed, (cut, fast) in enumerate([(0.30, 0.10), (0.31, 0.11), (0.30, 0.10)]):
            _write(settings.study_dir, f"cut_seed{seed}", _scores("cut", seed, cut))
            _write(settings.study_dir, f"fastcut_seed{seed}", _scores("fastcut", seed, fast))
        study.write_report(settings)
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            self.assertIn("its interval is clear of those of the 1 other method with", f.read())
        one = _settings(tempfile.mkdtemp(), variants=("cut",), seeds=(0,))
        _write(one.study_dir, "cut_seed0", _scores("cut", 0, 0.3))
        study.write_report(one)
        with open(os.path.join(one.study_dir, "report.md")) as f:
            self.assertIn("**cut** (0.3000 (n=1)); one seed so far, so no interval", f.read())

    def test_logged_series_are_averaged_over_seeds_at_common_steps(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("uag",), seeds=(0, 1))
        masks = ([[10, 0.5], [200, 0.01], [300, 0.02], [400, 0.03]],
                 [[10, 0.3], [200, 0.03], [400, 0.05]])  # seed 1 never logged step 300
        for seed, points in enumerate(masks):
            _write(settings.study_dir, f"uag_seed{seed}",
                   {**_scores("uag", seed, 0.1), "attention_mask": {"A_mean": points}})
        summary = study.write_report(settings)
        self.assertAllClose(summary["series"]["attention_mask"]["uag"]["A_mean"],
                            [[10, 0.4], [200, 0.02], [400, 0.04]])
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            report = f.read()
        self.assertIn("## Attention masks of uag", report)
        self.assertIn("- uag, A_mean: step 10: 0.400, step 200: 0.020, step 400: 0.040", report)
        self.assertNotIn("Zero-entropy", report)  # no run logged that series

    def test_status_cost_and_doc_page(self):
        root = tempfile.mkdtemp()
        doc = os.path.join(root, "docs", "study.md")
        settings = _settings(root, variants=("cut", "fastcut"), seeds=(0, 1),
                             command="--flagfile=configs/study.cfg", doc_path=doc)
        _write(settings.study_dir, "cut_seed0",
               {**_scores("cut", 0, 0.3), "wall_minutes": 30.0, "machine": "CPU X, 2 cores"})
        _write(settings.study_dir, "cut_seed1",
               {**_scores("cut", 1, 0.3), "wall_minutes": 60.0, "machine": "CPU X, 2 cores"})
        _write(settings.study_dir, "fastcut_seed0", _scores("fastcut", 0, 0.2))  # older file
        summary = study.write_report(settings)
        # step_hours: 3 runs x 8 steps x 0.5 s.
        self.assertEqual(summary["cost"], {"runs": 3, "planned": 4, "timed_runs": 2,
                                           "wall_hours": 1.5, "stepped_runs": 3,
                                           "step_hours": 12 / 3600,
                                           "machines": ["CPU X, 2 cores"]})
        with open(doc) as f:
            page = f.read()
        self.assertIn("python -m launch.study --flagfile=configs/study.cfg", page)
        self.assertIn("**3 of 4 runs scored** (the same command continues", page)
        # A command that trains a subset still reports every score in the folder, and counts
        # them into the study's size (it said "3 of 1 runs scored").
        subset = dataclasses.replace(settings, variants=("cut",), seeds=(0,))
        self.assertEqual(study.write_report(subset)["cost"]["planned"], 3)
        self.assertIn("Machine: CPU X, 2 cores. Wall time (training and scoring, baselines "
                      "excluded): 1.5 h over the 2 runs", page)
        self.assertIn("training alone, as each run's median step time times its steps: 0.0 h "
                      "over 3 runs.", page)
        self.assertIn("](../results/chart.png)", page)  # relative to the page
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            self.assertIn("](chart.png)", f.read())

    def test_readme_headline_block_is_replaced_and_the_rest_kept(self):
        root = tempfile.mkdtemp()
        readme = os.path.join(root, "README.md")
        settings = _settings(root, variants=("cut", "fastcut"), seeds=(0, 1),
                             doc_path=os.path.join(root, "docs", "study.md"), readme_path=readme)
        _write(settings.study_dir, "cut_seed0", _scores("cut", 0, 0.30, fid=4.0))
        _write(settings.study_dir, "cut_seed1", _scores("cut", 1, 0.34, fid=6.0))
        _write(settings.study_dir, "fastcut_seed0", _scores("fastcut", 0, 0.40, label=0.25))
        _write(settings.study_dir, "baseline_seed0",
               {"seed": 0, "raw_a_downstream_miou": 0.1, "b_downstream_miou": 0.6,
                "raw_test_a_label_miou": 0.2})
        with open(readme, "w") as f:
            f.write(f"# Title\n\n{study_report.HEADLINE_START}\nold table\n"
                    f"{study_report.HEADLINE_END}\n\nAfter.\n")
        study.write_report(settings)
        with open(readme) as f:
            text = f.read()
        self.assertTrue(text.startswith(f"# Title\n\n{study_report.HEADLINE_START}\nThe headline "
                                        "of the bundled study ([docs/study.md](docs/study.md)):"))
        paragraph = " ".join(text.split("\n\n")[1].splitlines()[1:])  # unwrapped
        self.assertIn("3 of 4 runs scored, in progress, 8 training steps each.", paragraph)
        self.assertTrue(text.endswith(f"{study_report.HEADLINE_END}\n\nAfter.\n"))
        self.assertNotIn("old table", text)
        self.assertIn("the floor) 0.100 (n=1), one trained on B (the ceiling) 0.600 (n=1); "
                      "the label mIoU of the untranslated testA 0.200 (n=1). Highest mean "
                      "downstream mIoU: **fastcut** (0.400 (n=1)); one seed so far", paragraph)
        half_width = stats.t.ppf(0.975, 1) * stats.sem([0.30, 0.34])  # by hand
        rows = [line for line in text.splitlines() if line.startswith("| ")][1:]  # not the header
        self.assertEqual(rows, [
            "| fastcut | 1 | 0.400 (n=1) | 0.250 (n=1) | 1.0 (n=1) |",
            f"| cut | 2 | 0.320 ± {half_width:.3f} | 0.500 ± 0.000 | 5.0 ± "
            f"{stats.t.ppf(0.975, 1) * stats.sem([4.0, 6.0]):.1f} |"])

    def test_readme_without_the_markers_is_refused_by_name(self):
        root = tempfile.mkdtemp()
        readme = os.path.join(root, "README.md")
        with open(readme, "w") as f:
            f.write("# Title\n")
        settings = _settings(root, variants=("cut",), seeds=(0,), readme_path=readme)
        _write(settings.study_dir, "cut_seed0", _scores("cut", 0, 0.3))
        with self.assertRaisesRegex(ValueError, f"--readme={readme}: no block to replace"):
            study.write_report(settings)
        with open(readme) as f:
            self.assertEqual(f.read(), "# Title\n")

    def test_report_only_merges_partial_studies_and_refuses_duplicates(self):
        root = tempfile.mkdtemp()
        first = _settings(os.path.join(root, "a"), variants=("cut",), seeds=(0, 1))
        second = os.path.join(root, "b", "results")
        _write(first.study_dir, "cut_seed0", _scores("cut", 0, 0.3))
        _write(second, "cut_seed1", _scores("cut", 1, 0.5))
        summary = study.write_report(first, merge_dirs=[second])
        self.assertEqual(summary["variants"]["cut"]["seeds"], [0, 1])
        self.assertAllClose(summary["variants"]["cut"]["metrics"]["downstream_miou"]["mean"],
                            0.4)
        _write(second, "cut_seed0", _scores("cut", 0, 0.3))
        with self.assertRaisesRegex(ValueError, "cut_seed0 was scored twice"):
            study.write_report(first, merge_dirs=[second])

    def test_failed_runs_are_listed_and_left_out_of_the_means(self):
        root = tempfile.mkdtemp()
        readme = os.path.join(root, "README.md")
        with open(readme, "w") as f:
            f.write(f"{study_report.HEADLINE_START}\n{study_report.HEADLINE_END}\n")
        settings = _settings(root, variants=("cut",), seeds=(0, 1, 2), readme_path=readme)
        _write(settings.study_dir, "cut_seed0", _scores("cut", 0, 0.3))
        _write(settings.study_dir, "cut_seed1", _scores("cut", 1, 0.5))
        _write(settings.study_dir, "cut_seed2",
               {"variant": "cut", "seed": 2, "model": "cut", "selector": "random", "steps": 8,
                "failed": "NonFiniteSteps: 3 consecutive steps"})
        summary = study.write_report(settings)
        self.assertEqual(summary["variants"]["cut"]["seeds"], [0, 1])
        self.assertAllClose(summary["variants"]["cut"]["metrics"]["downstream_miou"]["mean"], 0.4)
        self.assertEqual(summary["failed"], {"cut_seed2": "NonFiniteSteps: 3 consecutive steps"})
        self.assertEqual(summary["cost"]["runs"], 3)
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            self.assertIn("left out of the means (the score file says why; delete it to retry "
                          "the run):\n\n- cut_seed2: NonFiniteSteps: 3 consecutive steps", f.read())
        with open(readme) as f:
            self.assertIn("3 of 3 runs scored (1 failed: see the report), 8 training steps",
                          " ".join(f.read().split()))

    def test_a_diverged_run_is_recorded_and_the_study_goes_on(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut", "fastcut"), seeds=(0,),
                             train_flags=("--dataroot=" + root,))
        write_png(os.path.join(root, "trainA"), "a.png", np.zeros([8, 8, 3], np.uint8))
        runner = study.Study(settings)
        scored = []

        def train(config):
            if config.name == "cut_seed0":
                raise study.NonFiniteSteps("3 consecutive steps were skipped")
            return 8

        with mock.patch.object(runner, "baseline", return_value="segmenter"), \
                mock.patch.object(runner, "train", side_effect=train), \
                mock.patch.object(runner, "score",
                                  side_effect=lambda v, s, *_: scored.append(v) or
                                  {"downstream_miou": 0.1, "label_miou": 0.1, "fid_seg": 1.0}):
            runner.run()
        self.assertEqual(scored, ["fastcut"])
        with open(study.scores_path(settings.study_dir, "cut_seed0")) as f:
            failure = json.load(f)
        self.assertEqual(failure["failed"], "NonFiniteSteps: 3 consecutive steps were skipped")
        self.assertEqual((failure["variant"], failure["seed"]), ("cut", 0))

    def test_a_damaged_score_file_is_named(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut",), seeds=(0,))
        path = os.path.join(settings.study_dir, "scores", "cut_seed0.json")
        for text, why in (("{", "is not valid JSON"), ("[1]", "holds a JSON list"),
                          ('{"variant": "cut"}', "is not a study score file")):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            with self.assertRaisesRegex(ValueError, f"^{path} {why}.*; delete it and the "
                                                    "study scores that run again$"):
                study.write_report(settings)

    def test_a_study_dir_without_scores_is_refused_by_name(self):
        root = tempfile.mkdtemp()
        settings = _settings(root, variants=("cut",), seeds=(0,))
        with self.assertRaisesRegex(FileNotFoundError, f"--study_dir={settings.study_dir}, "
                                    f"{root}/other: no scores/\\*.json to report"):
            study.write_report(settings, merge_dirs=[os.path.join(root, "other")])
        self.assertFalse(os.path.exists(settings.study_dir))

    def test_unknown_preset_is_named(self):
        with self.assertRaisesRegex(ValueError, "--presets: unknown \\['cutt'\\]"):
            _settings("/tmp", variants=("cutt",))

    def test_seeds_a_run_refuses_and_repeats_are_named_before_anything_trains(self):
        # A negative seed used to train a minute of baseline segmenters, then fail in
        # keras.utils.set_random_seed.
        for seeds in ((0, -1), (2**32,)):
            with self.subTest(seeds=seeds), self.assertRaisesRegex(
                    ValueError, "--seeds: \\[.*\\] not in \\[0, 4294967295\\]"):
                _settings("/tmp", seeds=seeds)
        with self.assertRaisesRegex(ValueError, "--seeds: 0, 1, 0 names one twice"):
            _settings("/tmp", seeds=(0, 1, 0))
        with self.assertRaisesRegex(ValueError, "--presets: cut, cut names one twice"):
            _settings("/tmp", variants=("cut", "cut"))


def _scalar_event(tag, step, wall_time, value):
    summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
        tag=tag, tensor=tf.make_tensor_proto(np.float32(value)),
        metadata=tf.compat.v1.SummaryMetadata(
            plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")))])
    return tf.compat.v1.Event(wall_time=wall_time, step=step, summary=summary)


class BaselineSegmenterTest(tf.test.TestCase):
    """A seed's B segmenter is kept beside the scores, so another machine scores with it."""

    def test_kept_weights_score_on_another_machine_and_a_retrained_scorer_is_reported(self):
        root = tempfile.mkdtemp()
        data = os.path.join(root, "synth")
        synthetic.generate_dataset(data, size=64, num_train=4, num_test=2, progress=False)
        settings = _settings(root, variants=("cut",), seeds=(0,), segmenter_images=4,
                             segmenter_epochs=1, segmenter_width=4)
        saved, identity = study.Study(settings).baseline(0, data)
        path = study.scores_path(settings.study_dir, "baseline_seed0")
        kept = study.segmenter_weights_path(settings.study_dir, 0)
        with open(path) as f:
            first = json.load(f)
        self.assertEqual(first["segmenter"], identity)
        self.assertTrue(os.path.exists(kept))

        # Another machine (no run directories): the kept weights are the scorer, untrained.
        shutil.rmtree(settings.runs_dir)
        runner = study.Study(settings)
        with mock.patch.object(runner, "_segmenter", side_effect=AssertionError("trained")):
            self.assertEqual(runner.baseline(0, data), (saved, identity))
        with open(path) as f:
            self.assertEqual(json.load(f), first)

        def lost(baseline):
            """A baseline file from before the weights were kept, its segmenter gone."""
            shutil.rmtree(settings.runs_dir)
            os.remove(kept)
            _write(settings.study_dir, "baseline_seed0", baseline)
            return study.Study(settings).baseline(0, data)[1]

        legacy = {key: value for key, value in first.items() if key != "segmenter"}
        # Trained again, it scores testA as the file says: the file's own scorer.
        retrained = lost(legacy)
        with open(path) as f:
            self.assertEqual(json.load(f), {**legacy, "segmenter": retrained})
        # Scoring testA otherwise (trained on another CPU): its own reference is added.
        original = legacy["raw_test_a_label_miou"] + 0.1
        retrained = lost({**legacy, "raw_test_a_label_miou": original})
        with open(path) as f:
            baseline = json.load(f)
        self.assertNotIn("segmenter", baseline)
        self.assertEqual(baseline["raw_test_a_label_miou"], original)
        self.assertAllClose(baseline["retrained_segmenters"][retrained]["raw_test_a_label_miou"],
                            legacy["raw_test_a_label_miou"])
        _write(settings.study_dir, "cut_seed0", {**_scores("cut", 0, 0.3), "segmenter": retrained})
        summary = study.write_report(settings)
        self.assertEqual(summary["retrained_segmenters"][0]["runs"], ["cut_seed0"])
        with open(os.path.join(settings.study_dir, "report.md")) as f:
            self.assertIn(f"- seed 0: cut_seed0; untranslated testA label mIoU "
                          f"{legacy['raw_test_a_label_miou']:.4f} (original scorer: "
                          f"{original:.4f})", f.read())


class EventsTest(tf.test.TestCase):

    def test_median_step_time_and_series(self):
        logdir = tempfile.mkdtemp()
        # Steps 1, 11, 21, 31: 10 steps take 2 s, except a 60 s resume gap; the median
        # ignores the gap. Written as raw events, so the wall times are exact.
        walls = {1: 100.0, 11: 102.0, 21: 162.0, 31: 164.0}
        with tf.io.TFRecordWriter(os.path.join(logdir, "events.out.tfevents.1")) as writer:
            for step, wall in walls.items():
                writer.write(_scalar_event("loss/G", step, wall, 1.0).SerializeToString())
                writer.write(_scalar_event("selection/zero_entropy_fraction/layer_16", step,
                                           wall, step / 100).SerializeToString())
        self.assertAllClose(study.median_step_time(logdir), 0.2)
        series = study.scalar_series(logdir, "selection/zero_entropy_fraction/")
        self.assertEqual(list(series), ["layer_16"])
        self.assertAllClose(series["layer_16"], [[s, s / 100] for s in walls], rtol=1e-6)


    def test_training_minutes_sum_each_sittings_span(self):
        logdir = tempfile.mkdtemp()
        # Two sittings: 100-160 s and 1000-1030 s; the gap between them is not training. The
        # second file was cut short by a kill after its last whole record.
        for name, walls in (("1", (100.0, 130.0, 160.0)), ("2", (1000.0, 1030.0))):
            path = os.path.join(logdir, f"events.out.tfevents.{name}")
            with tf.io.TFRecordWriter(path) as writer:
                for step, wall in enumerate(walls):
                    writer.write(_scalar_event("loss/G", step, wall, 1.0).SerializeToString())
        with open(path, "ab") as f:
            f.write(b"\x10\x00\x00")
        self.assertAllClose(study.training_minutes(logdir), 1.5)
        self.assertEqual(study.training_minutes(tempfile.mkdtemp()), 0)


class StudyEndToEndTest(tf.test.TestCase):
    """2 presets x 2 seeds at 32², 8 steps each (slow: about two minutes)."""

    def test_trains_scores_resumes_and_skips(self):
        root = tempfile.mkdtemp()
        data = os.path.join(root, "synth")
        synthetic.generate_dataset(data, size=64, num_train=4, num_test=2, progress=False)
        flags = ("--dataroot=" + data, "--load_size=32", "--crop_size=32",
                 "--netG=resnet_6blocks", "--ngf=4", "--ndf=4", "--netF_nc=8",
                 "--num_patches=8", "--n_epochs=1", "--n_epochs_decay=1",
                 "--summary_every=2", "--image_every=4", "--checkpoint_every=2")
        settings = _settings(root, variants=("cut", "qsattn_global"), seeds=(0, 1),
                             train_flags=flags, segmenter_images=4, segmenter_epochs=1,
                             segmenter_width=4, grid_images=2)
        runner = study.Study(settings)
        # An interrupted run: cut_seed1 stopped at step 2 of 8; the study resumes it.
        partial = study.run_config(settings, "cut", 1).replace(max_steps=2)
        self.assertEqual(runner.train(partial), 2)

        runner.run()
        summary = study.write_report(settings)
        self.assertEqual(sorted(summary["variants"]), ["cut", "qsattn_global"])
        for variant in ("cut", "qsattn_global"):
            entry = summary["variants"][variant]
            self.assertEqual(entry["seeds"], [0, 1])
            for key in ("downstream_miou", "label_miou", "fid_seg", "kid_seg", "step_time_s"):
                self.assertEqual(entry["metrics"][key]["n"], 2)
                self.assertTrue(np.isfinite(entry["metrics"][key]["mean"]))
        resumed = tf.train.get_checkpoint_state(
            os.path.join(settings.runs_dir, "cut_seed1", "checkpoints"))
        self.assertEndsWith(resumed.model_checkpoint_path, "ckpt-8")
        qs_scores = summary["series"]["zero_entropy_fraction"]["qsattn_global"]
        self.assertCountEqual(qs_scores, ["layer_12", "layer_16"])
        grid = Image.open(os.path.join(settings.study_dir, "samples.png"))
        self.assertEqual(grid.size[1], 64 * 4)  # inputs, two methods, real B
        self.assertCountEqual(os.listdir(os.path.join(settings.study_dir, "samples")),
                              ["cut_seed0.png", "qsattn_global_seed0.png"])
        self.assertTrue(os.path.isdir(os.path.join(settings.runs_dir, "cut_seed0", "logs")))

        # Everything scored: a rerun trains and scores nothing.
        stamps = {name: os.path.getmtime(os.path.join(settings.study_dir, "scores", name))
                  for name in os.listdir(os.path.join(settings.study_dir, "scores"))}
        study.Study(settings).run()
        self.assertEqual(stamps, {
            name: os.path.getmtime(os.path.join(settings.study_dir, "scores", name))
            for name in os.listdir(os.path.join(settings.study_dir, "scores"))})

        # On a machine without the run directories the grid is drawn from the saved rows:
        # the same pixels (PNG round trip of the same uint8 tiles, so exact).
        before = np.asarray(grid)
        for name in ("cut_seed0", "cut_seed1", "qsattn_global_seed0", "qsattn_global_seed1"):
            shutil.rmtree(os.path.join(settings.runs_dir, name))
        study.write_report(settings)
        self.assertAllEqual(
            np.asarray(Image.open(os.path.join(settings.study_dir, "samples.png"))), before)
