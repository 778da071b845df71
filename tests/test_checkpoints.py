"""Networks survive a checkpoint round trip (Keras 3 hides list-held layers from TF); a
damaged newest checkpoint falls back to the newest intact one."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut import checkpoints
from tfattncut.checkpoints import make_checkpoint
from tfattncut.models.generator import build_generator


class CheckpointTest(tf.test.TestCase):

    def test_generator_round_trip(self):
        config = tiny_config("/unused")
        saved, restored = build_generator(config), build_generator(config)
        for generator in (saved, restored):
            generator(tf.zeros([1, 64, 64, 3]))
        prefix = make_checkpoint(generator=saved, step=tf.Variable(3)).save(
            os.path.join(tempfile.mkdtemp(), "ckpt"))
        step = tf.Variable(0)
        make_checkpoint(generator=restored, step=step).restore(prefix) \
            .assert_existing_objects_matched()
        self.assertEqual(int(step), 3)
        for a, b in zip(saved.weights, restored.weights):
            self.assertAllEqual(a.numpy(), b.numpy())  # a restore copies the saved values
        names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        self.assertLen([n for n in names if n.startswith("generator/")], len(saved.weights))

    def test_plain_tf_checkpoint_would_miss_the_layer_list(self):
        """Why make_checkpoint exists: this failure is what it prevents."""
        generator = build_generator(tiny_config("/unused"))
        generator(tf.zeros([1, 64, 64, 3]))
        prefix = tf.train.Checkpoint(generator=generator).save(
            os.path.join(tempfile.mkdtemp(), "plain"))
        names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        self.assertEmpty([n for n in names if n.startswith("generator/")])
        self.assertGreater(len(generator.weights), 0)
        self.assertFalse(np.all([w.numpy().size == 0 for w in generator.weights]))


def truncate(path):
    """Cuts a file to half its size, as a full disk or an interrupted copy leaves it."""
    with open(path, "rb") as f:
        contents = f.read()
    with open(path, "wb") as f:
        f.write(contents[:len(contents) // 2])
    return contents[:len(contents) // 2]


class NewestIntactTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.folder = tempfile.mkdtemp()
        self.value = tf.Variable(tf.zeros([300]))
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=self.value), self.folder,
                                             max_to_keep=5)
        for step in (2, 4, 6):
            self.value.assign(tf.fill([300], float(step)))
            manager.save(checkpoint_number=step)
        self.prefix = {step: os.path.join(self.folder, f"ckpt-{step}") for step in (2, 4, 6)}

    def test_intact_run_gives_the_newest(self):
        self.assertIsNone(checkpoints.damage(self.prefix[6]))
        self.assertEqual(checkpoints.newest_intact(self.folder), self.prefix[6])
        self.assertIsNone(checkpoints.newest_intact(tempfile.mkdtemp()))

    def test_truncated_data_or_index_falls_back_and_keeps_the_files(self):
        for suffix, step, why, newest in ((".data-00000-of-00001", 6, "Read less bytes", 4),
                                          (".index", 4, "not an sstable", 2)):
            damaged = self.prefix[step] + suffix
            cut = truncate(damaged)
            self.assertRegex(checkpoints.damage(self.prefix[step]), why)
            with self.assertLogs(level="WARNING") as logs:
                self.assertEqual(checkpoints.newest_intact(self.folder), self.prefix[newest])
            self.assertRegex("\n".join(logs.output), f"ckpt-{step} is damaged.*{why}")
            with open(damaged, "rb") as f:
                self.assertEqual(f.read(), cut)  # left as it was
        reader = tf.train.load_checkpoint(self.prefix[2])
        self.assertAllEqual(reader.get_tensor("value/.ATTRIBUTES/VARIABLE_VALUE"),
                            tf.fill([300], 2.0))

    def test_keep_damaged_copies_them_before_a_resumed_run_can_overwrite_them(self):
        cut = truncate(self.prefix[6] + ".data-00000-of-00001")
        with self.assertLogs(level="WARNING"):
            self.assertEqual(checkpoints.newest_intact(self.folder, keep_damaged=True),
                             self.prefix[4])
        aside = os.path.join(self.folder, checkpoints.DAMAGED_FOLDER)
        self.assertCountEqual(os.listdir(aside), ["ckpt-6.index", "ckpt-6.data-00000-of-00001"])
        with open(os.path.join(aside, "ckpt-6.data-00000-of-00001"), "rb") as f:
            self.assertEqual(f.read(), cut)
        self.assertTrue(os.path.exists(self.prefix[6] + ".index"))

    def test_all_damaged_is_an_error_naming_each(self):
        for prefix in self.prefix.values():
            truncate(prefix + ".index")
        with self.assertLogs(level="WARNING"), \
                self.assertRaisesRegex(ValueError, "Every checkpoint in .* is damaged: .*ckpt-6.*"
                                       "ckpt-4.*ckpt-2"):
            checkpoints.newest_intact(self.folder)
