"""Tests of listing image folders as the reference does and of decoding every readable format
against Pillow."""
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.data.folder_data import flat, grey_levels, numpy_batches, smooth, write, write_formats
from tfattncut.config import Config
from tfattncut.data import image_files
from tfattncut.data.unaligned import UnalignedFolders


class ListImagesTest(tf.test.TestCase):

    def test_sorted_images_only_any_case_subfolders_included(self):
        folder = os.path.join(self.get_temp_dir(), "mixed")
        write(folder, {"b.PNG": Image.new("RGB", (4, 4)), "a.jpeg": Image.new("RGB", (4, 4)),
                        "c.Gif": Image.new("P", (4, 4)), "d.ppm": Image.new("RGB", (4, 4)),
                        "e.TIFF": Image.new("RGB", (4, 4)), "notes.txt": b"hello"})
        write(os.path.join(folder, "sub.png"), {"f.tif": Image.new("RGB", (4, 4)),
                                                 "g.PPM": Image.new("RGB", (4, 4))})
        names = [os.path.relpath(p, folder) for p in image_files.list_images(folder)]
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
                images[name] = Image.fromarray(flat(levels[os.path.join(root, folder, name)],
                                                     8, 8))
            write(os.path.join(root, folder), {**images, "notes.txt": b"not an image"})
        write(os.path.join(root, "trainB"), {"0.png": Image.fromarray(flat(200, 8, 8))})
        # Oracle, by hand: the reference visits folders in sorted path order, where
        # "sub-2" < "sub/deeper" ('-' sorts before '/'), and each folder's files in the order
        # the file system lists them; the cap takes a prefix of that, which is then sorted.
        walk = [os.path.join(root, folder, name)
                for folder in ("trainA", "trainA/sub", "trainA/sub-2", "trainA/sub/deeper")
                for name in os.listdir(os.path.join(root, folder)) if name in tree[folder]]
        folder_a = os.path.join(root, "trainA")
        self.assertEqual(image_files.list_images(folder_a), sorted(walk))
        for cap in range(1, len(walk) + 1):
            self.assertEqual(image_files.list_images(folder_a, cap), sorted(walk[:cap]), cap)
        data = UnalignedFolders(Config(dataroot=root, preprocess="none", serial_batches=True,
                                       max_dataset_size=4))
        self.assertEqual((data.size_a, data.size_b), (4, 1))
        (batch,) = numpy_batches(data.epoch_dataset(1, 4))
        self.assertEqual(grey_levels(batch["a"]).tolist(), [levels[p] for p in sorted(walk[:4])])

    def test_a_link_loop_or_a_second_link_lists_each_real_folder_once(self):
        # Not get_temp_dir(): TensorFlow's clean-up of it would follow the loop.
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        write(os.path.join(folder, "b"), {"x.png": Image.new("RGB", (4, 4))})
        write(folder, {"a.png": Image.new("RGB", (4, 4))})
        os.symlink("..", os.path.join(folder, "b", "up"))  # os.walk follows it without end
        os.symlink("b", os.path.join(folder, "c"))  # the same folder under a second name
        names = [os.path.relpath(p, folder) for p in image_files.list_images(folder)]
        self.assertEqual(names, ["a.png", "b/x.png"])

    def test_missing_folder_is_named(self):
        folder = os.path.join(self.get_temp_dir(), "nowhere")
        with self.assertRaisesRegex(FileNotFoundError, "nowhere.*does not exist"):
            image_files.list_images(folder)

    def test_empty_folder_is_named(self):
        folder = os.path.join(self.get_temp_dir(), "empty")
        write(folder, {"readme.txt": b"no images"})
        with self.assertRaisesRegex(ValueError, "empty has no images"):
            image_files.list_images(folder)


class MatchByStemTest(tf.test.TestCase):

    def test_across_extensions_with_or_without_a_flag(self):
        root = self.get_temp_dir()
        images = [os.path.join(root, "set", f"{i}.png") for i in range(5)]
        targets = os.path.join(root, "targets")
        write(targets, {f"{i}.bmp": Image.new("RGB", (4, 4)) for i in (3, 0, 1, 2, 4)})
        write(targets, {"extra.png": Image.new("RGB", (4, 4))})
        matched = image_files.match_by_stem(images, targets, "--paired")
        self.assertEqual([os.path.basename(p) for p in matched], [f"{i}.bmp" for i in range(5)])
        with self.assertRaisesRegex(FileNotFoundError, "^--paired=.*no file for 1 of the 2.*"
                                    "missing.png \\(expected missing.png or another"):
            image_files.match_by_stem([images[0], "/x/missing.png"], targets, "--paired")
        with self.assertRaisesRegex(FileNotFoundError, f"^{targets} has no file for 1 of the 1 images"):
            image_files.match_by_stem(["/x/missing.png"], targets)


class DecodeTest(tf.test.TestCase):
    """Every readable format against Pillow's own decoding (the reference's convert('RGB'))."""

    def setUp(self):
        super().setUp()
        self.root, self.good, self.bad, self.oracle = write_formats(
            os.path.join(self.get_temp_dir(), "formats"))

    def test_formats_match_pillow(self):
        for name in self.good:
            path = os.path.join(self.root, "trainA", name)
            expected = self.oracle.get(name)
            if expected is None:
                expected = np.asarray(Image.open(path).convert("RGB"))
            decoded = (image_files.load_image(path).numpy() + 1) * 127.5
            self.assertEqual(decoded.shape, (12, 16, 3), name)
            # JPEG: both use libjpeg's accurate IDCT; one level of slack for other builds.
            # Others are lossless: the levels agree up to the float round trip via [-1, 1].
            tolerance = 1.01 if name.lower().endswith(("jpg", "jpeg")) else 1e-3
            self.assertAllClose(decoded, expected, atol=tolerance, rtol=0, msg=name)

    def test_netpbm_and_tiff_headers_pick_pillow_whatever_the_name(self):
        """Formats are told by content, not name: a PPM saved as .png decodes too."""
        rgb = smooth(6, 10)
        path = os.path.join(self.get_temp_dir(), "really_a_ppm.png")
        Image.fromarray(rgb).save(path, "PPM")
        self.assertAllEqual(image_files.read_image(path), rgb)

    def test_load_image_names_an_undecodable_file(self):
        path = os.path.join(self.root, "trainA", "notes.jpg")
        # TF's reason alone: no op name, no node dump, no format list of TF's beside ours.
        with self.assertRaisesRegex(ValueError, f"^Image file {path} cannot be decoded as "
                                                f"{image_files.READABLE_FORMATS}: [^{{}}\\[]*$"):
            image_files.load_image(path)
