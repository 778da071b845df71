"""Image sets for evaluation: batching, resizing."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from tests.testdata import write_png
from tfattncut import translation
from tfattncut.data import image_files, transforms
from tfattncut.evaluation import images


class ImagesTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        cls.pixels = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(5)]
        cls.paths = [write_png(os.path.join(cls.root, "set"), f"{i}.png", p)
                     for i, p in enumerate(cls.pixels)]

    def test_batches_in_file_order_and_reiterable(self):
        image_set = images.ImageSet(self.paths, batch_size=2)
        self.assertLen(image_set, 5)
        for _ in range(2):  # metrics pass over a set several times
            batches = list(image_set)
            self.assertEqual([b.shape[0] for b in batches], [2, 2, 1])
            self.assertAllClose(tf.concat(batches, 0), np.stack(self.pixels) / 127.5 - 1.0)

    def test_resize_and_size_mismatch(self):
        odd = write_png(os.path.join(self.root, "mixed"), "odd.png",
                     np.zeros([10, 12, 3], np.uint8))
        with self.assertRaisesRegex(ValueError, "odd.png is \\(10, 12\\).*--image_size"):
            list(images.ImageSet([self.paths[0], odd], batch_size=2))
        (batch,) = list(images.ImageSet([self.paths[0], odd], batch_size=2, image_size=16))
        self.assertEqual(batch.shape, [2, 16, 16, 3])
        expected = transforms.test_transform(image_files.load_image(odd),
                                              translation.resize_options(16))
        self.assertAllClose(batch[1], expected)
