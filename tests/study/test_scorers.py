"""The fixed scorers: deterministic training, committed files that are checked when loaded,
a data set whose hash pins the renderer, and another rendering accepted only where the
scorers measure the same reference lines in it."""
import json
import os
import shutil
from unittest import mock

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow.python.framework import config as tf_config

from tests.study.fixtures import TINY_SEGMENTER, tiny_data, tiny_study
from tfattncut.evaluation import segmenter
from tfattncut.study import scorers
from tfattncut.data import synthetic
from tfattncut.study.data import StudyData, data_hash


class DataHashTest(tf.test.TestCase):

    def test_the_rendered_set_hashes_as_it_did_when_the_hash_was_taken(self):
        # The renderer is a pure function of (seed, split, domain, index) in NumPy and Pillow,
        # the same bytes on every CPU (docs/design/synthetic.md#determinism). This hash was
        # taken on an Intel Xeon (AVX-512) and reproduced on an AMD EPYC (AVX2). A change of
        # the renderer or of a package's numerics fails here, before it trains.
        self.assertEqual(tiny_data().hash, "88fa716d6e56b56b")

    def test_one_changed_byte_changes_the_hash(self):
        data = tiny_data()
        label = os.path.join(data.dataroot, "testB_labels", "000001.png")
        with open(label, "rb") as f:
            contents = bytearray(f.read())
        contents[-20] ^= 1
        with open(label, "wb") as f:
            f.write(contents)
        self.assertNotEqual(data_hash(data.dataroot), "88fa716d6e56b56b")

    def test_a_missing_folder_is_named(self):
        data = tiny_data()
        shutil.rmtree(os.path.join(data.dataroot, "testA_as_B"))
        with self.assertRaisesRegex(FileNotFoundError, "testA_as_B does not exist"):
            data_hash(data.dataroot)


def _shrink(path):
    """Rewrites the image (or label map) at `path` at 32x32."""
    with Image.open(path) as image:
        smaller = image.resize((32, 32), Image.NEAREST)
    smaller.save(path)


class SplitTest(tf.test.TestCase):

    def test_a_label_map_of_another_size_is_named(self):
        data = tiny_data()
        _shrink(os.path.join(data.dataroot, "testB_labels", "000001.png"))
        with self.assertRaisesRegex(ValueError, "Label map .*testB_labels/000001.png is "
                                                "\\(32, 32\\) but its image .*testB/000001"):
            data.split("test_b")

    def test_images_of_another_size_are_named(self):
        data = tiny_data()
        for folder in ("testA", "testA_labels"):  # image and label map agree with each other
            _shrink([os.path.join(data.dataroot, folder, name)
                     for name in sorted(os.listdir(os.path.join(data.dataroot, folder)))][1])
        with self.assertRaisesRegex(ValueError, "^The images must share one size; .*testA has "
                                                "\\[\\(32, 32, 3\\), \\(64, 64, 3\\)\\]"):
            data.split("test_a")


class DeterminismTest(tf.test.TestCase):

    def test_two_trainings_give_one_fingerprint(self):
        split = tiny_data().split("train_b")
        tf_config.enable_op_determinism()
        try:
            fingerprints = {segmenter.fingerprint(TINY_SEGMENTER.fit(
                split.pixels, split.labels, seed=0).get_weights()) for _ in range(2)}
        finally:
            tf_config.disable_op_determinism()
        self.assertLen(fingerprints, 1)
        # And the fingerprint sees the weights: another seed is another scorer.
        other = segmenter.fingerprint(TINY_SEGMENTER.fit(split.pixels, split.labels,
                                                         seed=1).get_weights())
        self.assertNotIn(other, fingerprints)


class CommittedScorersTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.settings, cls.data, cls.made = tiny_study()

    def test_loaded_scorers_are_the_trained_ones(self):
        loaded = scorers.load_scorers(self.settings.study_dir, self.data)
        self.assertEqual(loaded.fingerprint, self.made.fingerprint)
        self.assertEqual(loaded.data_hash, self.data.hash)
        images = self.data.split("test_a").pixels
        # The same weights in the same network on the same inputs: identical logits.
        self.assertAllEqual(segmenter.predict(loaded.label_scorer, images / 127.5 - 1.0),
                            segmenter.predict(self.made.label_scorer, images / 127.5 - 1.0))

    def test_record_holds_versions_references_and_settings(self):
        with open(os.path.join(scorers.scorer_dir(self.settings.study_dir),
                               scorers.SCORERS_JSON)) as f:
            record = json.load(f)
        self.assertEqual(set(record["versions"]),
                         {"tensorflow", "keras", "numpy", "pillow", "tfattncut"})
        self.assertEqual(record["versions"]["tensorflow"], tf.__version__)
        self.assertEqual(record["segmenter_settings"]["width"], 4)
        references = record["references"]
        self.assertEqual(sorted(references["floor"]["per_seed"]), ["0", "1"])
        self.assertAllClose(references["floor"]["mean"],
                            np.mean(list(references["floor"]["per_seed"].values())))
        # testA against itself: no distance, and the paired PSNR is the input's own.
        # Exact: x - x is 0 for every pixel, and a mean of zeros is 0.
        self.assertEqual(references["untranslated"]["input_distance"], 0.0)
        self.assertGreater(references["ideal"]["input_distance"], 0.0)

    def test_tampered_weights_and_other_data_are_refused_by_name(self):
        study_dir = os.path.join(self.get_temp_dir(), "copy")
        shutil.copytree(self.settings.study_dir, study_dir)
        weights = os.path.join(scorers.scorer_dir(study_dir), scorers.LABEL_SCORER)
        with np.load(weights) as stored:
            arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        arrays[0] = arrays[0] + 1e-6
        np.savez(weights, *arrays)
        with self.assertRaisesRegex(ValueError, f"{weights} has fingerprint .* but "
                                                f".*{scorers.SCORERS_JSON} records"):
            scorers.load_scorers(study_dir, self.data)
        other = tiny_data(count=3)
        with self.assertRaisesRegex(ValueError, f"--dataroot={other.dataroot} hashes to "
                                                f"{other.hash} but the scorers"):
            scorers.load_scorers(self.settings.study_dir, other)
        with self.assertRaisesRegex(FileNotFoundError, "launch.study --train_scorers"):
            scorers.load_scorers(self.get_temp_dir(), self.data)
        record_path = os.path.join(scorers.scorer_dir(study_dir), scorers.SCORERS_JSON)
        with open(record_path, "w") as f:
            json.dump({"fingerprint": "0", "data_hash": "0"}, f)
        with self.assertRaisesRegex(ValueError, f"{record_path} has no segmenter_settings, "
                                                "label_seed, downstream_seeds, references"):
            scorers.load_scorers(study_dir, self.data)

    def test_committed_scorers_are_never_trained_over(self):
        weights = os.path.join(scorers.scorer_dir(self.settings.study_dir),
                               scorers.LABEL_SCORER)
        modified = os.path.getmtime(weights)
        with self.assertRaisesRegex(FileExistsError, "already holds the study's scorers"):
            scorers.train_scorers(self.settings.study_dir, self.data, TINY_SEGMENTER)
        self.assertEqual(os.path.getmtime(weights), modified)


class AddRenderingTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.settings, cls.data, _ = tiny_study()

    def _study_dir(self):
        study_dir = os.path.join(self.get_temp_dir(), "study")
        shutil.copytree(self.settings.study_dir, study_dir)
        return study_dir

    def test_a_rendering_with_the_same_pixels_is_recorded_and_accepted(self):
        study_dir = self._study_dir()
        dataroot = os.path.join(self.get_temp_dir(), "rendered_elsewhere")
        shutil.copytree(self.data.dataroot, dataroot)
        # Other bytes, the same pixels: another PNG compression level.
        path = os.path.join(dataroot, "testA", "000000.png")
        Image.open(path).save(path, compress_level=1)
        other = StudyData(dataroot)
        self.assertNotEqual(other.hash, self.data.hash)
        with self.assertRaisesRegex(ValueError, "--add_rendering"):
            scorers.load_scorers(study_dir, other)
        compared = scorers.add_rendering(study_dir, other)
        self.assertIn("untranslated.label_miou", compared)
        self.assertIn("ideal.kid_seg", compared)
        # The same pixels through the same network: the same lines.
        for recorded, measured in compared.values():
            self.assertAllClose(measured, recorded, rtol=1e-6, atol=1e-6)
        loaded = scorers.load_scorers(study_dir, other)
        self.assertEqual(loaded.data_hash, other.hash)
        self.assertEqual(loaded.identity()["data_hash"], other.hash)
        self.assertEqual(loaded.data_hashes, (self.data.hash, other.hash))
        self.assertEqual(scorers.load_scorers(study_dir, self.data).data_hash, self.data.hash)
        with self.assertRaisesRegex(ValueError, "already one of the renderings"):
            scorers.add_rendering(study_dir, other)

    def test_other_data_is_refused_and_nothing_is_written(self):
        study_dir = self._study_dir()
        record_path = os.path.join(scorers.scorer_dir(study_dir), scorers.SCORERS_JSON)
        with open(record_path, "rb") as f:
            before = f.read()
        other = StudyData(os.path.join(self.get_temp_dir(), "seed1"))
        synthetic.generate_dataset(other.dataroot, size=64, num_train=4, num_test=4, seed=1,
                                   progress=False)
        with self.assertRaisesRegex(ValueError, "is not the data the scorers .* were made on: "
                                                "untranslated label_miou"):
            scorers.add_rendering(study_dir, other)
        with open(record_path, "rb") as f:
            self.assertEqual(f.read(), before)
        with self.assertRaisesRegex(ValueError, "hashes to .* but the scorers"):
            scorers.load_scorers(study_dir, other)


class ReferenceLinesTest(tf.test.TestCase):

    def test_floor_and_ceiling_train_on_their_own_domains_labels(self):
        data = tiny_data()
        calls = []
        original = scorers.measures.downstream

        def spy(made, data, pixels, labels):
            calls.append((pixels, labels))
            return original(made, data, pixels, labels)

        with mock.patch.object(scorers.measures, "downstream", spy):
            scorers.train_scorers(self.get_temp_dir(), data, TINY_SEGMENTER,
                                  downstream_seeds=(0,))
        (floor_pixels, floor_labels), (ceiling_pixels, ceiling_labels) = calls
        # Arrays of the same split, not copies: identity is the claim.
        self.assertIs(floor_pixels, data.split("train_a").pixels)
        self.assertIs(floor_labels, data.split("train_a").labels)
        self.assertIs(ceiling_pixels, data.split("train_b").pixels)
        self.assertIs(ceiling_labels, data.split("train_b").labels)
