"""Tests of the unaligned folder pipeline: preprocess modes, pairing of A and B, and the
exact-resume contract (an epoch is a pure function of (seed, epoch))."""
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from tests.data.folder_data import flat, grey_levels, numpy_batches, smooth, write
from tfattncut.config import Config
from tfattncut.data.unaligned import UnalignedFolders


class PipelineTest(tf.test.TestCase, parameterized.TestCase):

    def _root(self, name, a_levels, b_levels, size=(18, 26)):
        """trainA/trainB of flat images whose grey levels identify them."""
        root = os.path.join(self.get_temp_dir(), name)
        for side, levels in (("A", a_levels), ("B", b_levels)):
            write(os.path.join(root, "train" + side),
                   {f"{i:03d}.png": Image.fromarray(flat(v, *size)) for i, v in enumerate(levels)})
        return root

    @parameterized.parameters(
        # 18 x 26 sources, load 14, crop 8; sides rounded to the nearest multiple of 4, halves
        # to even as Python's round: 18 -> 16, 26 -> 24, 14 -> 16, 9 -> 8.
        ("resize_and_crop", (8, 8)),
        ("crop", (8, 8)),
        ("scale_width", (8, 16)),  # width 14, height max(14 * 18 // 26, 8) = 9
        ("scale_width_and_crop", (8, 8)),
        ("none", (16, 24)),
    )
    def test_shapes_and_range(self, preprocess, size):
        root = os.path.join(self.get_temp_dir(), preprocess)
        for side in "AB":
            write(os.path.join(root, "train" + side),
                   {f"{i}.png": Image.fromarray(smooth(18, 26, i)) for i in range(3)})
        data = UnalignedFolders(Config(dataroot=root, preprocess=preprocess, load_size=14,
                                       crop_size=8))
        dataset = data.epoch_dataset(1, batch_size=2)
        self.assertEqual(data.steps_per_epoch(2), 1)
        self.assertEqual(dataset.element_spec["a"].shape.as_list(), [2, *size, 3])
        (batch,) = numpy_batches(dataset)
        for name in ("a", "b"):
            self.assertEqual(batch[name].dtype, np.float32)
            self.assertEqual(batch[name].shape, (2, *size, 3))
            self.assertBetween(batch[name].min(), -1.0, -0.2)
            self.assertBetween(batch[name].max(), 0.2, 1.0)

    def test_batching_mixed_sizes_without_crop_is_an_error(self):
        root = os.path.join(self.get_temp_dir(), "mixed")
        write(os.path.join(root, "trainA"), {"0.png": Image.fromarray(flat(9, 8, 8)),
                                              "1.png": Image.fromarray(flat(9, 12, 8))})
        write(os.path.join(root, "trainB"), {"0.png": Image.fromarray(flat(9, 8, 8))})
        data = UnalignedFolders(Config(dataroot=root, preprocess="none"))
        with self.assertRaisesRegex(ValueError, "--batch_size=2 stacks images into batches, so "
                                                "the training images need one size, but "
                                                "--preprocess=none .* gives 2 sizes"):
            data.epoch_dataset(1, 2)
        with self.assertRaisesRegex(ValueError, "^one batch, so .*; turn it off or use a "
                                                "cropping --preprocess"):
            data.require_one_size("one batch", "turn it off")
        shapes = sorted(b["a"].shape for b in numpy_batches(data.epoch_dataset(1, 1)))
        self.assertEqual(shapes, [(1, 8, 8, 3), (1, 12, 8, 3)])

    def test_crop_larger_than_an_image_names_it(self):
        root = self._root("small", [10], [20], size=(6, 20))
        with self.assertRaisesRegex(ValueError, "--crop_size=8.*000.png"):
            UnalignedFolders(Config(dataroot=root, preprocess="crop", crop_size=8))

    def test_random_crop_is_a_window_of_the_resized_image_maybe_mirrored(self):
        root = os.path.join(self.get_temp_dir(), "windows")
        source = smooth(20, 20)
        for side in "AB":
            write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(source)})
        data = UnalignedFolders(Config(dataroot=root, preprocess="crop", crop_size=8, seed=3))
        full = source.astype(np.float32) / 127.5 - 1
        found_offsets, found_flips = set(), set()
        for epoch in range(1, 9):
            (batch,) = numpy_batches(data.epoch_dataset(epoch, 1))
            for view in (batch["a"][0], batch["b"][0]):
                # Exact: crop and flip copy pixels (the same-size resize weighs each by exactly
                # 1), and x / 127.5 - 1 rounds alike in NumPy and TF (correctly rounded float32).
                matches = [(y, x, flip) for y in range(13) for x in range(13) for flip in (0, 1)
                           if np.array_equal(view[:, ::-1] if flip else view,
                                             full[y:y + 8, x:x + 8])]
                self.assertLen(matches, 1)
                found_offsets.add(matches[0][:2])
                found_flips.add(matches[0][2])
        self.assertGreater(len(found_offsets), 8)
        self.assertEqual(found_flips, {0, 1})

    def test_same_seed_and_epoch_repeat_other_epochs_and_seeds_differ(self):
        root = os.path.join(self.get_temp_dir(), "determinism")
        for side in "AB":
            write(os.path.join(root, "train" + side),
                   {f"{i}.png": Image.fromarray(smooth(16, 16, i)) for i in range(4)})
        config = Config(dataroot=root, load_size=12, crop_size=8, seed=7)
        first = numpy_batches(UnalignedFolders(config).epoch_dataset(3, 2))
        again = numpy_batches(UnalignedFolders(config).epoch_dataset(3, 2))
        for x, y in zip(first, again):
            # The same ops on the same files and draws in one process.
            self.assertAllEqual(x["a"], y["a"])
            self.assertAllEqual(x["b"], y["b"])
        for other in (UnalignedFolders(config).epoch_dataset(4, 2),
                      UnalignedFolders(Config(dataroot=root, load_size=12, crop_size=8, seed=8))
                      .epoch_dataset(3, 2)):
            self.assertNotAllClose(np.stack([b["a"] for b in first]),
                                   np.stack([b["a"] for b in numpy_batches(other)]))

    def test_skip_batches_equals_dropping_them(self):
        root = self._root("skip", range(0, 70, 10), range(100, 150, 10))
        data = UnalignedFolders(Config(dataroot=root, preprocess="crop", crop_size=8, seed=5))
        full = numpy_batches(data.epoch_dataset(2, 2))
        self.assertLen(full, 3)  # max(7, 5) // 2
        for skip in (1, 3):
            resumed = numpy_batches(data.epoch_dataset(2, 2, skip_batches=skip))
            self.assertLen(resumed, 3 - skip)
            for x, y in zip(full[skip:], resumed):
                # Each image goes through the same ops with the same draws in one process.
                self.assertAllEqual(x["a"], y["a"])
                self.assertAllEqual(x["b"], y["b"])
        with self.assertRaisesRegex(ValueError, r"skip_batches must be in \[0, 3\]"):
            data.epoch_dataset(2, 2, skip_batches=4)

    def test_serial_batches_walk_a_and_b_in_sorted_order(self):
        a_levels, b_levels = [10, 20, 30], [100, 110, 120, 130, 140]
        root = self._root("serial", a_levels, b_levels)
        data = UnalignedFolders(Config(dataroot=root, preprocess="none", serial_batches=True))
        batches = numpy_batches(data.epoch_dataset(1, 1))
        # The reference's index i in range(max(A, B)) picks A[i % |A|] and B[i % |B|].
        self.assertEqual([int(grey_levels(b["a"])[0]) for b in batches], [10, 20, 30, 10, 20])
        self.assertEqual([int(grey_levels(b["b"])[0]) for b in batches], b_levels)

    def test_shuffled_epoch_covers_a_and_draws_b_at_random(self):
        a_levels, b_levels = list(range(0, 80, 10)), [100, 110, 120]
        root = self._root("shuffled", a_levels, b_levels)
        data = UnalignedFolders(Config(dataroot=root, preprocess="none"))
        orders = []
        for epoch in (1, 2):
            batches = numpy_batches(data.epoch_dataset(epoch, 2))
            a = np.concatenate([grey_levels(b["a"]) for b in batches]).tolist()
            b = np.concatenate([grey_levels(b["b"]) for b in batches]).tolist()
            self.assertCountEqual(a, a_levels)
            self.assertContainsSubset(b, b_levels)
            self.assertNotEqual(b, (b_levels * 3)[:len(b)])  # not the serial pattern
            orders.append(a)
        self.assertNotEqual(orders[0], sorted(a_levels))
        self.assertNotEqual(orders[0], orders[1])

    def test_b_to_a_swaps_the_folders(self):
        root = self._root("swap", [10, 20], [200, 210, 220])
        data = UnalignedFolders(Config(dataroot=root, preprocess="none", direction="BtoA",
                                       serial_batches=True))
        self.assertEqual((data.size_a, data.size_b), (3, 2))
        batches = numpy_batches(data.epoch_dataset(1, 3))
        self.assertEqual(grey_levels(batches[0]["a"]).tolist(), [200, 210, 220])
        self.assertEqual(grey_levels(batches[0]["b"]).tolist(), [10, 20, 10])

    def test_after_n_epochs_resizes_straight_to_crop_size(self):
        root = os.path.join(self.get_temp_dir(), "finetune")
        source = smooth(24, 24)
        for side in "AB":
            write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(source)})
        data = UnalignedFolders(Config(dataroot=root, load_size=20, crop_size=12, n_epochs=2))
        # Oracle: PIL's bicubic resize, which the reference applies (load_size := crop_size).
        plain = np.asarray(Image.fromarray(source).resize((12, 12), Image.BICUBIC))
        plain = plain.astype(np.float32) / 127.5 - 1

        def error(view):
            """Distance to the plain resize up to a horizontal flip, in grey levels."""
            return 127.5 * min(np.abs(view - plain).max(), np.abs(view[:, ::-1] - plain).max())

        for epoch in (3, 4, 5):
            (batch,) = numpy_batches(data.epoch_dataset(epoch, 1))
            self.assertLess(error(batch["a"][0]), 2.0)
            self.assertLess(error(batch["b"][0]), 2.0)
        (batch,) = numpy_batches(data.epoch_dataset(2, 1))  # still resize to 20 and crop 12
        self.assertGreater(error(batch["a"][0]), 10.0)

    def test_steps_per_epoch_drops_the_remainder_and_rejects_big_batches(self):
        root = self._root("steps", range(0, 50, 10), [100, 110])
        data = UnalignedFolders(Config(dataroot=root, preprocess="none"))
        self.assertEqual([data.steps_per_epoch(n) for n in (1, 2, 5)], [5, 2, 1])
        self.assertLen(numpy_batches(data.epoch_dataset(1, 2)), 2)
        with self.assertRaisesRegex(ValueError, "--batch_size=6 exceeds the 5 images"):
            data.steps_per_epoch(6)

    def test_missing_domain_folder_is_named(self):
        root = os.path.join(self.get_temp_dir(), "half")
        write(os.path.join(root, "trainA"), {"x.png": Image.new("RGB", (4, 4))})
        with self.assertRaisesRegex(FileNotFoundError, "trainB"):
            UnalignedFolders(Config(dataroot=root))


