"""One domain's images, or their label maps, scanned once and served by index: decoded uint8
pixels held in memory when they fit in a share of the free memory, else read from their files
on demand (the pixels are the same either way: one reader, `image_files.read_image` for
images, `labels.read_train_ids` for label maps).
"""
import concurrent.futures
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfattncut.data.image_files import READABLE_FORMATS, match_by_stem, read_image
from tfattncut.data.labels import read_train_ids


def free_memory_budget():
    """A quarter of the free memory in bytes: building the cache briefly holds about three
    copies."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):
        return 0


class ImageStore:
    """One domain's decodable images by index: `paths`, their [H, W] `shapes`, and the
    decoded pixels in memory when `images` (uint8 [H, W, C] each) are given.

    read: the reader of one file in a tf.data pipeline (path -> uint8 [H, W, C]), used
      when the pixels are not in memory; channels: C.
    """

    def __init__(self, paths, shapes, images=None, read=read_image, channels=3):
        self.paths = paths
        self.shapes = shapes
        self._paths = tf.constant(paths)
        self._read, self._channels = read, channels
        self._pixels = None
        self.nbytes = 0
        if images is not None:
            self._pixels = tf.constant(np.concatenate([image.ravel() for image in images]))
            self._offsets = tf.constant(np.cumsum([0] + [image.size for image in images]))
            self._shapes = tf.constant(shapes, tf.int64)
            self.nbytes = sum(image.nbytes for image in images)

    def __len__(self):
        return len(self.paths)

    @property
    def cached(self):
        return self._pixels is not None

    def get(self, index):
        """int64 scalar -> uint8 [H, W, C]."""
        if self._pixels is None:
            return self._read(tf.gather(self._paths, index))
        height, width = tf.unstack(self._shapes[index])
        start = self._offsets[index]
        size = height * width * self._channels
        return tf.reshape(self._pixels[start:start + size], [height, width, self._channels])


def scan(folder, paths, budget):
    """Decodes `paths` (the images of `folder`) in parallel -> (ImageStore of the decodable
    ones, number skipped). The store holds the pixels unless they exceed `budget` bytes
    (0: never cache).

    Files that do not decode are logged by path and skipped; none decoding is an error.
    """
    keep = budget > 0

    def decode(path):
        image = read_image(path)
        return (path, tf.shape(image)[:2]) + ((image,) if keep else ())

    scanned = (tf.data.Dataset.from_tensor_slices(paths)
               .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .ignore_errors())
    good, shapes, images = [], [], [] if keep else None
    for path, shape, *image in scanned.as_numpy_iterator():
        good.append(path.decode())
        shapes.append(tuple(int(n) for n in shape))
        if images is not None:
            images.append(image[0])
            budget -= image[0].nbytes
            if budget < 0:
                logging.info("Decoded images of %s exceed the free memory; reading them "
                             "from disk each epoch instead of caching.", folder)
                images = None
    for path in sorted(set(paths) - set(good)):
        logging.warning("Skipping %s: it cannot be decoded as %s.", path, READABLE_FORMATS)
    skipped = len(paths) - len(good)
    if skipped:
        logging.warning("Skipped %d of %d files in %s that cannot be decoded.",
                        skipped, len(paths), folder)
    if not good:
        raise ValueError(f"Image folder {folder} has no decodable images; expected "
                         f"{READABLE_FORMATS} files")
    logging.info("%s: %d images.", folder, len(good))
    return ImageStore(good, shapes, images), skipped


def read_label_map(path):
    """A label map file's path (scalar string) -> uint8 [H, W, 1] train ids, in tf.data
    pipelines (through Pillow, as `labels.read_train_ids` reads it)."""
    train_ids = tf.numpy_function(lambda name: read_train_ids(name.decode())[..., np.newaxis],
                                  [path], tf.uint8, stateful=False)
    train_ids.set_shape([None, None, 1])
    return train_ids


def scan_labels(folder, images, budget):
    """The label maps in `folder` of an ImageStore's images (same stem, any image extension)
    as an ImageStore of uint8 [H, W, 1] train ids, index for index; held in memory unless
    they exceed `budget` bytes (0: never).

    Every image needs its map, single-channel (Cityscapes label ids) and of the image's size:
    an error names the first file that is not.
    """
    paths = match_by_stem(images.paths, folder)
    with concurrent.futures.ThreadPoolExecutor() as pool:  # Pillow decodes without the GIL
        maps = list(pool.map(read_train_ids, paths))
    for image_path, image_shape, path, train_ids in zip(images.paths, images.shapes, paths,
                                                          maps):
        if train_ids.shape != image_shape:
            raise ValueError(f"Label map {path} is {train_ids.shape} but its image "
                             f"{image_path} is {image_shape}; they must match pixel for pixel")
    maps = [train_ids[..., np.newaxis] for train_ids in maps]
    keep = sum(train_ids.nbytes for train_ids in maps) <= budget
    logging.info("%s: %d label maps.", folder, len(paths))
    return ImageStore(paths, images.shapes, maps if keep else None, read_label_map, channels=1)
