"""The training loop: exact resume, MirroredStrategy equivalence, summaries, safety."""
import contextlib
import glob
import io
import json
import os
import tempfile
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from tests.testdata import tiny_config, write_unaligned_folders
from tfattncut import pixels
from tfattncut.data import image_files, transforms
from tfattncut.evaluation import evaluate
from tfattncut.methods import label_aware
from tfattncut.methods.cut import CUT
from tfattncut.training.trainer import NonFiniteSteps, Trainer

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"


def summary_tags(logdir):
    tags = set()
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


class TrainerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = write_unaligned_folders(tempfile.mkdtemp(prefix="trainer_test_"), count=4)

    def test_resume_matches_uninterrupted_run(self):
        straight = Trainer(tiny_config(self.root, name="straight", max_steps=6)).fit()
        first = Trainer(tiny_config(self.root, name="resumed", max_steps=3)).fit()
        resumed = Trainer(tiny_config(self.root, name="resumed", max_steps=6, resume=True))
        second = resumed.fit()
        self.assertLen(straight, 6)
        self.assertEqual((len(first), len(second)), (3, 3))
        for step, (want, got) in enumerate(zip(straight, first + second), start=1):
            for name in want:
                # Tight: the same graph on the same restored state runs the same kernels.
                self.assertAllClose(got[name], want[name], rtol=1e-5, msg=f"{name} at step {step}")
        self.assertEqual(int(resumed.step), 6)
        # The second epoch runs at the decayed rate (linear policy, 1 + 1 epochs).
        self.assertAllClose(float(resumed.method.optimizer_g.learning_rate), 1e-4)

    def test_summaries_checkpoint_and_samples(self):
        config = tiny_config(self.root, name="outputs", max_steps=2)
        trainer = Trainer(config)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            trainer.fit()
        # Output that is not a terminal gets plain lines: no backspace, carriage return or ANSI.
        self.assertNotRegex(log.getvalue(), r"[\b\r]|\x1b\[")
        self.assertRegex(log.getvalue(), r"Epoch 1/2 \(lr 0.0002\)\nstep 2/2: ")
        tags = summary_tags(os.path.join(config.run_dir, "logs"))
        # train_step: the traced graph.
        for tag in ("loss/G_GAN", "loss/NCE", "loss/D", "lr", "train_step",
                    "translation/real_A|fake_B|real_B", "identity/real_B|idt_B"):
            self.assertIn(tag, tags)
        self.assertTrue(any(t.startswith("generator/") for t in tags))
        self.assertTrue(trainer.manager.latest_checkpoint.endswith("ckpt-2"))
        samples = trainer.write_samples()
        sheet = tf.io.decode_png(tf.io.read_file(samples)).numpy()
        # A 20-pixel header naming the columns, then input | translation | real B per row.
        self.assertEqual(sheet.shape, (20 + 4 * 64, 3 * 64, 3))
        self.assertLess(sheet[:20].min(), 100)  # the names are drawn on white
        for column, folder in ((0, "testA"), (2, "testB")):
            first = transforms.test_transform(
                image_files.load_image(os.path.join(self.root, folder, "000.png")), config)
            # The same decoded image through the same conversion: equal.
            self.assertAllEqual(sheet[20:84, column * 64:(column + 1) * 64],
                                pixels.to_uint8(first))
        self.assertTrue(os.path.exists(os.path.join(config.run_dir, "config.json")))

    def test_source_sizes_train_unless_the_method_stacks_a_with_b(self):
        # --preprocess=none keeps each image's size: A 64x64, B 48x80, one test image 44x32.
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="mixed_"), count=2)
        for i in range(2):
            tf.io.write_file(os.path.join(root, "trainB", f"00{i}.png"),
                             tf.io.encode_png(tf.fill([48, 80, 3], tf.constant(9, tf.uint8))))
        tf.io.write_file(os.path.join(root, "testA", "009.png"),
                         tf.io.encode_png(tf.zeros([44, 32, 3], tf.uint8)))
        config = tiny_config(root, name="sizes", preprocess="none", max_steps=2)
        with self.assertRaisesRegex(ValueError, "^--nce_idt runs real A and real B through "
                                                "the generator as one batch, so the training "
                                                "images need one size"):
            Trainer(config)
        trainer = Trainer(config.replace(nce_idt=False))
        trainer.fit()
        self.assertEqual(int(trainer.step), 2)
        self.assertIn("translation/real_A|fake_B|real_B",
                      summary_tags(os.path.join(config.run_dir, "logs")))
        sheet = tf.io.decode_png(tf.io.read_file(trainer.write_samples()))
        self.assertEqual(sheet.shape, (20 + 3 * 64, 3 * 64, 3))  # all at the first's size

    def test_refuses_to_overwrite_a_run_without_resume(self):
        config = tiny_config(self.root, name="twice", max_steps=1)
        Trainer(config).fit()
        with self.assertRaisesRegex(FileExistsError, "--resume"):
            Trainer(config).fit()

    def test_refuses_to_overwrite_a_run_that_holds_only_a_best_fid_checkpoint(self):
        config = tiny_config(self.root, name="best_only", max_steps=1)
        Trainer(config).best_manager.save(checkpoint_number=2)  # an --eval_every_epochs result
        with self.assertRaisesRegex(FileExistsError, r"best_fid/ckpt-2\); pass --resume"):
            Trainer(config).fit()

    def test_resume_refuses_flags_that_change_the_computation_and_keeps_the_record(self):
        Trainer(tiny_config(self.root, name="record", max_steps=1)).fit()
        saved = os.path.join(self.root, "runs", "record", "config.json")
        with open(saved) as f:
            record = f.read()
        changed = tiny_config(self.root, name="record", max_steps=2, resume=True, seed=7,
                              crop_size=48, lr=0.01, nce_layers=(0, 4))
        with self.assertRaisesRegex(
                ValueError, r"^--resume: flags that differ from the run's .*config.json: "
                r"--crop_size 64 -> 48, --lr 0.0002 -> 0.01, --nce_layers 0,4,8,12,16 -> 0,4, "
                r"--seed 0 -> 7\. They change what the run computes; resume with the run's "
                r"values, or start a new run with another --name$"):
            Trainer(changed).fit()
        with open(saved) as f:
            self.assertEqual(f.read(), record)
        # Bookkeeping (length, intervals, evaluation) may change.
        trainer = Trainer(tiny_config(self.root, name="record", max_steps=2, resume=True,
                                      n_epochs=3, checkpoint_every=1, summary_every=2))
        self.assertLen(trainer.fit(), 1)
        self.assertEqual(int(trainer.step), 2)

    def test_resume_into_other_networks_without_a_record_says_so(self):
        Trainer(tiny_config(self.root, name="narrow", max_steps=1)).fit()
        os.remove(os.path.join(self.root, "runs", "narrow", "config.json"))
        wider = tiny_config(self.root, name="narrow", max_steps=2, ngf=8, resume=True)
        with self.assertRaisesRegex(
                ValueError, r"^--resume: .*ckpt-1 does not fit the networks this command builds "
                r"\(.*shape.*\)\. Resume with the run's flags, or choose another --name$"):
            Trainer(wider).fit()

    def test_mirrored_two_replicas_equal_one_device(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        self.assertLen(devices, 2, "tests/conftest.py splits the CPU into two devices")
        weights = []
        for name, strategy in (("single", tf.distribute.get_strategy()),
                               ("mirrored", tf.distribute.MirroredStrategy(devices))):
            trainer = Trainer(tiny_config(self.root, name=name, batch_size=2, max_steps=1),
                              strategy=strategy)
            trainer.fit()
            # Kernels only: a conv bias followed by instance norm has a zero gradient, whose
            # float noise Adam blows up to full-size, arbitrary steps.
            state = {k: [v.numpy() for v in net.trainable_variables if len(v.shape) > 1]
                     for k, net in trainer.method.networks.items()}
            # Adam's moments hold the gradients themselves (the weights alone would not catch
            # a gradient summed over replicas instead of averaged: Adam is scale-invariant).
            state.update({f"optimizer_{k}": [v.numpy() for v in opt.variables
                                              if len(v.shape) > 1]
                          for k, opt in trainer.method.optimizers.items()})
            weights.append(state)
        for name in weights[0]:
            self.assertLen(weights[1][name], len(weights[0][name]), msg=name)
            self.assertNotEmpty(weights[0][name], msg=name)
            for single, mirrored in zip(weights[0][name], weights[1][name]):
                if name.startswith("optimizer"):
                    self.assertAllClose(mirrored, single, rtol=1e-3,
                                        atol=1e-3 * np.abs(single).max(), msg=name)
                else:
                    # Adam turns float noise in near-zero gradients into sizeable steps, so
                    # a rare weight may differ by part of one step (lr 2e-4); on average the
                    # kernels agree to well within 1 % of a step.
                    difference = np.abs(mirrored - single)
                    self.assertLess(difference.mean(), 2e-6, msg=name)
                    self.assertLess(difference.max(), 1e-4, msg=name)

    def test_batch_not_divisible_by_replicas(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        with self.assertRaisesRegex(ValueError, "--batch_size=3"):
            Trainer(tiny_config(self.root, name="odd", batch_size=3),
                    strategy=tf.distribute.MirroredStrategy(devices))

    def test_missing_dataroot_names_the_folder(self):
        missing = os.path.join(self.root, "nowhere")
        with self.assertRaisesRegex(Exception, "nowhere"):
            Trainer(tiny_config(missing, name="missing"))

    def test_tf32_follows_the_flag_and_is_off_by_default(self):
        # TensorFlow's own default is on; float32 runs must compute as the reference did.
        try:
            Trainer(tiny_config(self.root, name="tf32_default"))
            self.assertFalse(tf.config.experimental.tensor_float_32_execution_enabled())
            Trainer(tiny_config(self.root, name="tf32_on", tf32=True))
            self.assertTrue(tf.config.experimental.tensor_float_32_execution_enabled())
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(False)

    def test_weights_not_all_equal_at_init(self):
        trainer = Trainer(tiny_config(self.root, name="init", max_steps=1))
        kernels = [v.numpy() for v in trainer.method.generator.trainable_variables
                   if v.shape == (3, 3, 16, 16)]
        self.assertGreater(len(kernels), 2)
        self.assertFalse(np.allclose(kernels[0], kernels[1]))


class NonFiniteStepsTest(tf.test.TestCase):

    def test_stops_after_consecutive_bad_steps_without_saving_them(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="nonfinite_test_"), count=4)
        config = tiny_config(root, name="nan", max_steps=8, checkpoint_every=1,
                             max_nonfinite_steps=3, nce_idt=False)
        replica_step = CUT.replica_step

        def nan_from_step_2(method, batch, seed, **kwargs):
            """Steps 0 and 1 (the seed's second entry) see the data; later ones NaN images."""
            poison = tf.where(seed[1] >= 2, float("nan"), 1.0)
            return replica_step(method, {k: v * poison for k, v in batch.items()}, seed,
                                **kwargs)

        with mock.patch.object(CUT, "replica_step", nan_from_step_2):
            trainer = Trainer(config)
            with self.assertLogs(level="WARNING") as logs, \
                    self.assertRaisesRegex(NonFiniteSteps,
                                           "3 consecutive steps up to step 5.*"
                                           "--max_nonfinite_steps=3.*ckpt-2"):
                trainer.fit()
        self.assertLen([line for line in logs.output if "non-finite loss" in line], 3)
        saved = tf.train.get_checkpoint_state(trainer.checkpoint_dir).all_model_checkpoint_paths
        self.assertEqual([os.path.basename(p) for p in saved], ["ckpt-1", "ckpt-2"])
        self.assertIn("train/nonfinite_steps", summary_tags(os.path.join(config.run_dir, "logs")))


class SelectionMapTest(tf.test.TestCase):

    def test_qs_run_writes_selection_overlays(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="selection_test_"), count=2)
        config = tiny_config(root, name="qs", selector="qs_global", max_steps=1)
        Trainer(config).fit()
        tags = summary_tags(os.path.join(config.run_dir, "logs"))
        self.assertIn("selection/layer_12", tags)
        self.assertIn("selection/layer_16", tags)
        self.assertNotIn("selection/layer_0", tags)


