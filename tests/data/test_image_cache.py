"""Tests of the decode-once image cache: what is skipped, and that caching never changes a
pixel."""
import os

import tensorflow as tf

from tests.data.folder_data import numpy_batches, write_formats
from tfattncut.config import Config
from tfattncut.data import image_files
from tfattncut.data.unaligned import UnalignedFolders


class ImageCacheTest(tf.test.TestCase):
    """Decoding once: undecodable files skipped, and the same pixels cached or read from disk."""

    def setUp(self):
        super().setUp()
        self.root, self.good, self.bad, self.oracle = write_formats(
            os.path.join(self.get_temp_dir(), "formats"))

    def test_undecodable_files_are_logged_skipped_and_counted(self):
        with self.assertLogs(level="WARNING") as logs:
            data = UnalignedFolders(Config(dataroot=self.root, preprocess="none"),
                                    cache=False)
        self.assertEqual(data.num_skipped, len(self.bad))
        self.assertEqual(data.size_a, len(self.good))
        text = "\n".join(logs.output)
        for name in self.bad:
            self.assertIn(os.path.join(self.root, "trainA", name), text)
        self.assertIn(f"Skipped 4 of {len(self.good) + 4}", text)

    def test_pipeline_pixels_equal_load_image_cached_or_not(self):
        paths = sorted(os.path.join(self.root, "trainA", name) for name in self.good)
        expected = [image_files.load_image(p).numpy() for p in paths]
        for cache in (True, False):
            config = Config(dataroot=self.root, preprocess="none", serial_batches=True,
                            no_flip=True)
            data = UnalignedFolders(config, cache=cache)
            self.assertEqual(data.cached, cache)
            batches = numpy_batches(data.epoch_dataset(1, 1))
            self.assertLen(batches, len(paths))
            for batch, image in zip(batches, expected):
                # One decoder and the same x / 127.5 - 1 in one process; the pipeline's resize
                # to the same size weighs each pixel by exactly 1.
                self.assertAllEqual(batch["a"][0], image)
