"""Tests of the unaligned folder data set: decoding against Pillow, preprocess modes, and the
exact-resume contract (an epoch is a pure function of (seed, epoch))."""
import io
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from tfattncut.data import folders as folders_lib
from tfattncut.data.folders import DataOptions, UnalignedFolders


def _smooth(height, width, phase=0.0):
    """uint8 [H, W, 3] with smooth colour waves (resampling oracles agree closely on it)."""
    y, x = np.mgrid[0:height, 0:width]
    waves = [128 + 100 * np.sin(x / 4 + phase + k) * np.cos(y / 5 - phase) for k in range(3)]
    return np.stack(waves, -1).clip(0, 255).astype(np.uint8)


def _flat(value, height, width):
    """uint8 [H, W, 3] of one grey level: survives any crop, flip or resize, so it names the
    file an output came from."""
    return np.full([height, width, 3], value, np.uint8)


def _write(folder, images):
    """Writes {file name: PIL image or bytes} into `folder`."""
    os.makedirs(folder, exist_ok=True)
    for name, image in images.items():
        path = os.path.join(folder, name)
        if isinstance(image, bytes):
            with open(path, "wb") as f:
                f.write(image)
        else:
            image.save(path)


def _levels(batch):
    """[B, H, W, 3] in [-1, 1] -> the grey level (0..255) of each flat image, [B]."""
    return np.round((batch[:, 0, 0, 0] + 1) * 127.5).astype(int)


