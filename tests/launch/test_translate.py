"""launch.translate on a tiny run: the library function, and the command as a process."""
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.testdata import tiny_config, write_png, write_tiny_run
from tfattncut.data import image_files
from tfattncut.pixels import to_uint8
from tfattncut.translation import translate_files
from tfattncut.inference import translate

pytestmark = pytest.mark.slow  # end to end; BUILD tags this test "slow"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TranslateCLITest(tf.test.TestCase):

    def test_translates_any_size_and_copies_labels(self):
        root = tempfile.mkdtemp()
        config = tiny_config(root, name="run")
        write_tiny_run(config)
        inputs, labels = os.path.join(root, "in"), os.path.join(root, "in_labels")
        os.makedirs(inputs)
        os.makedirs(labels)
        rng = np.random.default_rng(0)
        for stem, (h, w) in {"odd": (37, 50), "even": (64, 48)}.items():
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
                os.path.join(inputs, f"{stem}.png"))
            Image.fromarray(rng.integers(0, 30, (h, w), dtype=np.uint8)).save(
                os.path.join(labels, f"{stem}.png"))
        output = os.path.join(root, "out")
        written = translate_files(config.run_dir, inputs, output, labels)
        self.assertLen(written, 2)
        self.assertEqual(Image.open(os.path.join(output, "odd.png")).size, (50, 37))
        self.assertEqual(Image.open(os.path.join(output, "even.png")).size, (48, 64))
        for stem in ("odd", "even"):
            with open(os.path.join(labels, f"{stem}.png"), "rb") as a, \
                    open(os.path.join(output + "_labels", f"{stem}.png"), "rb") as b:
                self.assertEqual(a.read(), b.read())
        with self.assertRaisesRegex(ValueError, "would overwrite the inputs"):
            translate_files(config.run_dir, inputs, inputs)

    def test_nothing_a_user_has_is_replaced_without_overwrite(self):
        root = tempfile.mkdtemp()
        config = tiny_config(root, name="run")
        write_tiny_run(config)
        inputs, labels = os.path.join(root, "in"), os.path.join(root, "o_labels")
        pixels = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
        for index, image in enumerate(pixels):
            write_png(inputs, f"{index}.png", image)
            write_png(labels, f"{index}.png", image[..., 0])

        def contents():
            return {os.path.join(folder, name): pathlib.Path(folder, name).read_bytes()
                    for folder in (inputs, labels) for name in os.listdir(folder)}

        before = contents()
        # A link to the input folder is the input folder: the translations used to replace
        # the inputs through it.
        link = os.path.join(root, "link")
        os.symlink(inputs, link)
        with self.assertRaisesRegex(ValueError, f"folder {link} holds the input"):
            translate_files(config.run_dir, inputs, link)
        # --output=o gives OUTPUT_labels = o_labels, the label maps themselves: this used to
        # end in shutil.SameFileError after every translation was written.
        with self.assertRaisesRegex(ValueError, f"label maps' folder {labels} holds the input"):
            translate_files(config.run_dir, inputs, os.path.join(root, "o"), labels)
        self.assertFalse(os.path.exists(os.path.join(root, "o")))
        afile = os.path.join(root, "afile")
        open(afile, "w").close()
        for output in (afile, os.path.join(afile, "below")):
            with self.assertRaisesRegex(NotADirectoryError,
                                        f"--output={output}: {afile} exists and is not a "
                                        "folder"):
                translate_files(config.run_dir, inputs, output)
        self.assertEqual(contents(), before)

        output = os.path.join(root, "out")
        translate_files(config.run_dir, inputs, output, labels)
        # A second run into the same folder (or a mistyped --output naming a data set's
        # folder) would replace files: refused, naming the first, until --overwrite.
        with open(os.path.join(output, "0.png"), "rb") as f:
            first = f.read()
        with self.assertRaisesRegex(FileExistsError, f"--output={output}: {output}/0.png "
                                    "exists, and 5 more files this would replace; pass "
                                    "--overwrite"):
            translate_files(config.run_dir, inputs, output, labels)
        written = translate_files(config.run_dir, inputs, output, labels, overwrite=True)
        self.assertLen(written, 3)
        with open(os.path.join(output, "0.png"), "rb") as f:
            self.assertEqual(f.read(), first)  # the same run and input: the same file
        self.assertEqual(contents(), before)


