"""tfattncut.translation: image files to PNG translations, destinations checked first, bad
files listed after the good ones are written."""
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from tests.testdata import write_png
from tfattncut import translation
from tfattncut.data import image_files


class TranslateImagesTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.get_temp_dir()
        self.pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 12, 3), np.uint8)
        self.paths = [write_png(os.path.join(self.root, "set"), f"{i}.png", p)
                      for i, p in enumerate(self.pixels)]

    def test_translate_images_writes_rounded_pngs_and_protects_inputs(self):
        def negate(batch):  # stands in for a generator; translate pads to multiples of 4
            return -batch

        output = os.path.join(self.root, "negated")
        written = translation.translate_images(negate, self.paths[:2], output)
        self.assertEqual([os.path.basename(p) for p in written], ["0.png", "1.png"])
        for path, pixels in zip(written, self.pixels):
            # -(x / 127.5 - 1) maps level v to 255 - v exactly.
            self.assertAllEqual(np.asarray(Image.open(path)), 255 - pixels)
        with self.assertRaisesRegex(ValueError, "overwrite the inputs"):
            translation.translate_images(negate, self.paths[:1], os.path.dirname(self.paths[0]))

    def test_same_stems_are_refused_before_anything_is_written(self):
        folder = os.path.join(self.root, "clash")
        paths = [write_png(folder, name, self.pixels[0]) for name in ("x.png", "x.jpg", "y.png")]
        output = os.path.join(self.root, "clash_out")
        with self.assertRaisesRegex(ValueError, f"{paths[0]} and {paths[1]} -> x.png"):
            translation.translate_images(lambda batch: -batch, paths, output)
        self.assertFalse(os.path.exists(output))

    def test_bad_files_are_listed_after_the_good_ones_are_translated(self):
        folder = os.path.join(self.root, "bad")
        good = [write_png(folder, name, self.pixels[i])
                for i, name in enumerate(("a.png", "z.png"))]
        with open(good[0], "rb") as f:
            png = f.read()
        bad = {}
        for name, contents in (("corrupt.png", png[:len(png) // 2]), ("empty.png", b""),
                               ("text.jpg", b"not an image\n")):
            bad[name] = os.path.join(folder, name)
            with open(bad[name], "wb") as f:
                f.write(contents)
        bad["tiny.png"] = write_png(folder, "tiny.png", self.pixels[0][:3, :3])
        output = os.path.join(self.root, "bad_out")
        with self.assertRaises(translation.UnreadableImages) as caught:
            translation.translate_images(lambda batch: -batch, image_files.list_images(folder), output)
        error = caught.exception
        self.assertEqual([os.path.basename(p) for p in error.written], ["a.png", "z.png"])
        self.assertCountEqual(os.listdir(output), ["a.png", "z.png"])
        self.assertAllEqual(np.asarray(Image.open(os.path.join(output, "z.png"))),
                            255 - self.pixels[1])
        self.assertCountEqual(error.failed, bad.values())
        for name in ("corrupt.png", "empty.png", "text.jpg"):
            self.assertRegex(error.failed[bad[name]], f"{bad[name]} cannot be decoded")
        self.assertIn(f"{bad['tiny.png']} is 3x3 pixels (height x width); translating needs at "
                      "least 5x5", error.failed[bad["tiny.png"]])
        message = str(error)
        self.assertTrue(message.startswith(f"4 of 6 images could not be translated (the other "
                                           f"2 are in {output}):"), message)
        self.assertEqual(message.count("\n"), 4)
        # Nothing translated: the message says so instead of "the other 0 are in ...".
        with self.assertRaisesRegex(translation.UnreadableImages,
                                    "^none of the 2 images could be translated:\n  Image file "
                                    f"{bad['empty.png']} cannot be decoded"):
            translation.translate_images(lambda batch: -batch,
                                         [bad["empty.png"], bad["tiny.png"]],
                                         os.path.join(self.root, "none_out"))
        self.assertFalse(os.path.exists(os.path.join(self.root, "none_out")))  # no empty folder


class LabelPathsTest(tf.test.TestCase):

    def test_each_image_gets_the_label_map_with_its_stem(self):
        root = self.get_temp_dir()
        labels = os.path.join(root, "labels_found")
        os.makedirs(labels)
        for name in ("a.png", "a.txt", "b.bmp", "c.png"):
            open(os.path.join(labels, name), "w").close()
        images = [os.path.join(root, "in", "a.jpg"), os.path.join(root, "in", "b.png")]
        self.assertEqual(translation.label_paths(labels, images),
                         {images[0]: os.path.join(labels, "a.png"),  # first by name
                          images[1]: os.path.join(labels, "b.bmp")})
        with self.assertRaisesRegex(FileNotFoundError, r"--labels=.*labels_found: no label map "
                                    r"for .*d\.png \(expected a file named d\.\*\)"):
            translation.label_paths(labels, images + [os.path.join(root, "in", "d.png")])

    def test_a_labels_folder_that_does_not_exist_is_named(self):
        missing = os.path.join(self.get_temp_dir(), "no_labels")
        with self.assertRaisesRegex(FileNotFoundError, f"--labels={missing} is not a folder"):
            translation.label_paths(missing, ["x.png"])