class LabelStreamTest(tf.test.TestCase, parameterized.TestCase):
    """The label maps of a domain's images, served with them as one view."""

    def _root(self, name, a_levels, b_levels, size=(12, 16)):
        """trainA, trainB of flat images named by their grey level, and trainA_labels,
        trainB_labels of flat maps whose label id is the level // 9 (a Cityscapes id)."""
        root = os.path.join(self.get_temp_dir(), name)
        for side, levels in (("A", a_levels), ("B", b_levels)):
            write(os.path.join(root, "train" + side),
                  {f"{v:03d}.png": Image.fromarray(flat(v, *size)) for v in levels})
            write(os.path.join(root, f"train{side}_labels"),
                  {f"{v:03d}.png": Image.fromarray(np.full(size, v // 9, np.uint8))
                   for v in levels})
        return root

    @parameterized.parameters(True, False)
    def test_each_image_comes_with_its_own_map_and_no_draw_changes(self, cache):
        # Label ids 7, 8, 11, 26 are train ids 0, 1, 2, 13; 3 is "out of roi": ignored.
        root = self._root("paired", [63, 72, 99, 234, 27], [108, 207])
        write(os.path.join(root, "trainA"), {"broken.png": b"not an image"})  # skipped
        config = Config(dataroot=root, load_size=14, crop_size=8, seed=3)
        data = UnalignedFolders(config, cache=cache, streams=("a", "b", "a_labels"))
        self.assertEqual(data.num_skipped, 1)
        plain = numpy_batches(UnalignedFolders(config).epoch_dataset(2, 1))
        batches = numpy_batches(data.epoch_dataset(2, 1))
        train_ids = {63: 0, 72: 1, 99: 2, 234: 13, 27: 255}
        for with_labels, without in zip(batches, plain):
            self.assertEqual(with_labels["a_labels"].dtype, np.int32)
            self.assertEqual(with_labels["a_labels"].shape, (1, 8, 8))
            # The image planes take the same resize at the same shape in one process; crop
            # and flip copy.
            self.assertAllEqual(with_labels["a"], without["a"])
            self.assertAllEqual(with_labels["b"], without["b"])
            level = int(grey_levels(with_labels["a"])[0])
            self.assertAllEqual(with_labels["a_labels"][0], np.full([8, 8], train_ids[level]))

    def test_streams_serve_only_what_is_asked_b_to_a_reads_b_labels(self):
        root = self._root("swap", [63, 72], [99, 234, 216])
        data = UnalignedFolders(Config(dataroot=root, preprocess="none", direction="BtoA",
                                       serial_batches=True), streams=("a", "a_labels"))
        (batch,) = numpy_batches(data.epoch_dataset(1, 3))
        self.assertCountEqual(batch, ["a", "a_labels"])
        self.assertEqual(grey_levels(batch["a"]).tolist(), [99, 216, 234])
        self.assertEqual(batch["a_labels"][:, 0, 0].tolist(), [2, 11, 13])
        with self.assertRaisesRegex(ValueError, r"Input streams \['c'\]: the unaligned folders "
                                                "serve a, b, a_labels, b_labels"):
            UnalignedFolders(data.config, streams=("a", "c"))

    def test_missing_wrong_and_misfit_label_maps_are_named(self):
        root = self._root("bad", [63, 72], [99])
        labels = os.path.join(root, "trainA_labels")
        config = Config(dataroot=root, preprocess="none")
        os.remove(os.path.join(labels, "072.png"))
        with self.assertRaisesRegex(FileNotFoundError, "^The input stream a_labels of the "
                                                       "method needs a label map per image of "
                                                       f".*trainA: {labels} has no file for 1 "
                                                       "of the 2 images, e.g. .*trainA/072.png"):
            UnalignedFolders(config, streams=("a", "b", "a_labels"))
        write(labels, {"072.png": Image.new("RGB", (16, 12))})
        with self.assertRaisesRegex(ValueError, "072.png has mode RGB: expected a "
                                                "single-channel map"):
            UnalignedFolders(config, streams=("a", "b", "a_labels"))
        write(labels, {"072.png": Image.new("L", (16, 10))})
        with self.assertRaisesRegex(ValueError, r"072.png is \(10, 16\) but its image .*"
                                                r"trainA/072.png is \(12, 16\)"):
            UnalignedFolders(config, streams=("a", "b", "a_labels"))
        with self.assertRaisesRegex(FileNotFoundError, "trainB_labels does not exist"):
            os.rename(os.path.join(root, "trainB_labels"), os.path.join(root, "gone"))
            UnalignedFolders(config, streams=("a", "b", "b_labels"))