def _batches(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


class ListImagesTest(tf.test.TestCase):

    def test_sorted_images_only_any_case_subfolders_included(self):
        folder = os.path.join(self.get_temp_dir(), "mixed")
        _write(folder, {"b.PNG": Image.new("RGB", (4, 4)), "a.jpeg": Image.new("RGB", (4, 4)),
                        "c.Gif": Image.new("P", (4, 4)), "d.ppm": Image.new("RGB", (4, 4)),
                        "e.TIFF": Image.new("RGB", (4, 4)), "notes.txt": b"hello"})
        _write(os.path.join(folder, "sub.png"), {"f.tif": Image.new("RGB", (4, 4)),
                                                 "g.PPM": Image.new("RGB", (4, 4))})
        names = [os.path.relpath(p, folder) for p in folders_lib.list_images(folder)]
        self.assertEqual(names, ["a.jpeg", "b.PNG", "c.Gif", "d.ppm", "e.TIFF",
                                 "sub.png/f.tif", "sub.png/g.PPM"])

    def test_cap_keeps_the_first_files_in_the_references_walk_order(self):
        root = os.path.join(self.get_temp_dir(), "tree")
        tree = {"trainA": ["b.png", "a.png", "c.tif"], "trainA/sub": ["z.png", "y.jpg"],
                "trainA/sub/deeper": ["k.png"], "trainA/sub-2": ["m.png"]}
        levels = {}
        for folder, names in tree.items():
            images = {}
            for name in names:
                levels[os.path.join(root, folder, name)] = 10 * (len(levels) + 1)
                images[name] = Image.fromarray(_flat(levels[os.path.join(root, folder, name)],
                                                     8, 8))
            _write(os.path.join(root, folder), {**images, "notes.txt": b"not an image"})
        _write(os.path.join(root, "trainB"), {"0.png": Image.fromarray(_flat(200, 8, 8))})
        # Oracle, by hand: the reference visits folders in sorted path order, where
        # "sub-2" < "sub/deeper" ('-' sorts before '/'), and each folder's files in the order
        # the file system lists them; the cap takes a prefix of that, which is then sorted.
        walk = [os.path.join(root, folder, name)
                for folder in ("trainA", "trainA/sub", "trainA/sub-2", "trainA/sub/deeper")
                for name in os.listdir(os.path.join(root, folder)) if name in tree[folder]]
        folder_a = os.path.join(root, "trainA")
        self.assertEqual(folders_lib.list_images(folder_a), sorted(walk))
        for cap in range(1, len(walk) + 1):
            self.assertEqual(folders_lib.list_images(folder_a, cap), sorted(walk[:cap]), cap)
        data = UnalignedFolders(DataOptions(root, preprocess="none", serial_batches=True,
                                            max_dataset_size=4))
        self.assertEqual((data.size_a, data.size_b), (4, 1))
        (batch,) = _batches(data.epoch_dataset(1, 4))
        self.assertEqual(_levels(batch["a"]).tolist(), [levels[p] for p in sorted(walk[:4])])

    def test_missing_folder_is_named(self):
        folder = os.path.join(self.get_temp_dir(), "nowhere")
        with self.assertRaisesRegex(FileNotFoundError, "nowhere.*does not exist"):
            folders_lib.list_images(folder)

    def test_empty_folder_is_named(self):
        folder = os.path.join(self.get_temp_dir(), "empty")
        _write(folder, {"readme.txt": b"no images"})
        with self.assertRaisesRegex(ValueError, "empty has no images"):
            folders_lib.list_images(folder)

    def test_missing_domain_folder_is_named(self):
        root = os.path.join(self.get_temp_dir(), "half")
        _write(os.path.join(root, "trainA"), {"x.png": Image.new("RGB", (4, 4))})
        with self.assertRaisesRegex(FileNotFoundError, "trainB"):
            UnalignedFolders(DataOptions(root))


class DecodeTest(tf.test.TestCase):
    """Every readable format against Pillow's own decoding (the reference's convert('RGB'))."""

    def setUp(self):
        super().setUp()
        rgb = _smooth(12, 16)
        deep = (np.arange(12 * 16).reshape(12, 16) * 331 % 65536).astype(np.uint16)
        frames = [Image.fromarray(rgb).quantize(32), Image.fromarray(255 - rgb).quantize(32)]
        gif = io.BytesIO()
        frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
        png = io.BytesIO()
        Image.fromarray(rgb).save(png, "PNG")
        self.good = {
            "gray.png": Image.fromarray(rgb[..., 0]),
            "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
            "palette.png": Image.fromarray(rgb).quantize(16),
            "deep.png": Image.fromarray(deep),
            "animated.gif": gif.getvalue(),
            "plain.bmp": Image.fromarray(rgb),
            "palette.bmp": Image.fromarray(rgb).quantize(16),
            "photo.jpg": Image.fromarray(rgb),
            "photo2.JPEG": Image.fromarray(_smooth(12, 16, 1.0)).convert("L"),
            # TF cannot decode these two formats; Pillow (the reference's loader) does.
            "plain.tif": Image.fromarray(rgb),
            "rgba.TIFF": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
            "gray.tiff": Image.fromarray(rgb[..., 1]),
            "plain.ppm": Image.fromarray(rgb),
            "gray.PPM": Image.fromarray(rgb[..., 2]),  # Pillow writes a binary PGM (P5)
        }
        tiff = io.BytesIO()
        Image.fromarray(rgb).save(tiff, "TIFF")
        self.bad = {"broken.png": png.getvalue()[:60], "notes.jpg": b"not an image at all",
                    "broken.tif": tiff.getvalue()[:40], "broken.ppm": b"P6\n16 12\n255\n123"}
        self.root = os.path.join(self.get_temp_dir(), "formats")
        _write(os.path.join(self.root, "trainA"), {**self.good, **self.bad})
        _write(os.path.join(self.root, "trainB"), {"b.png": Image.fromarray(rgb)})
        # Pillow clips 16-bit values to 255 in convert('RGB'); the oracle is the top byte.
        self.oracle = {"deep.png": np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, -1)}

    def test_formats_match_pillow(self):
        for name in self.good:
            path = os.path.join(self.root, "trainA", name)
            expected = self.oracle.get(name)
            if expected is None:
                expected = np.asarray(Image.open(path).convert("RGB"))
            decoded = (folders_lib.load_image(path).numpy() + 1) * 127.5
            self.assertEqual(decoded.shape, (12, 16, 3), name)
            # JPEG: both use libjpeg's accurate IDCT; one level of slack for other builds.
            # Others are lossless: the levels agree up to the float round trip via [-1, 1].
            tolerance = 1.01 if name.lower().endswith(("jpg", "jpeg")) else 1e-3
            self.assertAllClose(decoded, expected, atol=tolerance, rtol=0, msg=name)

    def test_netpbm_and_tiff_headers_pick_pillow_whatever_the_name(self):
        """Formats are told by content, not name: a PPM saved as .png decodes too."""
        rgb = _smooth(6, 10)
        path = os.path.join(self.get_temp_dir(), "really_a_ppm.png")
        Image.fromarray(rgb).save(path, "PPM")
        self.assertAllEqual(folders_lib.read_image(path), rgb)

    def test_undecodable_files_are_logged_skipped_and_counted(self):
        with self.assertLogs(level="WARNING") as logs:
            data = UnalignedFolders(DataOptions(self.root, preprocess="none", cache=False))
        self.assertEqual(data.num_skipped, len(self.bad))
        self.assertEqual(data.size_a, len(self.good))
        text = "\n".join(logs.output)
        for name in self.bad:
            self.assertIn(os.path.join(self.root, "trainA", name), text)
        self.assertIn(f"Skipped 4 of {len(self.good) + 4}", text)

    def test_load_image_names_an_undecodable_file(self):
        with self.assertRaisesRegex(ValueError, "notes.jpg cannot be decoded"):
            folders_lib.load_image(os.path.join(self.root, "trainA", "notes.jpg"))

    def test_pipeline_pixels_equal_load_image_cached_or_not(self):
        paths = sorted(os.path.join(self.root, "trainA", name) for name in self.good)
        expected = [folders_lib.load_image(p).numpy() for p in paths]
        for cache in (True, False):
            options = DataOptions(self.root, preprocess="none", serial_batches=True,
                                  no_flip=True, cache=cache)
            data = UnalignedFolders(options)
            self.assertEqual(data.cached, cache)
            batches = _batches(data.epoch_dataset(1, 1))
            self.assertLen(batches, len(paths))
            for batch, image in zip(batches, expected):
                self.assertAllEqual(batch["a"][0], image)


