"""Metric reports between folders, of a checkpoint, and of a translator (random backbone);
mistakes refused before any work."""
import json
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import scipy.linalg
import tensorflow as tf
from PIL import Image

from tests.evaluation import segmentation_data
from tests.metrics.test_fidelity import _numpy_ssim
from tests.testdata import tiny_config, write_png, write_tiny_run, write_unaligned_folders
from tfattncut.data import image_files
from tfattncut import pixels
from tfattncut.evaluation import evaluate, reports
from tfattncut.inference import translate
from tfattncut.metrics import inception


def _features(backbone, folder):
    batch = tf.stack([image_files.load_image(p) for p in image_files.list_images(folder)])
    return np.asarray(backbone(batch)[0], np.float64)


def _scipy_fid(a, b):
    covmean = scipy.linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False)).real
    return (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(np.cov(a, rowvar=False))
            + np.trace(np.cov(b, rowvar=False)) - 2 * np.trace(covmean))


def _scalar_events(logdir):
    values = {}
    for path in tf.io.gfile.glob(os.path.join(logdir, "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values[value.tag] = float(tf.make_ndarray(value.tensor)) \
                    if value.tag != "eval/inception" else value.tensor.string_val[0].decode()
    return values


def _no_work(what):
    """A patch for `what` that fails the test if the expensive work starts."""
    return mock.patch.object(*what, side_effect=AssertionError(f"{what[1]} ran first"))


_TRANSLATING = (evaluate.translation, "translate_images")
_COMPUTING = (evaluate, "compute_metrics")


class EvaluateTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = write_unaligned_folders(tempfile.mkdtemp(), count=10, size=64)
        cls.test_a = os.path.join(cls.root, "testA")
        cls.test_b = os.path.join(cls.root, "testB")

    def test_folder_with_itself_and_the_report_says_random(self):
        output = os.path.join(self.root, "self", "report.json")
        report, written = evaluate.run(fake=self.test_a, real=self.test_a, inception_spec="random",
                                       metrics=["fid", "is"], output=output, batch_size=4)
        self.assertEqual(written, output)
        self.assertNear(report["metrics"]["fid"], 0.0, 1e-6)
        # 10 images in 10 splits: each split's p(y) is its image's p(y|x), so KL = 0, IS = 1.
        self.assertAllClose(report["metrics"]["is"], 1.0)
        self.assertEqual(report["inception"]["backbone"], "random")
        self.assertFalse(report["inception"]["comparable"])
        self.assertRegex(report["inception"]["note"], "SMOKE TEST ONLY.*not comparable")
        self.assertIn(report["inception"]["note"], reports.format_table(report))
        with open(output) as f:
            self.assertEqual(json.load(f), report)

    def test_fid_and_swd_match_direct_computations(self):
        report = evaluate.evaluate_folders(self.test_b, self.test_a, metrics=("fid", "swd"),
                                           backbone="random", batch_size=3)
        backbone = inception.load_backbone("random")
        expected = _scipy_fid(_features(backbone, self.test_a), _features(backbone, self.test_b))
        self.assertAllClose(report["metrics"]["fid"], expected, rtol=1e-5)
        # 64 px images: SWD levels 64, 32, 16, and their mean.
        levels = [report["metrics"][f"swd_{r}"] for r in (64, 32, 16)]
        self.assertAllClose(report["metrics"]["swd"], np.mean(levels))
        self.assertEqual(report["inputs"]["num_fake"], 10)

    def test_paired_psnr_and_ssim(self):
        rng = np.random.default_rng(1)
        fake_dir, paired_dir = (os.path.join(self.root, n) for n in ("fake", "paired"))
        os.makedirs(fake_dir)
        os.makedirs(paired_dir)
        psnrs, pairs = [], []
        for i in range(3):
            target = rng.integers(20, 236, (32, 32, 3), dtype=np.uint8)
            fake = (target.astype(int) + rng.integers(-20, 21, target.shape)).astype(np.uint8)
            Image.fromarray(fake).save(os.path.join(fake_dir, f"{i}.png"))
            Image.fromarray(target).save(os.path.join(paired_dir, f"{i}.bmp"))
            mse = np.mean(((fake.astype(float) - target) / 255.0) ** 2)
            psnrs.append(10 * np.log10(1.0 / mse))
            pairs.append((fake, target))
        Image.fromarray(pairs[0][1]).save(os.path.join(paired_dir, "unpaired_extra.png"))
        report = evaluate.evaluate_folders(fake_dir, paired=paired_dir, batch_size=2)
        self.assertEqual(sorted(report["metrics"]), ["psnr", "ssim"])
        self.assertAllClose(report["metrics"]["psnr"], np.mean(psnrs), rtol=1e-5)
        fakes, targets = (np.stack(x) / 127.5 - 1.0 for x in zip(*pairs))
        # The NumPy oracle in float64 against the report's float32 filters; SSIM is O(1): 1e-4.
        self.assertAllClose(report["metrics"]["ssim"], np.mean(_numpy_ssim(fakes, targets)),
                            rtol=1e-4, atol=1e-4)
        self.assertIsNone(report["inception"]["backbone"])
        self.assertIn("No Inception backbone", reports.format_table(report))

    def test_checkpoint_is_translated_next_to_the_report(self):
        config = tiny_config(tempfile.mkdtemp(), name="run")
        generator = write_tiny_run(config)
        output = os.path.join(self.root, "ckpt_eval", "eval.json")
        logdir = os.path.join(self.root, "ckpt_logs")
        report, _ = evaluate.run(checkpoint=config.run_dir, dataroot=self.root,
                                 metrics=["fid", "kid"], inception_spec="random", output=output,
                                 logdir=logdir)
        translated = os.path.join(self.root, "ckpt_eval", "eval_translated")
        self.assertEqual(report["inputs"]["fake"], translated)
        self.assertEqual(report["inputs"]["real"], self.test_b)
        # run() is evaluate_translator plus the checkpoint's name.
        self.assertEqual((report["inputs"]["checkpoint"], report["inputs"]["dataroot"],
                          report["inputs"]["direction"]), (config.run_dir, self.root, "AtoB"))
        for path in image_files.list_images(self.test_a)[:2]:
            expected = pixels.to_uint8(translate(generator, image_files.load_image(path)[None])[0])
            written = np.asarray(Image.open(os.path.join(translated, os.path.basename(path))))
            # The files come from a tf.function, `expected` from eager calls: other fused
            # kernels, so a value at a rounding boundary may land one level off.
            self.assertAllClose(written.astype(np.int16), np.int16(expected), rtol=0, atol=1)
        logged = _scalar_events(logdir)
        self.assertAllClose(logged["eval/fid"], report["metrics"]["fid"])
        self.assertAllClose(logged["eval/kid"], report["metrics"]["kid"])
        self.assertIn("random", logged["eval/inception"])

    def test_evaluate_translator_for_the_trainer(self):
        generator = write_tiny_run(tiny_config(tempfile.mkdtemp(), name="run"))
        kept = os.path.join(self.root, "kept")
        report = evaluate.evaluate_translator(generator, self.root, "AtoB", metrics=("fid",),
                                              backbone="random", crop_size=32, output_dir=kept,
                                              epoch=3)
        self.assertEqual(report["epoch"], 3)
        self.assertEqual(Image.open(os.path.join(kept, "000.png")).size, (32, 32))
        again = evaluate.evaluate_folders(kept, self.test_b, metrics=("fid",), backbone="random",
                                          image_size=32)
        self.assertAllClose(report["metrics"]["fid"], again["metrics"]["fid"])
        temporary = evaluate.evaluate_translator(generator, self.root, "AtoB", metrics=("fid",),
                                                 backbone=inception.load_backbone("random"),
                                                 crop_size=32)
        self.assertAllClose(temporary["metrics"]["fid"], report["metrics"]["fid"])
        self.assertIsNone(temporary["inputs"]["fake"])

    def test_report_never_replaces_an_input_or_any_other_file(self):
        folder = write_unaligned_folders(tempfile.mkdtemp(), count=2, size=16)
        test_a = os.path.join(folder, "testA")
        image = image_files.list_images(test_a)[0]
        notes = os.path.join(folder, "notes.json")
        with open(notes, "w") as f:
            json.dump({"metrics": "mine"}, f)
        for output in (image, notes):
            with open(output, "rb") as f:
                before = f.read()
            with self.assertRaisesRegex(FileExistsError, f"--output={output} exists and is not "
                                        "an evaluation report"):
                evaluate.run(fake=test_a, real=test_a, metrics=["swd"], output=output)
            with open(output, "rb") as f:
                self.assertEqual(f.read(), before)
        with self.assertRaisesRegex(IsADirectoryError, f"--output={test_a} is a folder"):
            evaluate.run(fake=test_a, real=test_a, metrics=["swd"], output=test_a)
        report_path = os.path.join(folder, "report.json")
        for _ in range(2):  # an earlier report is replaced
            report, _ = evaluate.run(fake=test_a, real=test_a, metrics=["swd"],
                                     output=report_path)
        with open(report_path) as f:
            self.assertEqual(json.load(f), report)

    def test_errors_name_the_missing_input(self):
        with self.assertRaisesRegex(ValueError, "fid,swd compare with real images.*--real"):
            evaluate.check_metrics(("fid", "swd", "is"), False, False, True)
        with self.assertRaisesRegex(ValueError, "kid compares with real images"):
            evaluate.check_metrics(("kid",), False, False, True)
        with self.assertRaisesRegex(ValueError, "psnr needs the paired target.*--paired"):
            evaluate.check_metrics(("psnr",), True, False, True)
        with self.assertRaisesRegex(ValueError, "psnr,ssim need the paired target"):
            evaluate.check_metrics(("psnr", "ssim"), True, False, True)
        with self.assertRaisesRegex(ValueError, "kid needs an Inception backbone.*--inception"):
            evaluate.check_metrics(("kid",), True, False, False)
        with self.assertRaisesRegex(ValueError, "unknown \\['lpips'\\]"):
            evaluate.check_metrics(("lpips",), True, True, True)
        with self.assertRaisesRegex(ValueError, "--segmenter and --labels go together"):
            evaluate.run(fake=self.test_a, labels=self.test_a)

    def test_training_evaluation_errors_name_trainings_flags(self):
        root = write_unaligned_folders(tempfile.mkdtemp(), count=2, size=16)
        config = tiny_config(root, name="run", eval_every_epochs=1, inception="random")
        evaluate.check_training_evaluation(config.replace(eval_metrics=("fid", "swd")))
        with self.assertRaisesRegex(ValueError, r"^--eval_metrics=psnr: psnr needs the paired "
                                                r"target .*; add them to --dataroot \(training "
                                                r"scores .*testA_as_B of --dataroot\)$"):
            evaluate.check_training_evaluation(config.replace(eval_metrics=("psnr",)))
        with self.assertRaisesRegex(ValueError, r"^--eval_metrics: unknown \['kdi'\]"):
            evaluate.check_training_evaluation(config.replace(eval_metrics=("kdi",)))
        shutil.rmtree(os.path.join(root, "testA"))
        with self.assertRaisesRegex(ValueError, f"^--eval_every_epochs=1 translates the test "
                                                f"images of {root}/testA, which does not exist"):
            evaluate.check_training_evaluation(config)

    def test_a_later_data_set_scores_only_its_own_translations(self):
        first = write_unaligned_folders(tempfile.mkdtemp(), count=3, size=32)
        second = write_unaligned_folders(tempfile.mkdtemp(), count=1, size=32, seed=1)
        config = tiny_config(tempfile.mkdtemp(), name="run")
        write_tiny_run(config)
        output = os.path.join(tempfile.mkdtemp(), "eval.json")
        translated = os.path.join(os.path.dirname(output), "eval_translated")
        evaluate.run(checkpoint=config.run_dir, dataroot=first, metrics=["swd"], output=output)
        report, _ = evaluate.run(checkpoint=config.run_dir, dataroot=second, metrics=["swd"],
                                 output=output)
        self.assertEqual(report["inputs"]["num_fake"], 1)
        # The first call's other translations are not deleted, only left out of the score.
        self.assertLen(image_files.list_images(translated), 3)
        alone = os.path.join(tempfile.mkdtemp(), "alone")
        os.makedirs(alone)
        shutil.copy(os.path.join(translated, "000.png"), alone)
        expected = evaluate.evaluate_folders(alone, os.path.join(second, "testB"),
                                             metrics=["swd"])
        self.assertAllClose(report["metrics"]["swd"], expected["metrics"]["swd"])
        with open(output) as f:
            self.assertEqual(json.load(f)["inputs"]["num_fake"], 1)

    def test_backbone_and_segmenter_are_loaded_before_any_work(self):
        missing = os.path.join(tempfile.mkdtemp(), "missing")
        with _no_work(_COMPUTING):
            with self.assertRaisesRegex(FileNotFoundError, "fid2015:PATH"):
                evaluate.run(fake=self.test_a, real=self.test_b, metrics=["fid"],
                             inception_spec=f"fid2015:{missing}.pb")
            with self.assertRaisesRegex(FileNotFoundError, f"--segmenter={missing}"):
                evaluate.run(fake=self.test_a, real=self.test_b, metrics=["swd"],
                             segmenter=missing, labels=self.test_a)
        config = tiny_config(tempfile.mkdtemp(), name="run")
        write_tiny_run(config)
        with _no_work(_TRANSLATING):
            with self.assertRaisesRegex(FileNotFoundError, "keras:PATH"):
                evaluate.run(checkpoint=config.run_dir, dataroot=self.root, metrics=["kid"],
                             inception_spec=f"keras:{missing}.h5",
                             output=os.path.join(missing, "r.json"))
        self.assertFalse(os.path.exists(missing))

    def test_label_maps_are_matched_before_any_work(self):
        root = tempfile.mkdtemp()
        image_dir, _ = segmentation_data.write_scenes(root)
        saved = segmentation_data.export_colour_segmenter(root)
        labels = os.path.join(root, "other_labels")
        write_png(labels, "scene0.png", np.zeros([4, 6, 3], np.uint8))
        with _no_work(_COMPUTING), self.assertRaisesRegex(
                FileNotFoundError, f"--labels={labels} has no file for 1 of the 2 images"):
            evaluate.run(fake=image_dir, paired=image_dir, metrics=["psnr"], segmenter=saved,
                         labels=labels)

    def test_ssim_refuses_images_smaller_than_its_window(self):
        folder = tempfile.mkdtemp()
        rng = np.random.default_rng(3)
        for name in ("fake", "target"):
            write_png(os.path.join(folder, name), "0.png",
                      rng.integers(0, 256, [8, 8, 3], dtype=np.uint8))
        fake, target = (os.path.join(folder, name) for name in ("fake", "target"))
        with self.assertRaisesRegex(ValueError, "SSIM compares 11x11 windows, but batch 0 has "
                                                "8x8 images.*--metrics=psnr.*--image_size=11"):
            evaluate.run(fake=fake, paired=target)
        report, _ = evaluate.run(fake=fake, paired=target, metrics=["psnr"])
        self.assertEqual(sorted(report["metrics"]), ["psnr"])

    def test_a_set_of_one_image_is_named_before_any_work(self):
        one = os.path.dirname(write_png(os.path.join(tempfile.mkdtemp(), "one"), "0.png",
                                        np.zeros([16, 16, 3], np.uint8)))
        with _no_work(_COMPUTING):
            for fake, real, flag in ((one, self.test_b, "--fake"), (self.test_a, one, "--real")):
                with self.subTest(flag), self.assertRaisesRegex(
                        ValueError, f"^{flag}={one}: FID and KID need at least 2 images per "
                                    "set; it has 1$"):
                    evaluate.run(fake=fake, real=real, metrics=["fid", "kid"],
                                 inception_spec="random")

    def test_paths_below_a_file_are_refused_before_any_work(self):
        blocker = os.path.join(tempfile.mkdtemp(), "notes.txt")
        with open(blocker, "w") as f:
            f.write("mine")
        below = os.path.join(blocker, "r.json")
        with _no_work(_COMPUTING):
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"--output=.*: {blocker} exists and is not a folder"):
                evaluate.run(fake=self.test_a, real=self.test_b, metrics=["swd"], output=below)
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"--logdir=.*: {blocker} exists and is not a folder"):
                evaluate.run(fake=self.test_a, real=self.test_b, metrics=["swd"],
                             logdir=blocker)
        config = tiny_config(tempfile.mkdtemp(), name="run")
        write_tiny_run(config)
        with _no_work(_TRANSLATING), self.assertRaisesRegex(NotADirectoryError, "--output"):
            evaluate.run(checkpoint=config.run_dir, dataroot=self.root, metrics=["swd"],
                         output=below)
        with open(blocker) as f:
            self.assertEqual(f.read(), "mine")

    def test_trainings_epoch_reports_are_never_replaced(self):
        run_dir = tempfile.mkdtemp()
        path = reports.epoch_report_path(run_dir, 3)
        reports.write_json({"inputs": {}, "inception": {"backbone": "random"},
                            "metrics": {"fid": 1.0}, "epoch": 3}, path)
        with open(path) as f:
            before = f.read()
        with self.assertRaisesRegex(FileExistsError, "is training's report of epoch 3.*"
                                                     "e.g. .*eval/evaluate.json"):
            evaluate.run(fake=self.test_a, real=self.test_b, metrics=["swd"], output=path)
        with open(path) as f:
            self.assertEqual(f.read(), before)
