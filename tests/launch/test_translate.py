"""launch.translate on a tiny run."""
import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image

from tfattncut.evaluation.images import translate_files
from tests.testdata import tiny_config, write_tiny_run


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
