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
        self.assertAllEqual(aligned, image[:16, :24])  # aligned: returned as is, no resize

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


class JointViewTest(tf.test.TestCase, parameterized.TestCase):
    """A label map and its image take one crop and one flip; the image's view is the one it
    gets alone."""

    def _views(self, image, labels, config, seeds=range(24)):
        """(image view, labels' view, image's view alone) for each key (seed, 7)."""
        for seed in seeds:
            key = tf.constant([seed, 7], tf.int64)
            view, labels_view = transforms.train_transform(
                tf.constant(image), config, key, tf.constant(labels))
            alone = transforms.train_transform(tf.constant(image), config, key)
            yield view.numpy(), labels_view.numpy(), alone.numpy()

    def test_crop_and_flip_move_each_label_with_its_pixel(self):
        # Every pixel's row and column are written in its red and green levels, and its label
        # is a function of both: read back from the view, they must give the label's view.
        rows, columns = np.mgrid[0:20, 0:24]
        image = (np.stack([rows, columns, np.zeros_like(rows)], -1) / 127.5 - 1.0)
        labels = (rows * 24 + columns) % 253
        config = Config(preprocess="crop", crop_size=8)
        offsets, flips = set(), set()
        for view, labels_view, alone in self._views(image.astype(np.float32), labels, config):
            self.assertAllEqual(view, alone)
            row, column = np.round((view[..., :2] + 1.0) * 127.5).astype(int).transpose(2, 0, 1)
            self.assertAllEqual(labels_view, (row * 24 + column) % 253)
            offsets.add((row.min(), column.min()))
            flips.add(bool(column[0, 0] > column[0, -1]))
        self.assertGreater(len(offsets), 5)
        self.assertEqual(flips, {False, True})

    @parameterized.parameters("resize_and_crop", "scale_width_and_crop", "none")
    def test_resized_labels_stay_labels_of_their_region(self, preprocess):
        # Four flat quadrants of distinct colours labelled 7, 8, 11 and 26: where the view's
        # colour is clearly one quadrant's (bicubic blurs only the edges between them), the
        # label must be that quadrant's, and no other label may appear (nearest neighbour).
        colours = np.array([[-1.0, -1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
                            [-1.0, -1.0, 1.0]], np.float32)
        rows, columns = np.mgrid[0:18, 0:26]
        quadrant = (rows >= 9) * 2 + (columns >= 13)
        ids = np.array([7, 8, 11, 26])
        config = Config(preprocess=preprocess, load_size=14, crop_size=8)
        left_edges = set()
        for view, labels_view, alone in self._views(colours[quadrant], ids[quadrant], config):
            self.assertAllEqual(view, alone)
            self.assertEqual(labels_view.shape, view.shape[:2])
            self.assertContainsSubset(np.unique(labels_view), ids)
            distance = np.abs(view[:, :, None, :] - colours).max(-1)  # [h, w, 4]
            clear = distance.min(-1) < 0.05
            self.assertGreater(clear.mean(), 0.3)
            self.assertAllEqual(labels_view[clear], ids[distance.argmin(-1)][clear])
            left_edges.add(bool(np.isin(labels_view[0, 0], [8, 26])))  # right half: flipped
        self.assertEqual(left_edges, {False, True})
