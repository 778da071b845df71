"""Networks survive a checkpoint round trip (Keras 3 hides list-held layers from TF)."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from tests.testdata import tiny_config
from tfattncut.checkpoints import make_checkpoint
from tfattncut.methods.cut import build_generator


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
            self.assertAllEqual(a.numpy(), b.numpy())
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
