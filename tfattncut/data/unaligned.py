"""The unaligned folder data set (docs/design/training.md#unaligned-folder-data-set) as a
tf.data pipeline, sharded over input pipelines for tf.distribute.

Layout: `dataroot/{phase}A`, `dataroot/{phase}B`. Domain A is walked in a per-epoch order and
each A image is paired with a B image drawn at random, as in the reference's UnalignedDataset.
Every random draw (A order, B index, crop offset, flip) is stateless and seeded from
(seed, epoch, element index), so an epoch's batches are a pure function of (seed, epoch): a run
resumed mid-epoch with `skip_batches` sees exactly the batches an uninterrupted run would have.

A batch holds the input streams the method asks for (`Method.input_streams`, from STREAMS):
the images "a" and "b" (the source and target domains, A and B swapped for BtoA), and the
label maps "a_labels", "b_labels" of those images, read from `{phase}A_labels/` (B's
likewise): single-channel maps of Cityscapes label ids with the image's file stem, as the
synthetic set writes them, served as train ids (data.labels, 255: ignore). A label map takes
its image's crop and flip (one joint view, transforms.train_transform) and no random draw of
its own, so asking for labels changes no image and no other draw.

The options are the run's Config (dataroot, direction, max_dataset_size, serial_batches,
preprocess, load_size, crop_size, no_flip, n_epochs, seed; checked by `config.validate`).
Files are listed by `image_files.list_images`, decoded once by `image_cache.scan` (kept as
uint8 until the transform, so caching never changes a pixel) and viewed by `transforms`.
"""
import os

import tensorflow as tf

from tfattncut.data import image_cache, transforms
from tfattncut.data.image_files import list_images
from tfattncut.pixels import from_uint8

IMAGE_STREAMS = ("a", "b")
LABELS = "_labels"  # a label stream's suffix, and its folder's
STREAMS = IMAGE_STREAMS + tuple(stream + LABELS for stream in IMAGE_STREAMS)


def is_label_stream(stream):
    """Whether a stream of STREAMS holds label maps (int32 [B, H, W] train ids) rather than
    images (float32 [B, H, W, 3] in [-1, 1])."""
    return stream.endswith(LABELS)