class LabelAwareRunTest(tf.test.TestCase):

    def test_s_a_is_trained_once_and_a_resumed_run_matches_an_uninterrupted_one(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="label_aware_run_"), count=4,
                                       labels=True)
        options = dict(lambda_sem=1.0, label_nce=True, sem_epochs=1)
        straight = Trainer(tiny_config(root, name="straight", max_steps=4, **options)).fit()
        first = Trainer(tiny_config(root, name="resumed", max_steps=2, **options)).fit()
        kept = os.path.join(root, "runs", "resumed", label_aware.SEGMENTER_FILE)
        written = os.stat(kept).st_mtime_ns
        with mock.patch.object(label_aware, "train_segmenter_a",
                               side_effect=AssertionError("S_A trained again")):
            second = Trainer(tiny_config(root, name="resumed", max_steps=4, resume=True,
                                         **options)).fit()
        self.assertEqual(os.stat(kept).st_mtime_ns, written)
        self.assertEqual((len(first), len(second)), (2, 2))
        for step, (want, got) in enumerate(zip(straight, first + second), start=1):
            self.assertIn("SEM", got)
            for name in want:
                # Both runs trained the same S_A (deterministic), then ran the same graph on
                # the same state: as tight as the plain resume test.
                self.assertAllClose(got[name], want[name], rtol=1e-5, msg=f"{name} at step {step}")
        self.assertIn("loss/SEM", summary_tags(os.path.join(root, "runs", "straight", "logs")))


