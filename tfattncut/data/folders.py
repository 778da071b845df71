"""The unaligned folder data set (training.md, "Unaligned folder data set") as a tf.data pipeline.

Layout: `dataroot/{phase}A`, `dataroot/{phase}B`. Domain A is walked in a per-epoch order and
each A image is paired with a B image drawn at random, as in the reference's UnalignedDataset.
Every random draw (A order, B index, crop offset, flip) is stateless and seeded from
(seed, epoch, element index), so an epoch's batches are a pure function of (seed, epoch): a run
resumed mid-epoch with `skip_batches` sees exactly the batches an uninterrupted run would have.

Files are listed as the reference's make_dataset lists them: recursively, capped at
`max_dataset_size` in walk order, then sorted. Images go through one reader (`read_image`) in
training, caching and inference alike, and are kept as uint8 until the transform, so caching
never changes a pixel. Every view's height and width are rounded to the nearest multiple of 4,
as the reference's __make_power_2 does.
"""
import dataclasses
import io
import os

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from tfattncut.pixels import from_uint8

# The reference's IMG_EXTENSIONS plus .gif, in any case (the reference takes only all-lower or
# all-upper case, and no .gif: a superset, so the two list the same files unless a folder
# holds .gif or mixed-case names such as .Jpg).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".gif")
READABLE_FORMATS = "JPEG, PNG, BMP, GIF, TIFF or PPM/PGM/PBM"
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
DIRECTIONS = ("AtoB", "BtoA")
_CROPPING_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The data flags, named as in the reference.

    `max_dataset_size` 0 means no cap; otherwise each side keeps the first files in the
    reference's walk order (see `list_images`; before decoding is checked). Epochs count from 1;
    once `epoch > n_epochs` training resizes straight to `crop_size`.
    """
    dataroot: str
    phase: str = "train"
    direction: str = "AtoB"
    max_dataset_size: int = 0
    serial_batches: bool = False
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    no_flip: bool = False
    n_epochs: int = 200
    cache: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"--direction must be one of {', '.join(DIRECTIONS)}; "
                             f"got {self.direction!r}")
        if self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"--preprocess must be one of {', '.join(PREPROCESS_MODES)}; "
                             f"got {self.preprocess!r}")
        if self.max_dataset_size < 0:
            raise ValueError(f"--max_dataset_size must be >= 0 (0: no cap); "
                             f"got {self.max_dataset_size}")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and \
                self.load_size < self.crop_size:
            raise ValueError(f"--load_size ({self.load_size}) must be >= --crop_size "
                             f"({self.crop_size}) for --preprocess={self.preprocess}")


def list_images(folder, max_dataset_size=0):
    """Sorted paths of the images (by extension, any case) in `folder` and its subfolders.

    As the reference's `sorted(make_dataset(folder, max_dataset_size))`: folders in sorted
    path order (symbolic links followed), each folder's files in directory order, the first
    `max_dataset_size` of those kept (0: all), then sorted. So a cap keeps the files the
    reference would train on, which are not always the first ones in sorted order.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Image folder {folder} does not exist; expected a folder of "
                                f"{'/'.join(IMAGE_EXTENSIONS)} files")
    paths = [os.path.join(root, name)
             for root, _, names in sorted(os.walk(folder, followlinks=True))
             for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    if not paths:
        raise ValueError(f"Image folder {folder} has no images (subfolders included); "
                         f"expected files ending in {', '.join(IMAGE_EXTENSIONS)} (any case)")
    return sorted(paths[:max_dataset_size] if max_dataset_size else paths)


# Leading bytes of the formats only Pillow reads: TIFF (classic and BigTIFF, either byte order)
# and Netpbm (P1-P6 then whitespace; .ppm files may hold any of them, as in the reference).
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
_NETPBM_MAGIC = b"P[1-6][[:space:]#]"


def read_image(path):
    """An image file's path (scalar string) -> uint8 [H, W, 3], any of READABLE_FORMATS.

    TIFF and Netpbm, which TF cannot decode, go through Pillow's convert('RGB') (the
    reference's loader) in a tf.numpy_function, so this runs in tf.data pipelines but cannot
    be saved in a SavedModel (whose encoded-image signature uses `decode_image`).
    """
    contents = tf.io.read_file(path)
    needs_pillow = (
        tf.reduce_any(tf.equal(tf.strings.substr(contents, 0, 4), _TIFF_MAGIC))
        | tf.strings.regex_full_match(tf.strings.substr(contents, 0, 3), _NETPBM_MAGIC))
    image = tf.cond(needs_pillow,
                    lambda: tf.numpy_function(_pillow_rgb, [tf.io.decode_raw(contents, tf.uint8)],
                                              tf.uint8, stateful=False),
                    lambda: decode_image(contents))
    image.set_shape([None, None, 3])
    return image


def _pillow_rgb(contents):
    """uint8 [N] encoded bytes -> uint8 [H, W, 3], decoded by Pillow (first frame).

    Bytes go in as uint8: tf.numpy_function hands a string over as `bytes` in graphs but as
    an object array eagerly.
    """
    with Image.open(io.BytesIO(contents.tobytes())) as image:
        return np.asarray(image.convert("RGB"))


def decode_image(contents):
    """Encoded JPEG/PNG/BMP/GIF bytes (scalar string) -> uint8 [H, W, 3], in TF ops only.

    Grayscale and palette images become RGB, alpha is dropped, 16-bit PNGs keep their top 8
    bits, GIFs give their first frame. JPEGs use the accurate integer IDCT, which matches
    Pillow's (the reference's) pixels exactly where TF's default fast IDCT is off by up to ~9
    levels. TF's BMP decoder returns the palette *indices* of 8-bit BMPs as gray, so those are
    looked up in the file's palette here.
    """
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    header = _bmp_header(contents)
    is_palette_bmp = ((header[0] == ord("B")) & (header[1] == ord("M"))
                      & (_little_endian(header, 14, 4) >= 40)  # BITMAPINFOHEADER or later
                      & (_little_endian(header, 28, 2) == 8))  # 8 bits per pixel
    return tf.cond(is_palette_bmp,
                   lambda: _lookup_bmp_palette(contents, header, image[..., 0]),
                   lambda: image)


def _bmp_header(contents):
    """int64 [54]: the first 54 bytes, zero-padded so short files of other formats still parse."""
    padded = tf.strings.join([tf.strings.substr(contents, 0, 54), b"\0" * 54])
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, 54), tf.uint8), tf.int64)