class UnalignedFolders:
    """`dataroot/{phase}A` and `{phase}B` (swapped for BtoA), scanned and checked once.

    `config.max_dataset_size` caps each side (see `list_images`; before decoding is checked).
    Epochs count from 1; once `epoch > config.n_epochs` training resizes straight to
    `crop_size`. `cache`: hold the decoded images in memory when they fit. Image files that
    do not decode are logged by path and skipped; `num_skipped` counts them. `streams`: what
    each batch holds, from STREAMS (see the module docstring).
    """

    def __init__(self, config, phase="train", cache=True, streams=IMAGE_STREAMS):
        unknown = [stream for stream in streams if stream not in STREAMS]
        if unknown:
            raise ValueError(f"Input streams {unknown}: the unaligned folders serve "
                             f"{', '.join(STREAMS)}")
        self.config = config
        self.streams = tuple(streams)
        first, second = ("A", "B") if config.direction == "AtoB" else ("B", "A")
        folders = [os.path.join(config.dataroot, phase + side) for side in (first, second)]
        paths = [list_images(folder, config.max_dataset_size) for folder in folders]
        budget = image_cache.free_memory_budget() if cache else 0
        self.num_skipped = 0
        self._images = {}
        for stream, folder, side in zip(IMAGE_STREAMS, folders, paths):
            store, skipped = image_cache.scan(folder, side, budget)
            budget -= store.nbytes
            self.num_skipped += skipped
            self._images[stream] = store
        self._labels = {}
        for stream, folder in zip(IMAGE_STREAMS, folders):
            if stream + LABELS in self.streams:
                try:
                    store = image_cache.scan_labels(folder + LABELS, self._images[stream],
                                                    budget)
                except (OSError, ValueError) as error:
                    raise type(error)(f"The input stream {stream + LABELS} of the method "
                                      f"needs a label map per image of {folder}: {error}"
                                      ) from None
                budget -= store.nbytes
                self._labels[stream] = store
        if config.preprocess == "crop":
            self._check_crop_fits()

    def _check_crop_fits(self):
        crop = self.config.crop_size
        small = [path for store in self._images.values()
                 for path, shape in zip(store.paths, store.shapes) if min(shape) < crop]
        if small:
            raise ValueError(f"--preprocess=crop needs images of at least --crop_size={crop} "
                             f"pixels per side; {len(small)} are smaller, e.g. {small[0]}")

    @property
    def cached(self):
        """Whether both domains' decoded images are held in memory (`cache` and they fit)."""
        return all(store.cached for store in self._images.values())

    @property
    def size_a(self):
        return len(self._images["a"])

    @property
    def size_b(self):
        return len(self._images["b"])

    def steps_per_epoch(self, batch_size):
        """Batches per epoch: the reference's length max(size_a, size_b), remainder dropped so
        every batch has the same static size."""
        length = max(self.size_a, self.size_b)
        if batch_size > length:
            raise ValueError(f"--batch_size={batch_size} exceeds the {length} images of the "
                             f"larger domain in {self.config.dataroot}")
        return length // batch_size

    def epoch_dataset(self, epoch, batch_size, skip_batches=0, input_context=None):
        """The batches of `epoch` (from 1) after the first `skip_batches`, as dicts of
        `streams`: {"a": float32 [B, H, W, 3], "b": float32 [B, H, W, 3]} in [-1, 1] and
        "a_labels", "b_labels": int32 [B, H, W] train ids of those images.

        H = W = crop_size for the cropping modes; `none` and `scale_width` keep (rounded)
        source sizes and so need batch_size 1 unless all images give one size.

        `batch_size` is the global batch. With a tf.distribute.InputContext, this input
        pipeline loads only its own consecutive part of every global batch, in batches of
        the per-replica size B, so the pipelines together see exactly the unsharded batches.
        """
        config = self.config
        steps = self.steps_per_epoch(batch_size)
        if not 0 <= skip_batches <= steps:
            raise ValueError(f"skip_batches must be in [0, {steps}] (the batches per epoch at "
                             f"batch size {batch_size}); got {skip_batches}")
        context = input_context or tf.distribute.InputContext()
        pipeline_batch = batch_size // context.num_input_pipelines
        replica_batch = context.get_per_replica_batch_size(batch_size)
        if epoch > config.n_epochs:
            # The reference's fine-tuning phase: load_size := crop_size (no resize-crop jitter).
            config = config.replace(load_size=config.crop_size)
        if batch_size > 1:
            self.require_one_size(f"--batch_size={batch_size} stacks images into batches",
                                  "use --batch_size=1")
        out_shape = self._output_shape(config)
        size_a, size_b = self.size_a, self.size_b
        with tf.device("/cpu:0"):  # the stateless draws must not depend on the device
            epoch_key = tf.constant([config.seed, epoch], tf.int64)
            order = tf.range(max(size_a, size_b), dtype=tf.int64)
            if not config.serial_batches:
                order = tf.random.experimental.stateless_shuffle(order, seed=epoch_key)
            a_indices = order % size_a

        def load_pair(element):
            element_key = tf.random.experimental.stateless_fold_in(epoch_key, element)
            b_key, a_view_key, b_view_key = tf.unstack(
                tf.random.experimental.stateless_split(element_key, 3))
            if config.serial_batches:
                b_index = element % size_b
            else:
                b_index = tf.random.stateless_uniform(
                    [], b_key, maxval=size_b, dtype=tf.int64)
            views = {}
            for name, index, key in (("a", a_indices[element], a_view_key),
                                     ("b", b_index, b_view_key)):
                if name not in self.streams and name not in self._labels:
                    continue
                image = from_uint8(self._images[name].get(index))
                if name in self._labels:
                    labels = tf.cast(self._labels[name].get(index)[..., 0], tf.int32)
                    image, labels = transforms.train_transform(image, config, key, labels)
                    views[name + LABELS] = tf.ensure_shape(labels, out_shape[:2])
                else:
                    image = transforms.train_transform(image, config, key)
                views[name] = tf.ensure_shape(image, out_shape)
            return {stream: views[stream] for stream in self.streams}

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

    def _view_sizes(self, config):
        """The sorted distinct (H, W) of the training views of both domains."""
        if config.preprocess in transforms.CROPPING_MODES:
            return [(config.crop_size, config.crop_size)]  # a multiple of 4 (config.validate)
        sources = set(self._images["a"].shapes + self._images["b"].shapes)
        return sorted({tuple(int(n) for n in transforms.multiple_of_4(
            transforms.resized_size(tf.constant(s), config))) for s in sources})

    def require_one_size(self, reason, fix):
        """Raises unless every training view, in both phases of training, has one size:
        `reason` says what stacks views, `fix` the way out other than a cropping mode."""
        config = self.config
        for phase in (config, config.replace(load_size=config.crop_size)):
            sizes = self._view_sizes(phase)
            if len(sizes) > 1:
                raise ValueError(
                    f"{reason}, so the training images need one size, but "
                    f"--preprocess={config.preprocess} keeps the source sizes of "
                    f"{config.dataroot} and gives {len(sizes)} sizes (e.g. {sizes[0]} and "
                    f"{sizes[-1]}); {fix} or use a cropping --preprocess "
                    f"({', '.join(transforms.CROPPING_MODES)})")

    def _output_shape(self, config):
        """Static [H, W, 3] of one training view (None where sizes vary)."""
        sizes = self._view_sizes(config)
        return [*sizes[0], 3] if len(sizes) == 1 else [None, None, 3]