def run_translate(*flags):
    return subprocess.run([sys.executable, "-m", "launch.translate", *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


class TranslateProcessTest(tf.test.TestCase):
    """python -m launch.translate itself."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.config = tiny_config(cls.root, name="run")
        cls.generator = write_tiny_run(cls.config)
        rng = np.random.default_rng(1)
        cls.pixels = {stem: rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                      for stem, (h, w) in {"odd": (37, 50), "even": (64, 48)}.items()}

    def assert_translated(self, source, written):
        expected = to_uint8(translate(self.generator, image_files.load_image(source)[None])[0])
        # Another process: a float32 sum in another order can move a value across a
        # rounding boundary, so one level of difference is allowed.
        self.assertAllClose(np.asarray(Image.open(written)), expected, atol=1, rtol=0)

    def test_a_folder_and_a_single_file(self):
        inputs = os.path.join(self.root, "in")
        paths = {stem: write_png(inputs, f"{stem}.png", p) for stem, p in self.pixels.items()}
        output = os.path.join(self.root, "out")
        result = run_translate(f"--checkpoint={self.config.run_dir}", f"--input={inputs}",
                               f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn(f"Wrote 2 translation(s) to {output}", result.stdout)
        self.assertCountEqual(os.listdir(output), ["odd.png", "even.png"])
        for stem, path in paths.items():
            self.assert_translated(path, os.path.join(output, f"{stem}.png"))

        single = os.path.join(self.root, "single")
        result = run_translate(f"--checkpoint={self.config.run_dir}",
                               f"--input={paths['odd']}", f"--output={single}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual(os.listdir(single), ["odd.png"])
        self.assert_translated(paths["odd"], os.path.join(single, "odd.png"))

    def test_bad_files_are_listed_and_the_good_ones_translated(self):
        inputs = os.path.join(self.root, "mixed")
        good = write_png(inputs, "good.png", self.pixels["odd"])
        with open(good, "rb") as f:
            png = f.read()
        for name, contents in (("corrupt.png", png[:len(png) // 2]), ("empty.png", b""),
                               ("text.jpg", b"not an image\n")):
            with open(os.path.join(inputs, name), "wb") as f:
                f.write(contents)
        write_png(inputs, "tiny.png", self.pixels["odd"][:3, :3])
        # Named like images, sorted before good.png: each stopped the run before it.
        os.symlink(os.path.join(inputs, "nowhere.png"), os.path.join(inputs, "dangling.png"))
        os.symlink(os.path.join(inputs, "loop.png"), os.path.join(inputs, "loop.png"))
        os.mkfifo(os.path.join(inputs, "fifo.png"))  # reading it would block for good
        output = os.path.join(self.root, "mixed_out")
        result = run_translate(f"--checkpoint={self.config.run_dir}", f"--input={inputs}",
                               f"--output={output}")
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(os.listdir(output), ["good.png"])
        self.assert_translated(good, os.path.join(output, "good.png"))
        self.assertIn("launch.translate: error: 7 of 8 images could not be translated",
                      result.stderr)
        for name in ("corrupt.png", "empty.png", "text.jpg"):
            self.assertRegex(result.stderr, f"{os.path.join(inputs, name)} cannot be decoded")
        self.assertIn(f"{os.path.join(inputs, 'tiny.png')} is 3x3 pixels (height x width); "
                      "translating needs at least 5x5", result.stderr)
        for name in ("dangling.png", "loop.png"):
            self.assertIn(f"{os.path.join(inputs, name)} is a symbolic link that leads "
                          "nowhere (dangling, or a loop)", result.stderr)
        self.assertIn(f"{os.path.join(inputs, 'fifo.png')} is not a regular file (a folder, "
                      "FIFO, socket or device)", result.stderr)

    def test_same_stems_are_refused_up_front_naming_both(self):
        inputs = os.path.join(self.root, "clash")
        png = write_png(inputs, "x.png", self.pixels["even"])
        Image.fromarray(self.pixels["odd"]).save(os.path.join(inputs, "x.jpg"))
        output = os.path.join(self.root, "clash_out")
        result = run_translate(f"--checkpoint={self.config.run_dir}", f"--input={inputs}",
                               f"--output={output}")
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn(f"{os.path.join(inputs, 'x.jpg')} and {png} -> x.png", result.stderr)
        self.assertFalse(os.path.exists(output))
