"""Score files: read together only when one set of scorers measured them on one data set;
runs that returned their input are flagged."""
import os

import tensorflow as tf

from tests.study.records import REFERENCES, FakeScorers, record, write
from tfattncut.study import scores


class LoadTest(tf.test.TestCase):

    def test_scores_of_other_scorers_or_data_are_refused_by_name(self):
        study_dir = self.get_temp_dir()
        write(study_dir, "cut_seed0", record("cut", 0, 0.3))
        self.assertEqual(list(scores.load([study_dir], FakeScorers())), ["cut_seed0"])
        for key, value in (("scorer", "aaaaaaaaaaaaaaaa"), ("data_hash", "bbbbbbbbbbbbbbbb")):
            other = os.path.join(self.get_temp_dir(), key)
            path = write(other, "cut_seed1", record("cut", 1, 0.3, **{key: value}))
            with self.assertRaisesRegex(ValueError, f"^{path} was measured with scorer .* "
                                                    "not comparable"):
                scores.load([study_dir, other], FakeScorers())

    def test_scores_on_an_added_rendering_of_the_data_are_read(self):
        study_dir = self.get_temp_dir()
        write(study_dir, "cut_seed0", record("cut", 0, 0.3))
        write(study_dir, "cut_seed1", record("cut", 1, 0.3, data_hash="cccccccccccccccc"))
        added = FakeScorers()
        added.data_hashes = (*added.data_hashes, "cccccccccccccccc")
        self.assertEqual(list(scores.load([study_dir], added)), ["cut_seed0", "cut_seed1"])
        with self.assertRaisesRegex(ValueError, "cut_seed1.json was measured with scorer "
                                                ".* on data cccccccccccccccc"):
            scores.load([study_dir], FakeScorers())

    def test_a_run_scored_twice_is_named(self):
        first, second = (os.path.join(self.get_temp_dir(), d) for d in ("a", "b"))
        for directory in (first, second):
            write(directory, "cut_seed0", record("cut", 0, 0.3))
        with self.assertRaisesRegex(ValueError, "cut_seed0 was scored twice: .*a/scores/"
                                                "cut_seed0.json and .*b/scores/cut_seed0.json"):
            scores.load([first, second], FakeScorers())

    def test_a_file_that_is_no_score_is_named(self):
        study_dir = self.get_temp_dir()
        path = write(study_dir, "cut_seed0", {"variant": "cut", "seed": 0})
        with self.assertRaisesRegex(ValueError, f"{path} is not a score file of this study "
                                                "\\(no stage, scorer, data_hash, machine\\)"):
            scores.load([study_dir], FakeScorers())

    def test_a_merged_folder_without_scores_is_named(self):
        merged = os.path.join(self.get_temp_dir(), "other")
        write(merged, "cut_seed0", record("cut", 0, 0.3))
        scores.check_merged([merged])
        missing = os.path.join(self.get_temp_dir(), "mistyped")
        with self.assertRaisesRegex(ValueError, f"^--merge: {missing} holds no score file"):
            scores.check_merged([merged, missing])


class CollapseTest(tf.test.TestCase):

    def test_a_run_near_its_input_is_flagged(self):
        self.assertFalse(scores.collapsed(record("cut", 0, 0.3)))
        self.assertTrue(scores.collapsed(record("uag", 0, 0.09, distance=0.004)))

    def test_a_translation_scored_as_the_untranslated_input_is_not_flagged(self):
        # cut_seed109 of the study: its translations lie 0.170 from testA (KID 2.0, the
        # untranslated testA's 98.2), yet its label mIoU 0.4730 came within 0.0005 of the
        # untranslated testA's 0.4734; a label criterion had set it apart as a collapse.
        cut_seed109 = record("cut", 109, 0.327, stage="confirm",
                             label=REFERENCES["untranslated"]["label_miou"] - 0.0005,
                             distance=0.16971798614302494, kid_seg=2.021916360179917)
        self.assertFalse(scores.collapsed(cut_seed109))
