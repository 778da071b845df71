"""Translation of any size and loading a generator from a run directory."""
import os
import shutil
import tempfile

import tensorflow as tf

from tests.test_checkpoints import truncate
from tests.testdata import tiny_config, write_tiny_run
from tfattncut import inference
from tfattncut.checkpoints import make_checkpoint
from tfattncut.models.generator import build_generator


class TranslateTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.generator = build_generator(tiny_config("/unused"))

    def test_multiple_of_four_is_the_plain_generator(self):
        images = tf.random.uniform([2, 32, 36, 3], -1, 1, seed=1)
        self.assertAllClose(inference.translate(self.generator, images), self.generator(images))

    def test_other_sizes_pad_and_crop_back(self):
        images = tf.random.uniform([1, 33, 30, 3], -1, 1, seed=2)
        out = inference.translate(self.generator, images)
        self.assertEqual(out.shape, (1, 33, 30, 3))
        padded = tf.pad(images, [[0, 0], [0, 3], [0, 2], [0, 0]], mode="REFLECT")
        self.assertAllClose(out, self.generator(padded)[:, :33, :30])


class LoadTranslatorTest(tf.test.TestCase):

    def test_round_trip_through_a_run_directory(self):
        root = tempfile.mkdtemp()
        config = tiny_config(root, name="saved")
        generator = write_tiny_run(config)
        checkpoints = os.path.join(config.run_dir, "checkpoints")
        images = tf.random.uniform([1, 64, 64, 3], -1, 1, seed=3)
        # best_fid/ (evaluation while training keeps the best-FID checkpoint there) is a
        # folder of checkpoints in the run directory like checkpoints/.
        best = os.path.join(config.run_dir, "best_fid")
        shutil.copytree(checkpoints, best)
        for where in (config.run_dir, checkpoints, tf.train.latest_checkpoint(checkpoints),
                      best):
            loaded, loaded_config = inference.load_translator(where)
            self.assertEqual(loaded_config, config)
            self.assertAllClose(loaded(images), generator(images))

    def test_missing_checkpoint_names_the_path(self):
        root = tempfile.mkdtemp()
        with self.assertRaisesRegex(FileNotFoundError, "--checkpoint=.*no checkpoint"):
            inference.load_translator(root)
        with self.assertRaisesRegex(FileNotFoundError, "ckpt-7.index"):
            inference.load_translator(os.path.join(root, "ckpt-7"))

    def test_a_config_json_that_does_not_fit_the_checkpoint_is_named(self):
        root = tempfile.mkdtemp()
        config = tiny_config(root, name="edited")
        write_tiny_run(config)
        config_path = os.path.join(config.run_dir, "config.json")
        with open(config_path, "w") as f:
            f.write(config.replace(ngf=config.ngf * 2).to_json())
        with self.assertRaisesRegex(
                ValueError, f"^--checkpoint={config.run_dir}: .*ckpt-.* does not fit the networks "
                            f"that {config_path} describes \\(.*shape"):
            inference.load_translator(config.run_dir)
        for text, why in (("{bad", "is not valid JSON"), ("[1]", "holds a JSON list")):
            with open(config_path, "w") as f:
                f.write(text)
            with self.assertRaisesRegex(ValueError, f"^{config_path} {why}"):
                inference.load_translator(config.run_dir)

    def test_damaged_newest_checkpoint_falls_back_to_the_intact_one(self):
        root = tempfile.mkdtemp()
        config = tiny_config(root, name="damaged")
        intact = write_tiny_run(config)
        newer = build_generator(config)
        newer(tf.zeros([1, 64, 64, 3]))
        checkpoints = os.path.join(config.run_dir, "checkpoints")
        damaged = tf.train.CheckpointManager(make_checkpoint(generator=newer), checkpoints,
                                             max_to_keep=2).save(checkpoint_number=2)
        truncate(damaged + ".data-00000-of-00001")
        images = tf.random.uniform([1, 64, 64, 3], -1, 1, seed=4)
        with self.assertLogs(level="WARNING") as logs:
            loaded, _ = inference.load_translator(config.run_dir)
        self.assertRegex("\\n".join(logs.output), f"{damaged} is damaged.*Read less bytes")
        self.assertAllClose(loaded(images), intact(images))
        with self.assertRaisesRegex(ValueError, f"--checkpoint={damaged}: the checkpoint is "
                                    "damaged .*Read less bytes"):
            inference.load_translator(damaged)