class PipelineTest(tf.test.TestCase, parameterized.TestCase):

    def _root(self, name, a_levels, b_levels, size=(18, 26)):
        """trainA/trainB of flat images whose grey levels identify them."""
        root = os.path.join(self.get_temp_dir(), name)
        for side, levels in (("A", a_levels), ("B", b_levels)):
            _write(os.path.join(root, "train" + side),
                   {f"{i:03d}.png": Image.fromarray(_flat(v, *size)) for i, v in enumerate(levels)})
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
            _write(os.path.join(root, "train" + side),
                   {f"{i}.png": Image.fromarray(_smooth(18, 26, i)) for i in range(3)})
        data = UnalignedFolders(DataOptions(root, preprocess=preprocess, load_size=14,
                                            crop_size=8))
        dataset = data.epoch_dataset(1, batch_size=2)
        self.assertEqual(data.steps_per_epoch(2), 1)
        self.assertEqual(dataset.element_spec["a"].shape.as_list(), [2, *size, 3])
        (batch,) = _batches(dataset)
        for name in ("a", "b"):
            self.assertEqual(batch[name].dtype, np.float32)
            self.assertEqual(batch[name].shape, (2, *size, 3))
            self.assertBetween(batch[name].min(), -1.0, -0.2)
            self.assertBetween(batch[name].max(), 0.2, 1.0)

    def test_batching_mixed_sizes_without_crop_is_an_error(self):
        root = os.path.join(self.get_temp_dir(), "mixed")
        _write(os.path.join(root, "trainA"), {"0.png": Image.fromarray(_flat(9, 8, 8)),
                                              "1.png": Image.fromarray(_flat(9, 12, 8))})
        _write(os.path.join(root, "trainB"), {"0.png": Image.fromarray(_flat(9, 8, 8))})
        data = UnalignedFolders(DataOptions(root, preprocess="none"))
        with self.assertRaisesRegex(ValueError, "--batch_size=2 needs training images of one"):
            data.epoch_dataset(1, 2)
        shapes = sorted(b["a"].shape for b in _batches(data.epoch_dataset(1, 1)))
        self.assertEqual(shapes, [(1, 8, 8, 3), (1, 12, 8, 3)])

    def test_crop_larger_than_an_image_names_it(self):
        root = self._root("small", [10], [20], size=(6, 20))
        with self.assertRaisesRegex(ValueError, "--crop_size=8.*000.png"):
            UnalignedFolders(DataOptions(root, preprocess="crop", crop_size=8))

    def test_random_crop_is_a_window_of_the_resized_image_maybe_mirrored(self):
        root = os.path.join(self.get_temp_dir(), "windows")
        source = _smooth(20, 20)
        for side in "AB":
            _write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(source)})
        data = UnalignedFolders(DataOptions(root, preprocess="crop", crop_size=8, seed=3))
        full = source.astype(np.float32) / 127.5 - 1
        found_offsets, found_flips = set(), set()
        for epoch in range(1, 9):
            (batch,) = _batches(data.epoch_dataset(epoch, 1))
            for view in (batch["a"][0], batch["b"][0]):
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
            _write(os.path.join(root, "train" + side),
                   {f"{i}.png": Image.fromarray(_smooth(16, 16, i)) for i in range(4)})
        options = DataOptions(root, load_size=12, crop_size=8, seed=7)
        first = _batches(UnalignedFolders(options).epoch_dataset(3, 2))
        again = _batches(UnalignedFolders(options).epoch_dataset(3, 2))
        for x, y in zip(first, again):
            self.assertAllEqual(x["a"], y["a"])
            self.assertAllEqual(x["b"], y["b"])
        for other in (UnalignedFolders(options).epoch_dataset(4, 2),
                      UnalignedFolders(DataOptions(root, load_size=12, crop_size=8, seed=8))
                      .epoch_dataset(3, 2)):
            self.assertNotAllClose(np.stack([b["a"] for b in first]),
                                   np.stack([b["a"] for b in _batches(other)]))

    def test_skip_batches_equals_dropping_them(self):
        root = self._root("skip", range(0, 70, 10), range(100, 150, 10))
        data = UnalignedFolders(DataOptions(root, preprocess="crop", crop_size=8, seed=5))
        full = _batches(data.epoch_dataset(2, 2))
        self.assertLen(full, 3)  # max(7, 5) // 2
        for skip in (1, 3):
            resumed = _batches(data.epoch_dataset(2, 2, skip_batches=skip))
            self.assertLen(resumed, 3 - skip)
            for x, y in zip(full[skip:], resumed):
                self.assertAllEqual(x["a"], y["a"])
                self.assertAllEqual(x["b"], y["b"])
        with self.assertRaisesRegex(ValueError, r"skip_batches must be in \[0, 3\]"):
            data.epoch_dataset(2, 2, skip_batches=4)

    def test_serial_batches_walk_a_and_b_in_sorted_order(self):
        a_levels, b_levels = [10, 20, 30], [100, 110, 120, 130, 140]
        root = self._root("serial", a_levels, b_levels)
        data = UnalignedFolders(DataOptions(root, preprocess="none", serial_batches=True))
        batches = _batches(data.epoch_dataset(1, 1))
        # The reference's index i in range(max(A, B)) picks A[i % |A|] and B[i % |B|].
        self.assertEqual([int(_levels(b["a"])[0]) for b in batches], [10, 20, 30, 10, 20])
        self.assertEqual([int(_levels(b["b"])[0]) for b in batches], b_levels)

    def test_shuffled_epoch_covers_a_and_draws_b_at_random(self):
        a_levels, b_levels = list(range(0, 80, 10)), [100, 110, 120]
        root = self._root("shuffled", a_levels, b_levels)
        data = UnalignedFolders(DataOptions(root, preprocess="none"))
        orders = []
        for epoch in (1, 2):
            batches = _batches(data.epoch_dataset(epoch, 2))
            a = np.concatenate([_levels(b["a"]) for b in batches]).tolist()
            b = np.concatenate([_levels(b["b"]) for b in batches]).tolist()
            self.assertCountEqual(a, a_levels)
            self.assertContainsSubset(b, b_levels)
            self.assertNotEqual(b, (b_levels * 3)[:len(b)])  # not the serial pattern
            orders.append(a)
        self.assertNotEqual(orders[0], sorted(a_levels))
        self.assertNotEqual(orders[0], orders[1])

    def test_b_to_a_swaps_the_folders(self):
        root = self._root("swap", [10, 20], [200, 210, 220])
        data = UnalignedFolders(DataOptions(root, preprocess="none", direction="BtoA",
                                            serial_batches=True))
        self.assertEqual((data.size_a, data.size_b), (3, 2))
        batches = _batches(data.epoch_dataset(1, 3))
        self.assertEqual(_levels(batches[0]["a"]).tolist(), [200, 210, 220])
        self.assertEqual(_levels(batches[0]["b"]).tolist(), [10, 20, 10])

    def test_after_n_epochs_resizes_straight_to_crop_size(self):
        root = os.path.join(self.get_temp_dir(), "finetune")
        source = _smooth(24, 24)
        for side in "AB":
            _write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(source)})
        data = UnalignedFolders(DataOptions(root, load_size=20, crop_size=12, n_epochs=2))
        # Oracle: PIL's bicubic resize, which the reference applies (load_size := crop_size).
        plain = np.asarray(Image.fromarray(source).resize((12, 12), Image.BICUBIC))
        plain = plain.astype(np.float32) / 127.5 - 1

        def error(view):
            """Distance to the plain resize up to a horizontal flip, in grey levels."""
            return 127.5 * min(np.abs(view - plain).max(), np.abs(view[:, ::-1] - plain).max())

        for epoch in (3, 4, 5):
            (batch,) = _batches(data.epoch_dataset(epoch, 1))
            self.assertLess(error(batch["a"][0]), 2.0)
            self.assertLess(error(batch["b"][0]), 2.0)
        (batch,) = _batches(data.epoch_dataset(2, 1))  # still resize to 20 and crop 12
        self.assertGreater(error(batch["a"][0]), 10.0)

    def test_test_transform_resizes_to_crop_size_or_keeps_the_size(self):
        source = _smooth(18, 26)
        image = tf.constant(source.astype(np.float32) / 127.5 - 1)
        resized = folders_lib.test_transform(image, DataOptions("unused", crop_size=8))
        plain = np.asarray(Image.fromarray(source).resize((8, 8), Image.BICUBIC))
        self.assertAllClose((resized.numpy() + 1) * 127.5, plain, atol=2.0, rtol=0)
        kept = folders_lib.test_transform(image, DataOptions("unused", preprocess="none"))
        self.assertEqual(kept.shape, (16, 24, 3))  # 4.5 and 6.5 quarters round to even
        aligned = folders_lib.test_transform(image[:16, :24], DataOptions("unused",
                                                                           preprocess="none"))
        self.assertAllEqual(aligned, image[:16, :24])

    @parameterized.parameters(
        # (height, width) -> the reference's round(side / 4) * 4, worked out by hand.
        ((23, 13), (24, 12)),  # 5.75 -> 6, 3.25 -> 3: up and down, where flooring gives 20
        ((22, 30), (24, 32)),  # 5.5 -> 6 and 7.5 -> 8: halves to the even quarter count
        ((21, 11), (20, 12)),
        ((2, 7), (4, 8)),  # 0.5 -> 0 in the reference (which then fails); at least 4 here
    )
    def test_none_rounds_each_side_to_the_nearest_multiple_of_4(self, size, rounded):
        source = _smooth(*size)
        view = folders_lib.test_transform(tf.constant(source.astype(np.float32) / 127.5 - 1),
                                          DataOptions("unused", preprocess="none"))
        self.assertEqual(view.shape, (*rounded, 3))
        # Oracle: Pillow's bicubic resize, as the reference's __make_power_2 does it.
        plain = np.asarray(Image.fromarray(source).resize(rounded[::-1], Image.BICUBIC))
        self.assertAllClose((view.numpy() + 1) * 127.5, plain, atol=3.0, rtol=0)

    def test_training_views_round_as_the_test_view_does(self):
        root = os.path.join(self.get_temp_dir(), "rounding")
        for side in "AB":
            _write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(_smooth(23, 13))})
        data = UnalignedFolders(DataOptions(root, preprocess="none", no_flip=True))
        (batch,) = _batches(data.epoch_dataset(1, 1))
        self.assertEqual(batch["a"].shape, (1, 24, 12, 3))
        # Same ops on the same decoded pixels, so the same values exactly.
        self.assertAllEqual(batch["a"][0], folders_lib.test_transform(
            folders_lib.load_image(os.path.join(root, "trainA", "0.png")), data.options))

    def test_steps_per_epoch_drops_the_remainder_and_rejects_big_batches(self):
        root = self._root("steps", range(0, 50, 10), [100, 110])
        data = UnalignedFolders(DataOptions(root, preprocess="none"))
        self.assertEqual([data.steps_per_epoch(n) for n in (1, 2, 5)], [5, 2, 1])
        self.assertLen(_batches(data.epoch_dataset(1, 2)), 2)
        with self.assertRaisesRegex(ValueError, "--batch_size=6 exceeds the 5 images"):
            data.steps_per_epoch(6)


if __name__ == "__main__":
    tf.test.main()
