"""Tests of the test-time view against Pillow's bicubic resize, and of training views rounding
as it does."""
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from tests.data.folder_data import numpy_batches, smooth, write
from tfattncut.config import Config
from tfattncut.data import image_files, transforms
from tfattncut.data.unaligned import UnalignedFolders


class TransformsTest(tf.test.TestCase, parameterized.TestCase):

    def test_test_transform_resizes_to_crop_size_or_keeps_the_size(self):
        source = smooth(18, 26)
        image = tf.constant(source.astype(np.float32) / 127.5 - 1)
        resized = transforms.test_transform(image, Config(crop_size=8))
        plain = np.asarray(Image.fromarray(source).resize((8, 8), Image.BICUBIC))
        self.assertAllClose((resized.numpy() + 1) * 127.5, plain, atol=2.0, rtol=0)
        kept = transforms.test_transform(image, Config(preprocess="none"))
        self.assertEqual(kept.shape, (16, 24, 3))  # 4.5 and 6.5 quarters round to even
        aligned = transforms.test_transform(image[:16, :24], Config(preprocess="none"))
        self.assertAllEqual(aligned, image[:16, :24])

    @parameterized.parameters(
        # (height, width) -> the reference's round(side / 4) * 4, worked out by hand.
        ((23, 13), (24, 12)),  # 5.75 -> 6, 3.25 -> 3: up and down, where flooring gives 20
        ((22, 30), (24, 32)),  # 5.5 -> 6 and 7.5 -> 8: halves to the even quarter count
        ((21, 11), (20, 12)),
        ((2, 7), (4, 8)),  # 0.5 -> 0 in the reference (which then fails); at least 4 here
    )
    def test_none_rounds_each_side_to_the_nearest_multiple_of_4(self, size, rounded):
        source = smooth(*size)
        view = transforms.test_transform(tf.constant(source.astype(np.float32) / 127.5 - 1),
                                         Config(preprocess="none"))
        self.assertEqual(view.shape, (*rounded, 3))
        # Oracle: Pillow's bicubic resize, as the reference's __make_power_2 does it.
        plain = np.asarray(Image.fromarray(source).resize(rounded[::-1], Image.BICUBIC))
        self.assertAllClose((view.numpy() + 1) * 127.5, plain, atol=3.0, rtol=0)

    def test_training_views_round_as_the_test_view_does(self):
        root = os.path.join(self.get_temp_dir(), "rounding")
        for side in "AB":
            write(os.path.join(root, "train" + side), {"0.png": Image.fromarray(smooth(23, 13))})
        data = UnalignedFolders(Config(dataroot=root, preprocess="none", no_flip=True))
        (batch,) = numpy_batches(data.epoch_dataset(1, 1))
        self.assertEqual(batch["a"].shape, (1, 24, 12, 3))
        # Same ops on the same decoded pixels, so the same values exactly.
        self.assertAllEqual(batch["a"][0], transforms.test_transform(
            image_files.load_image(os.path.join(root, "trainA", "0.png")), data.config))