def _little_endian(header, offset, num_bytes):
    return sum(header[offset + k] * 256**k for k in range(num_bytes))


def _lookup_bmp_palette(contents, header, indices):
    """uint8 [H, W] palette indices -> uint8 [H, W, 3], palette entries being B, G, R, 0."""
    used = _little_endian(header, 46, 4)
    num_colours = tf.where(used > 0, used, 256)
    palette = tf.io.decode_raw(
        tf.strings.substr(contents, 14 + _little_endian(header, 14, 4), 4 * num_colours),
        tf.uint8)
    rgb = tf.reverse(tf.reshape(palette, [-1, 4])[:, :3], axis=[1])
    return tf.gather(rgb, tf.cast(indices, tf.int32))


def load_image(path):
    """One image file -> float32 [H, W, 3] in [-1, 1], any size (for inference)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file {path} does not exist")
    try:
        return from_uint8(read_image(path))
    except tf.errors.OpError as error:
        raise ValueError(f"Image file {path} cannot be decoded as {READABLE_FORMATS}: "
                         f"{error.message}") from None


def _resize(image, size):
    """Bicubic resize of [..., H, W, 3] in [-1, 1] to `size`, clipped back to [-1, 1].

    Antialiased, as PIL's bicubic (the reference) is when shrinking; a resize to the same size
    is the identity.
    """
    resized = tf.image.resize(image, size, method="bicubic", antialias=True)
    return tf.clip_by_value(resized, -1.0, 1.0)


def _multiple_of_4(size):
    """[2] int32 size rounded to the nearest multiples of 4 (the generator downsamples twice).

    As the reference's __make_power_2: Python's round, so a side halfway between two
    multiples of 4 goes to the one that is a multiple of 8 (18 -> 16, 22 -> 24). Sides of 1 or 2 pixels, which the reference rounds to 0 and then
    fails to resize, become 4.
    """
    quarters = tf.round(tf.cast(size, tf.float64) / 4)  # tf.round: half to even, as Python's
    return tf.maximum(tf.cast(quarters, tf.int32) * 4, 4)


def _round_to_multiple_of_4(image):
    """[..., H, W, 3] resized (bicubic) to H, W rounded to the nearest multiples of 4;
    statically aligned images (the usual crops) skip the resize op."""
    static = image.shape[-3:-1]
    if static.is_fully_defined() and all(n % 4 == 0 for n in static):
        return image
    return _resize(image, _multiple_of_4(tf.shape(image)[-3:-1]))


def _load_size(size, options):
    """[2] int32: the size after the resize stage of `options.preprocess`, from size [2].

    scale_width is the reference's __scale_width: width to load_size, height keeping the aspect
    but at least crop_size.
    """
    if options.preprocess == "resize_and_crop":
        return tf.constant([options.load_size, options.load_size])
    if options.preprocess.startswith("scale_width"):
        height = tf.maximum(options.load_size * size[0] // size[1], options.crop_size)
        return tf.stack([height, tf.constant(options.load_size)])
    return size


def _train_transform(image, options, key):
    """float32 [H, W, 3] in [-1, 1] -> the training view; `key` [2] seeds crop and flip."""
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    image = _resize(image, _load_size(tf.shape(image)[-3:-1], options))
    if options.preprocess in _CROPPING_MODES:
        image = tf.image.stateless_random_crop(
            image, [options.crop_size, options.crop_size, 3], seed=crop_key)
    image = _round_to_multiple_of_4(image)
    if not options.no_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_key)
    return image


def test_transform(image, options):
    """Test-time view of float32 [..., H, W, 3] in [-1, 1]: crop_size² or, for `none`, the
    size rounded to the nearest multiples of 4."""
    if options.preprocess == "none":
        return _round_to_multiple_of_4(image)
    return _resize(image, [options.crop_size, options.crop_size])


def _cache_budget_bytes():
    """A quarter of the free memory: building the cache briefly holds about three copies."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):
        return 0


