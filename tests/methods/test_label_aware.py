"""The label-aware options of CUT (methods/label_aware.py): patch labels, the semantic
consistency term and its frozen S_A, label-aware negatives, their checks and streams."""
import os
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from tests.testdata import tiny_config, write_unaligned_folders
from tfattncut import config as config_lib
from tfattncut import losses
from tfattncut.data.unaligned import UnalignedFolders
from tfattncut.methods import build_method, label_aware
from tfattncut.methods.cut import CUT


def numpy_cell_labels(labels, grid):
    """The oracle of cell_labels: per cell, the most frequent train id (the lowest of tied
    ones), counting 255 as a class of its own; -1 where that is 255."""
    batch, height, width = labels.shape
    rows, columns = grid
    out = np.empty([batch, rows * columns], np.int32)
    for b in range(batch):
        for i in range(rows):
            for j in range(columns):
                cell = labels[b, i * height // rows:(i + 1) * height // rows,
                              j * width // columns:(j + 1) * width // columns]
                values, counts = np.unique(cell, return_counts=True)  # sorted values
                winner = values[np.argmax(counts)]  # argmax: the first, lowest, of ties
                out[b, i * columns + j] = -1 if winner == 255 else winner
    return out


def labelled_batch(batch_size=1, size=64, seed=0):
    rng = np.random.default_rng(seed)
    batch = {k: tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)), tf.float32)
             for k in ("a", "b")}
    coarse = rng.choice([0, 1, 2, 13, 255], size=(batch_size, 4, 4))
    batch["a_labels"] = tf.constant(np.kron(coarse, np.ones([size // 4, size // 4])),
                                    tf.int32)
    return batch


class CellLabelsTest(tf.test.TestCase):

    def test_majority_of_each_cell_ties_to_the_lower_id_and_unlabelled_is_minus_one(self):
        rng = np.random.default_rng(0)
        labels = rng.choice([0, 3, 5, 255], size=(2, 8, 12), p=[0.3, 0.3, 0.2, 0.2])
        labels[0, :4, :4] = [[3, 3, 0, 0]] * 4  # a tie between 0 and 3 -> 0
        labels[1, :4, :4] = 255
        for grid in ((8, 12), (4, 6), (2, 3), (1, 1)):
            got = label_aware.cell_labels(tf.constant(labels), grid)
            self.assertAllEqual(got, numpy_cell_labels(labels, grid))  # integers: exact
        self.assertEqual(int(label_aware.cell_labels(tf.constant(labels), (2, 3))[0, 0]), 0)
        self.assertEqual(int(label_aware.cell_labels(tf.constant(labels), (2, 3))[1, 0]), -1)
        with self.assertRaisesRegex(ValueError, "8x12 do not split into a 3x3 grid"):
            label_aware.cell_labels(tf.constant(labels), (3, 3))

    def test_a_reflection_padded_layer_mirrors_the_border(self):
        # The generator's layer 0 is the image reflection-padded by 3 (NumPy's "reflect").
        labels = np.random.default_rng(1).choice([0, 3, 255], size=(2, 8, 12))
        padded = np.pad(labels, [[0, 0], [3, 3], [3, 3]], mode="reflect")
        self.assertAllEqual(label_aware.cell_labels(tf.constant(labels), (14, 18)),
                            numpy_cell_labels(padded, (14, 18)))


class OptionsTest(tf.test.TestCase):

    def test_streams_follow_the_options(self):
        self.assertEqual(CUT.input_streams(tiny_config("/unused")), ("a", "b"))
        for options in (dict(lambda_sem=1.0), dict(label_nce=True)):
            self.assertEqual(CUT.input_streams(tiny_config("/unused", **options)),
                             ("a", "b", "a_labels"))

    def test_options_that_cannot_work_are_refused_naming_the_flags(self):
        with self.assertRaisesRegex(ValueError, "^--sem_segmenter=x is only used by semantic "
                                                "consistency; pass --lambda_sem > 0"):
            config_lib.validate(tiny_config("/unused", sem_segmenter="x"))
        with self.assertRaisesRegex(ValueError, "^--lambda_sem > 0 with "
                                                "--strategy=multi_worker: .* --sem_segmenter"):
            config_lib.validate(tiny_config("/unused", lambda_sem=1.0, strategy="multi_worker"))
        with self.assertRaisesRegex(FileNotFoundError, "^--sem_segmenter=/nowhere is not a "
                                                       "SavedModel"):
            build_method(tiny_config("/unused", lambda_sem=1.0, sem_segmenter="/nowhere"))
        with self.assertRaisesRegex(ValueError, "^--sem_adapt trains the S_A of semantic "
                                                "consistency; pass --lambda_sem > 0"):
            config_lib.validate(tiny_config("/unused", sem_adapt=True))
        with self.assertRaisesRegex(ValueError, "^--sem_adapt with --sem_segmenter=x: a "
                                                "SavedModel cannot be trained on"):
            config_lib.validate(tiny_config("/unused", lambda_sem=1.0, sem_adapt=True,
                                            sem_segmenter="x"))


class SemanticConsistencyTest(tf.test.TestCase):

    def test_term_is_the_cross_entropy_of_s_a_on_the_translation_flipped_with_it(self):
        method = CUT(tiny_config("/unused", lambda_sem=1.0, flip_equivariance=True))
        batch = labelled_batch(batch_size=2, seed=1)
        for flipped in (False, True):
            out = {"fake_b": batch["b"], "labels_a": batch["a_labels"],
                   "flipped": tf.constant(flipped)}
            labels = tf.reverse(batch["a_labels"], [2]) if flipped else batch["a_labels"]
            # The same eager ops on the same inputs: exact.
            self.assertAllEqual(
                method._semantic_consistency(out),
                losses.pixel_cross_entropy(method.segmenter(batch["b"]), labels, 255))
        self.assertNotAllClose(method._semantic_consistency(dict(out, flipped=False)),
                               method._semantic_consistency(out))

    def test_steps_train_g_d_f_and_leave_s_a_as_it_was(self):
        method = CUT(tiny_config("/unused", lambda_sem=2.0, label_nce=True))
        frozen = [v.numpy() for v in method.segmenter.weights]
        before = [v.numpy() for v in method.generator.trainable_variables]
        step = tf.function(method.replica_step)
        for i in range(2):
            values, _ = step(labelled_batch(seed=i), tf.constant([0, i]))
            for name, value in values.items():
                self.assertTrue(np.isfinite(value.numpy()), f"{name} = {value}")
        self.assertIn("SEM", values)
        self.assertGreater(float(values["SEM"]), 0.0)
        for variable, old in zip(method.segmenter.weights, frozen):
            self.assertAllEqual(variable, old)
        self.assertNotIn("segmenter", method.networks)
        changed = [not np.array_equal(v.numpy(), old)
                   for v, old in zip(method.generator.trainable_variables, before)]
        self.assertNotEmpty(changed)
        self.assertAllEqual(changed, [True] * len(changed))

    def test_prepare_trains_s_a_once_and_a_resumed_run_reloads_it(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="label_aware_"), count=4,
                                       labels=True)
        config = tiny_config(root, lambda_sem=1.0, sem_epochs=2)
        data = UnalignedFolders(config, streams=CUT.input_streams(config))
        run_dir = os.path.join(root, "run")
        first = CUT(config)
        untrained = [v.numpy() for v in first.segmenter.weights]
        first.prepare(data, run_dir)
        self.assertTrue(os.path.isfile(os.path.join(run_dir, label_aware.SEGMENTER_FILE)))
        self.assertEqual(os.listdir(run_dir), [label_aware.SEGMENTER_FILE])
        self.assertNotAllClose(first.segmenter.weights[0], untrained[0])
        trained = [v.numpy() for v in first.segmenter.weights]
        again = CUT(config)
        with mock.patch.object(label_aware, "train_segmenter_a",
                               side_effect=AssertionError("trained again")):
            again.prepare(data, run_dir)
        for variable, want in zip(again.segmenter.weights, trained):
            self.assertAllEqual(variable, want)  # loaded from the file: exact
        # Training it again from the same seed and views gives the same S_A.
        retrained = label_aware.train_segmenter_a(data, config)
        for variable, want in zip(retrained.weights, trained):
            self.assertAllEqual(variable, want)


class AdaptiveSegmenterTest(tf.test.TestCase):

    def test_d_update_trains_s_a_on_the_translations_and_g_update_leaves_it(self):
        method = CUT(tiny_config("/unused", lambda_sem=1.0, sem_adapt=True))
        self.assertIs(method.networks["segmenter"], method.segmenter)
        self.assertIn("segmenter", method.optimizers)
        batch = labelled_batch(batch_size=2, seed=3)
        out = method.forward(batch, tf.constant([0, 0]))
        judged, _ = method.discriminator_inputs(out, tf.constant([0, 0]))
        loss, terms = method.discriminator_loss(judged)
        # S_A's CE on the translation, the G-side term's value, added to D's loss (the same
        # eager ops on the same tensors: exact).
        self.assertAllEqual(terms["S_fake"], method._semantic_consistency(out))
        plain = losses.discriminator_loss("lsgan", terms["D_real"], terms["D_fake"])
        self.assertAllClose(loss, plain + terms["S_fake"], rtol=1e-6)
        # One step: D's update moves S_A (towards reading the translations), G's does not:
        # S_A's variables are in D's groups only.
        s_vars = {id(v) for v in method.segmenter.trainable_variables}
        self.assertTrue(any(id(v) in s_vars for _, vs in method.discriminator_groups()
                            for v in vs))
        self.assertFalse(any(id(v) in s_vars for _, vs in method.generator_groups()
                             for v in vs))
        before = [v.numpy() for v in method.segmenter.trainable_variables]
        values, _ = tf.function(method.replica_step)(batch, tf.constant([0, 1]))
        self.assertIn("S_fake", values)
        changed = [not np.array_equal(v.numpy(), old)
                   for v, old in zip(method.segmenter.trainable_variables, before)]
        self.assertNotEmpty(changed)
        self.assertAllEqual(changed, [True] * len(changed))
        self.assertEqual(int(method.optimizer_s.iterations), 1)

    def test_a_restored_s_a_that_has_learned_is_not_replaced_by_the_initial_file(self):
        root = write_unaligned_folders(tempfile.mkdtemp(prefix="label_aware_"), count=4,
                                       labels=True)
        config = tiny_config(root, lambda_sem=1.0, sem_adapt=True, sem_epochs=1)
        data = UnalignedFolders(config, streams=CUT.input_streams(config))
        run_dir = os.path.join(root, "run")
        method = CUT(config)
        method.prepare(data, run_dir)  # trains S_A and loads it
        initial = [v.numpy() for v in method.segmenter.weights]
        tf.function(method.replica_step)(labelled_batch(batch_size=1), tf.constant([0, 1]))
        adapted = [v.numpy() for v in method.segmenter.weights]
        self.assertNotAllClose(adapted[0], initial[0])
        # As after a checkpoint's restore: the trainer calls prepare again.
        method.prepare(data, run_dir)
        for variable, want in zip(method.segmenter.weights, adapted):
            self.assertAllEqual(variable, want)


class LabelAwareNegativesTest(tf.test.TestCase):

    def _nce(self, labels):
        method = CUT(tiny_config("/unused", label_nce=True))
        batch = labelled_batch(seed=2)
        features = method.generator.encode(batch["a"], method.config.nce_layers)
        translated = method.generator.encode(batch["b"], method.config.nce_layers)
        seed = tf.constant([3, 4])
        return (method._nce(features, translated, seed, tf.constant(labels, tf.int32)),
                method._nce(features, translated, seed))

    def test_one_class_masks_every_negative_and_unlabelled_masks_none(self):
        # Every key of the query's class is out of the denominator, leaving the positive and
        # the own key at -10: exp((-10 - s)/τ) underflows, so the loss is exactly 0.
        one_class, _ = self._nce(np.full([1, 64, 64], 13))
        self.assertEqual(float(one_class), 0.0)
        unlabelled, plain = self._nce(np.full([1, 64, 64], 255))
        self.assertAllEqual(unlabelled, plain)  # nothing masked: the same ops, exactly
        self.assertGreater(float(plain), 1.0)
