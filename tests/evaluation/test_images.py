"""Image sets for evaluation: batching, resizing, pairing by stem, translating to PNG."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.data import folders
from tfattncut.evaluation import images


def _write(folder, name, pixels):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    Image.fromarray(pixels).save(path)
    return path


class ImagesTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        cls.pixels = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(5)]
        cls.paths = [_write(os.path.join(cls.root, "set"), f"{i}.png", p)
                     for i, p in enumerate(cls.pixels)]

    def test_batches_in_file_order_and_reiterable(self):
        image_set = images.ImageSet(self.paths, batch_size=2)
        self.assertLen(image_set, 5)
        for _ in range(2):  # metrics pass over a set several times
            batches = list(image_set)
            self.assertEqual([b.shape[0] for b in batches], [2, 2, 1])
            self.assertAllClose(tf.concat(batches, 0), np.stack(self.pixels) / 127.5 - 1.0)

    def test_resize_and_size_mismatch(self):
        odd = _write(os.path.join(self.root, "mixed"), "odd.png",
                     np.zeros([10, 12, 3], np.uint8))
        with self.assertRaisesRegex(ValueError, "odd.png is \\(10, 12\\).*--image_size"):
            list(images.ImageSet([self.paths[0], odd], batch_size=2))
        (batch,) = list(images.ImageSet([self.paths[0], odd], batch_size=2, image_size=16))
        self.assertEqual(batch.shape, [2, 16, 16, 3])
        expected = folders.test_transform(folders.load_image(odd), images.resize_options(16))
        self.assertAllClose(batch[1], expected)

    def test_match_by_stem_across_extensions(self):
        targets = os.path.join(self.root, "targets")
        for i in (3, 0, 1, 2, 4):
            _write(targets, f"{i}.bmp", self.pixels[i])
        _write(targets, "extra.png", self.pixels[0])
        matched = images.match_by_stem(self.paths, targets, "--paired")
        self.assertEqual([os.path.basename(p) for p in matched], [f"{i}.bmp" for i in range(5)])
        with self.assertRaisesRegex(FileNotFoundError, "--paired=.*no file for 1 of the 2.*"
                                    "missing.png"):
            images.match_by_stem([self.paths[0], "/x/missing.png"], targets, "--paired")

    def test_translate_images_writes_rounded_pngs_and_protects_inputs(self):
        def negate(batch):  # stands in for a generator; translate pads to multiples of 4
            return -batch

        output = os.path.join(self.root, "negated")
        written = images.translate_images(negate, self.paths[:2], output)
        self.assertEqual([os.path.basename(p) for p in written], ["0.png", "1.png"])
        for path, pixels in zip(written, self.pixels):
            # -(x / 127.5 - 1) maps level v to 255 - v exactly.
            self.assertAllEqual(np.asarray(Image.open(path)), 255 - pixels)
        with self.assertRaisesRegex(ValueError, "overwrite the inputs"):
            images.translate_images(negate, self.paths[:1], os.path.dirname(self.paths[0]))

    def test_to_uint8_rounds_and_clips(self):
        self.assertAllEqual(images.to_uint8(tf.constant([-2.0, -1.0, 0.0, 1.0 / 255, 1.5])),
                            [0, 0, 128, 128, 255])

    def test_same_stems_are_refused_before_anything_is_written(self):
        folder = os.path.join(self.root, "clash")
        paths = [_write(folder, name, self.pixels[0]) for name in ("x.png", "x.jpg", "y.png")]
        output = os.path.join(self.root, "clash_out")
        with self.assertRaisesRegex(ValueError, f"{paths[0]} and {paths[1]} -> x.png"):
            images.translate_images(lambda batch: -batch, paths, output)
        self.assertFalse(os.path.exists(output))

    def test_bad_files_are_listed_after_the_good_ones_are_translated(self):
        folder = os.path.join(self.root, "bad")
        good = [_write(folder, name, self.pixels[i]) for i, name in enumerate(("a.png", "z.png"))]
        with open(good[0], "rb") as f:
            png = f.read()
        bad = {}
        for name, contents in (("corrupt.png", png[:len(png) // 2]), ("empty.png", b""),
                               ("text.jpg", b"not an image\n")):
            bad[name] = os.path.join(folder, name)
            with open(bad[name], "wb") as f:
                f.write(contents)
        bad["tiny.png"] = _write(folder, "tiny.png", self.pixels[0][:3, :3])
        output = os.path.join(self.root, "bad_out")
        with self.assertRaises(images.UnreadableImages) as caught:
            images.translate_images(lambda batch: -batch, folders.list_images(folder), output)
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