class _ImageStore:
    """One domain's images by index: decoded uint8 pixels in memory, or files read on demand."""

    def __init__(self, paths, shapes, images=None):
        self.paths = paths
        self.shapes = shapes
        self._paths = tf.constant(paths)
        self._pixels = None
        if images is not None:
            self._pixels = tf.constant(np.concatenate([image.ravel() for image in images]))
            self._offsets = tf.constant(np.cumsum([0] + [image.size for image in images]))
            self._shapes = tf.constant(shapes, tf.int64)

    def __len__(self):
        return len(self.paths)

    @property
    def cached(self):
        return self._pixels is not None

    def get(self, index):
        """int64 scalar -> uint8 [H, W, 3]."""
        if self._pixels is None:
            return read_image(tf.gather(self._paths, index))
        height, width = tf.unstack(self._shapes[index])
        start = self._offsets[index]
        return tf.reshape(self._pixels[start:start + height * width * 3], [height, width, 3])


class UnalignedFolders:
    """`dataroot/{phase}A` and `{phase}B` (swapped for BtoA), scanned and checked once.

    Files that do not decode are logged by path and skipped; `num_skipped` counts them.
    """

    def __init__(self, options):
        self.options = options
        first, second = ("A", "B") if options.direction == "AtoB" else ("B", "A")
        folders = [os.path.join(options.dataroot, options.phase + side)
                   for side in (first, second)]
        paths = [list_images(folder, options.max_dataset_size) for folder in folders]
        budget = _cache_budget_bytes() if options.cache else 0
        self.num_skipped = 0
        stores = []
        for folder, side in zip(folders, paths):
            good, shapes, images = self._scan(folder, side, budget)
            budget -= sum(image.nbytes for image in images or ())
            stores.append(_ImageStore(good, shapes, images))
        self._a, self._b = stores
        if options.preprocess == "crop":
            self._check_crop_fits()

    def _scan(self, folder, paths, budget):
        """Decodes `paths` in parallel -> (decodable paths, their [H, W] sizes, uint8 images or
        None when caching is off or they exceed `budget` bytes)."""
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
        self.num_skipped += skipped
        if skipped:
            logging.warning("Skipped %d of %d files in %s that cannot be decoded.",
                            skipped, len(paths), folder)
        if not good:
            raise ValueError(f"Image folder {folder} has no decodable images; expected "
                             f"{READABLE_FORMATS} files")
        logging.info("%s: %d images.", folder, len(good))
        return good, shapes, images

    def _check_crop_fits(self):
        crop = self.options.crop_size
        small = [path for store in (self._a, self._b)
                 for path, shape in zip(store.paths, store.shapes) if min(shape) < crop]
        if small:
            raise ValueError(f"--preprocess=crop needs images of at least --crop_size={crop} "
                             f"pixels per side; {len(small)} are smaller, e.g. {small[0]}")

    @property
    def cached(self):
        """Whether both domains' decoded images are held in memory (`cache` and they fit)."""
        return self._a.cached and self._b.cached

    @property
    def size_a(self):
        return len(self._a)

    @property
    def size_b(self):
        return len(self._b)

    def steps_per_epoch(self, batch_size):
        """Batches per epoch: the reference's length max(size_a, size_b), remainder dropped so
        every batch has the same static size."""
        length = max(self.size_a, self.size_b)
        if batch_size > length:
            raise ValueError(f"--batch_size={batch_size} exceeds the {length} images of the "
                             f"larger domain in {self.options.dataroot}")
        return length // batch_size

    def epoch_dataset(self, epoch, batch_size, skip_batches=0, input_context=None):
        """The batches of `epoch` (from 1) after the first `skip_batches`, as dicts
        {"a": float32 [B, H, W, 3], "b": float32 [B, H, W, 3]} in [-1, 1].

        H = W = crop_size for the cropping modes; `none` and `scale_width` keep (rounded)
        source sizes and so need batch_size 1 unless all images give one size.

        `batch_size` is the global batch. With a tf.distribute.InputContext, this input
        pipeline loads only its own consecutive part of every global batch, in batches of
        the per-replica size B, so the pipelines together see exactly the unsharded batches.
        """
        options = self.options
        steps = self.steps_per_epoch(batch_size)
        if not 0 <= skip_batches <= steps:
            raise ValueError(f"skip_batches must be in [0, {steps}] (the batches per epoch at "
                             f"batch size {batch_size}); got {skip_batches}")
        context = input_context or tf.distribute.InputContext()
        pipeline_batch = batch_size // context.num_input_pipelines
        replica_batch = context.get_per_replica_batch_size(batch_size)
        if epoch > options.n_epochs:
            # The reference's fine-tuning phase: load_size := crop_size (no resize-crop jitter).
            options = dataclasses.replace(options, load_size=options.crop_size)
        out_shape = self._output_shape(options, batch_size)
        size_a, size_b = self.size_a, self.size_b
        with tf.device("/cpu:0"):  # the stateless draws must not depend on the device
            epoch_key = tf.constant([options.seed, epoch], tf.int64)
            order = tf.range(max(size_a, size_b), dtype=tf.int64)
            if not options.serial_batches:
                order = tf.random.experimental.stateless_shuffle(order, seed=epoch_key)
            a_indices = order % size_a

        def load_pair(element):
            element_key = tf.random.experimental.stateless_fold_in(epoch_key, element)
            b_key, a_view_key, b_view_key = tf.unstack(
                tf.random.experimental.stateless_split(element_key, 3))
            if options.serial_batches:
                b_index = element % size_b
            else:
                b_index = tf.random.stateless_uniform(
                    [], b_key, maxval=size_b, dtype=tf.int64)
            pair = {}
            for name, store, index, key in (("a", self._a, a_indices[element], a_view_key),
                                            ("b", self._b, b_index, b_view_key)):
                image = _train_transform(from_uint8(store.get(index)), options, key)
                pair[name] = tf.ensure_shape(image, out_shape)
            return pair

        def element_of(position):
            """This pipeline's `position`-th element -> its index in the unsharded epoch."""
            batch, offset = position // pipeline_batch, position % pipeline_batch
            return ((skip_batches + batch) * batch_size
                    + context.input_pipeline_id * pipeline_batch + offset)

        return (tf.data.Dataset.range((steps - skip_batches) * pipeline_batch)
                .map(element_of)
                .map(load_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(replica_batch, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

    def _output_shape(self, options, batch_size):
        """Static [H, W, 3] of one training view (None where sizes vary); raises when
        batch_size > 1 would have to stack views of different sizes."""
        if options.preprocess in _CROPPING_MODES:
            side = int(_multiple_of_4(options.crop_size))
            return [side, side, 3]
        sources = set(self._a.shapes + self._b.shapes)
        sizes = sorted({tuple(int(n) for n in _multiple_of_4(_load_size(tf.constant(s), options)))
                        for s in sources})
        if len(sizes) == 1:
            return [*sizes[0], 3]
        if batch_size > 1:
            raise ValueError(
                f"--batch_size={batch_size} needs training images of one size, but "
                f"--preprocess={options.preprocess} keeps the source sizes of "
                f"{options.dataroot} and gives {len(sizes)} sizes (e.g. {sizes[0]} and "
                f"{sizes[-1]}); use --batch_size=1 or a cropping --preprocess "
                f"({', '.join(_CROPPING_MODES)})")
        return [None, None, 3]
