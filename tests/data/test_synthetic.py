"""Tests of the synthetic street-scene data set on tiny sets (64 x 64, a few images)."""
import filecmp
import json
import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.data import labels as labels_lib
from tfattncut.data import synthetic
from tfattncut.data.street_scenes import SCENE_LABEL_IDS

_ARGS = dict(size=64, num_train=3, num_test=2, seed=0)


def _load(path):
    return np.asarray(Image.open(path))


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


class SyntheticDatasetTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.out = os.path.join(cls.root, "synth")
        cls.counts = synthetic.generate_dataset(cls.out, progress=False, **_ARGS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)
        super().tearDownClass()

    def _path(self, folder, index, ext):
        return os.path.join(self.out, folder, f"{index:06d}.{ext}")

    def test_layout_and_counts(self):
        n, m = _ARGS["num_train"], _ARGS["num_test"]
        expected = {"trainA": n, "trainA_labels": n, "trainB": n, "trainB_labels": n,
                    "testA": m, "testA_labels": m, "testB": m, "testB_labels": m,
                    "testA_as_B": m}
        self.assertEqual(self.counts, expected)
        extensions = {"trainA": "png", "testA": "png", "trainB": "jpg", "testB": "jpg",
                      "testA_as_B": "jpg"}
        for folder, count in expected.items():
            ext = extensions.get(folder, "png")
            self.assertEqual(sorted(os.listdir(os.path.join(self.out, folder))),
                             [f"{i:06d}.{ext}" for i in range(count)], folder)
        with open(os.path.join(self.out, synthetic.MANIFEST)) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["arguments"], _ARGS)
        self.assertEqual(manifest["counts"], expected)
        self.assertTrue(os.path.isfile(os.path.join(self.out, "README.txt")))
        self.assertEqual(os.listdir(self.root), ["synth"])   # no partial folder left

    def test_labels_json(self):
        with open(os.path.join(self.out, "labels.json")) as f:
            labels = json.load(f)
        self.assertEqual([l["id"] for l in labels["labels"]], list(SCENE_LABEL_IDS))
        self.assertEqual({l["name"]: l["train_id"] for l in labels["labels"]},
                         {"road": 0, "sidewalk": 1, "building": 2, "pole": 5,
                          "traffic light": 6, "vegetation": 8, "sky": 10, "car": 13})
        self.assertEqual([c["train_id"] for c in labels["train_classes"]], list(range(19)))
        self.assertEqual(labels["train_ids"]["26"], 13)
        self.assertEqual(labels["train_ids"]["0"], 255)

    def test_same_seed_gives_identical_bytes_serial_or_parallel(self):
        again = os.path.join(self.root, "again")
        synthetic.generate_dataset(again, progress=False, num_workers=2, **_ARGS)
        try:
            self.assertEqual(_files(again), _files(self.out))
            _, mismatch, errors = filecmp.cmpfiles(self.out, again, _files(self.out),
                                                   shallow=False)
            self.assertEqual((mismatch, errors), ([], []))
        finally:
            shutil.rmtree(again)

    def test_different_seed_gives_different_images(self):
        for domain in ("A", "B"):
            first = synthetic.render_example("train", domain, 0, 64, seed=0)
            second = synthetic.render_example("train", domain, 0, 64, seed=1)
            self.assertFalse(np.array_equal(first.labels, second.labels), domain)
            self.assertFalse(np.array_equal(first.image, second.image), domain)

    def test_render_example_matches_the_written_files(self):
        example = synthetic.render_example("train", "A", 1, 64, seed=0)
        self.assertAllEqual(example.image, _load(self._path("trainA", 1, "png")))
        self.assertAllEqual(example.labels, _load(self._path("trainA_labels", 1, "png")))

    def test_labels_use_listed_ids_and_image_size(self):
        for split, count in (("train", _ARGS["num_train"]), ("test", _ARGS["num_test"])):
            for domain, ext in (("A", "png"), ("B", "jpg")):
                for i in range(count):
                    image = _load(self._path(f"{split}{domain}", i, ext))
                    labels = _load(self._path(f"{split}{domain}_labels", i, "png"))
                    self.assertEqual(image.shape, (64, 64, 3))
                    self.assertEqual(labels.shape, (64, 64))
                    self.assertEqual(labels.dtype, np.uint8)
                    self.assertContainsSubset(set(np.unique(labels).tolist()),
                                              set(SCENE_LABEL_IDS))
                    # Every scene has sky, road and sidewalk.
                    self.assertContainsSubset(
                        {labels_lib.SKY, labels_lib.ROAD, labels_lib.SIDEWALK},
                        set(np.unique(labels).tolist()))

    def test_train_domains_are_unpaired(self):
        for i in range(_ARGS["num_train"]):
            self.assertFalse(np.array_equal(_load(self._path("trainA_labels", i, "png")),
                                            _load(self._path("trainB_labels", i, "png"))))

    def test_test_a_as_b_keeps_geometry_and_changes_style(self):
        for i in range(_ARGS["num_test"]):
            a = _load(self._path("testA", i, "png")).astype(np.float32)
            a_as_b = _load(self._path("testA_as_B", i, "jpg")).astype(np.float32)
            self.assertAllEqual(synthetic.render_example("test", "A_as_B", i, 64).labels,
                                _load(self._path("testA_labels", i, "png")))
            self.assertGreater(np.mean(np.abs(a - a_as_b)), 10.0)

    def test_b_style_is_noisier_and_less_saturated_than_a(self):
        def flat_fraction(image):   # neighbours of exactly the same colour
            return np.mean(np.all(image[:, 1:] == image[:, :-1], -1))

        def saturation(image):
            image = image.astype(np.float32)
            return np.mean((image.max(-1) - image.min(-1)) / np.maximum(image.max(-1), 1))

        stats = {}
        for domain, ext in (("A", "png"), ("B", "jpg")):
            images = [_load(self._path(f"train{domain}", i, ext))
                      for i in range(_ARGS["num_train"])]
            stats[domain] = (np.mean([flat_fraction(x) for x in images]),
                             np.mean([saturation(x) for x in images]))
        self.assertGreater(stats["A"][0], 0.6)
        self.assertLess(stats["B"][0], 0.1)
        self.assertLess(stats["B"][1], 0.75 * stats["A"][1])

    def test_ensure_dataset_keeps_a_complete_set(self):
        manifest = os.path.join(self.out, synthetic.MANIFEST)
        before = os.stat(manifest)
        with mock.patch.object(synthetic, "generate_dataset") as generate:
            self.assertEqual(synthetic.ensure_dataset(self.out, progress=False, **_ARGS),
                             self.out)
            with self.assertLogs("absl", "WARNING") as logs:
                synthetic.ensure_dataset(self.out, size=96, num_train=3, num_test=2)
        generate.assert_not_called()
        self.assertIn("'size': 64", logs.output[0])
        self.assertEqual((os.stat(manifest).st_ino, os.stat(manifest).st_mtime_ns),
                         (before.st_ino, before.st_mtime_ns))

    def test_ensure_dataset_generates_a_missing_or_incomplete_set(self):
        out = os.path.join(self.get_temp_dir(), "ensure")
        args = dict(size=64, num_train=1, num_test=1, seed=3, progress=False)
        self.assertEqual(synthetic.ensure_dataset(out, **args), out)
        self.assertLen(os.listdir(os.path.join(out, "trainB")), 1)
        os.remove(os.path.join(out, "testB", "000000.jpg"))
        synthetic.ensure_dataset(out, **args)
        self.assertEqual(os.listdir(os.path.join(out, "testB")), ["000000.jpg"])
        # A file the user added (to train on the mix) leaves the set complete and untouched.
        added = os.path.join(out, "trainA", "my_frame.png")
        with open(added, "w") as f:
            f.write("keep me")
        with mock.patch.object(synthetic, "generate_dataset") as generate:
            synthetic.ensure_dataset(out, **args)
        generate.assert_not_called()
        self.assertTrue(os.path.exists(added))

    def test_a_crash_leaves_no_set_that_looks_complete(self):
        root = self.get_temp_dir()
        out = os.path.join(root, "crash")
        real = synthetic.render_example

        def fail_on_test_images(split, *args):
            if split == "test":
                raise RuntimeError("simulated crash")
            return real(split, *args)

        with mock.patch.object(synthetic, "render_example", fail_on_test_images):
            with self.assertRaisesRegex(RuntimeError, "simulated crash"):
                synthetic.generate_dataset(out, progress=False, **_ARGS)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(root) if f.startswith("crash")], [])

    def test_foreign_folder_is_not_overwritten(self):
        out = os.path.join(self.get_temp_dir(), "mine")
        os.makedirs(out)
        with open(os.path.join(out, "notes.txt"), "w") as f:
            f.write("keep me")
        with self.assertRaisesRegex(FileExistsError,
                                    f"^--dataroot={out} holds files but no synthetic data set"):
            synthetic.generate_dataset(out, progress=False, **_ARGS)
        self.assertEqual(os.listdir(out), ["notes.txt"])
        with open(os.path.join(out, synthetic.MANIFEST), "w") as f:
            f.write("[1, 2]")  # JSON, but not a manifest: was an AttributeError traceback
        with self.assertRaisesRegex(FileExistsError,
                                    f"^--dataroot={out} holds files but no synthetic data set"):
            synthetic.generate_dataset(out, progress=False, **_ARGS)

    def test_files_added_to_a_synthetic_set_are_not_replaced_with_it(self):
        out = os.path.join(self.get_temp_dir(), "synth_added")
        synthetic.generate_dataset(out, progress=False, **_ARGS)
        synthetic.generate_dataset(out, progress=False, **{**_ARGS, "seed": 1})  # ours: replaced
        # Names of the set's own shape are not its own either (they were taken as its files
        # and deleted): only its exact names are.
        for added in (os.path.join(out, "trainA", "my_frame.png"),
                      os.path.join(out, "notes.txt"), os.path.join(out, "trainB", "1.png"),
                      os.path.join(out, "trainA", "000000.tif"),
                      os.path.join(out, "trainA_labels", "000000.txt")):
            with open(added, "w") as f:
                f.write("keep me")
            with self.assertRaisesRegex(FileExistsError,
                                        f"^--dataroot={out} holds a synthetic data set and "
                                        f"{added}, which the set did not write"):
                synthetic.generate_dataset(out, progress=False, **_ARGS)
            with open(added) as f:
                self.assertEqual(f.read(), "keep me")
            os.remove(added)

    def test_a_file_as_the_output_folder_is_refused_before_rendering(self):
        out = os.path.join(self.get_temp_dir(), "notes.txt")
        with open(out, "w") as f:
            f.write("keep me")
        with mock.patch.object(synthetic, "_run") as render:
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"^--dataroot={out}: {out} exists and is not a folder"):
                synthetic.generate_dataset(out, progress=False, **_ARGS)
            # Below a file: named, not os.makedirs' traceback.
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"^--out={out}/set: {out} exists and is not a folder"):
                synthetic.ensure_dataset(os.path.join(out, "set"), progress=False,
                                         flag="--out", **_ARGS)
        render.assert_not_called()
        with open(out) as f:
            self.assertEqual(f.read(), "keep me")

    def test_size_below_64_is_refused(self):
        out = os.path.join(self.get_temp_dir(), "small")
        with self.assertRaisesRegex(ValueError, r"size must be an integer >= 64.*got 63"):
            synthetic.generate_dataset(out, size=63, progress=False)
        with self.assertRaisesRegex(ValueError, r"size must be an integer >= 64.*got 32"):
            synthetic.render_example("train", "A", 0, size=32)
        self.assertFalse(os.path.exists(out))