class EvalDuringTrainingTest(tf.test.TestCase):

    def test_eval_every_epoch_logs_and_keeps_best_fid(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="eval_test_"), count=2)
        config = tiny_config(root, name="eval", eval_every_epochs=1, inception="random",
                             eval_metrics=("fid",))
        trainer = Trainer(config)
        trainer.fit()
        reports = sorted(glob.glob(os.path.join(config.run_dir, "eval", "epoch_*.json")))
        self.assertLen(reports, 2)  # 1 + 1 epochs
        self.assertIn("eval/fid", summary_tags(os.path.join(config.run_dir, "logs")))
        fids = [json.load(open(path))["metrics"]["fid"] for path in reports]
        self.assertAllClose(float(trainer.best_fid), min(fids))  # one number, float32-rounded
        best = tf.train.latest_checkpoint(os.path.join(config.run_dir, "best_fid"))
        self.assertIsNotNone(best)
        self.assertTrue(best.endswith(f"-{2 * (fids.index(min(fids)) + 1)}"))

    def test_an_evaluation_that_cannot_run_is_refused_before_training(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="eval_setup_test_"), count=2)
        config = tiny_config(root, name="eval_setup", eval_every_epochs=1, inception="random")
        for metrics, message in (
                (("fid", "kdi"), r"^--eval_metrics: unknown \['kdi'\]; choose from fid,"),
                (("fid", "psnr"), r"^--eval_metrics=fid,psnr: psnr needs the paired target .*"
                                  r"testA_as_B of --dataroot\)$")):
            with self.assertRaisesRegex(ValueError, message):
                Trainer(config.replace(eval_metrics=metrics))
        os.rename(os.path.join(root, "testA"), os.path.join(root, "testA_moved"))
        with self.assertRaisesRegex(ValueError, "^--eval_every_epochs=1 translates the test "
                                                f"images of {root}/testA, which does not exist"):
            Trainer(config)

    def test_a_metric_that_is_not_finite_is_warned_about_and_training_goes_on(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="eval_test_"), count=2)
        config = tiny_config(root, name="nan", eval_every_epochs=1, inception="random",
                             eval_metrics=("fid",), n_epochs_decay=0)
        report = {"inputs": {}, "inception": {"backbone": "random", "note": "random"},
                  "metrics": {"fid": float("nan")}, "epoch": 1}
        with mock.patch.object(evaluate, "evaluate_translator", return_value=report), \
                self.assertLogs(level="WARNING") as logs:
            Trainer(config).fit()
        self.assertTrue(any("Epoch 1: Not writing" in line and "metrics.fid is nan" in line
                            for line in logs.output), logs.output)
        self.assertEmpty(glob.glob(os.path.join(config.run_dir, "eval", "*.json")))
        self.assertIsNotNone(tf.train.latest_checkpoint(os.path.join(config.run_dir,
                                                                     "checkpoints")))
