"""Image sets on disk for evaluation: re-iterable batches, files paired by stem, PNG output.

Metrics make several passes over a set (Inception features, SWD, PSNR/SSIM), so a set is a
re-iterable object that decodes one batch at a time rather than a one-shot generator or an
in-memory array: memory stays at one batch however large the set.
"""
import collections
import os
import shutil

import keras
import tensorflow as tf

from tfattncut.data import folders
from tfattncut.inference import MIN_SIDE, load_translator, translate


def resize_options(image_size):
    """The test-time transform's options for square `image_size` images (folders.test_transform
    resizes to crop_size², as training's test view does); None keeps sizes."""
    if image_size is None:
        return None
    return folders.DataOptions(dataroot="", preprocess="resize_and_crop", load_size=image_size,
                               crop_size=image_size)


def load(path, options=None):
    """One file -> [H, W, 3] float32 in [-1, 1], resized by `resize_options` unless None."""
    image = folders.load_image(path)
    return image if options is None else folders.test_transform(image, options)


class ImageSet:
    """Images of some files as batches [B, H, W, 3] float32 in [-1, 1], in file order.

    image_size: None keeps each image's size (then every batch must share one size), or N
      to resize every image to N x N (bicubic, antialiased: `folders.test_transform`).
    """

    def __init__(self, paths, batch_size=16, image_size=None):
        if not paths:
            raise ValueError("An image set needs at least one image file; got none.")
        self.paths = list(paths)
        self.batch_size = batch_size
        self._options = resize_options(image_size)

    @classmethod
    def from_folder(cls, folder, batch_size=16, image_size=None):
        return cls(folders.list_images(folder), batch_size, image_size)

    def __len__(self):
        return len(self.paths)

    def __iter__(self):
        for start in range(0, len(self.paths), self.batch_size):
            paths = self.paths[start:start + self.batch_size]
            images = [load(path, self._options) for path in paths]
            for path, image in zip(paths[1:], images[1:]):
                if image.shape != images[0].shape:
                    raise ValueError(
                        f"Images of one set must share a size to be batched: {paths[0]} is "
                        f"{images[0].shape[:2]} but {path} is {image.shape[:2]}; pass "
                        f"--image_size to resize them all.")
            yield tf.stack(images)


def with_progress(batches, total, what):
    """Yields the batches of `batches` while a Progbar counts `total` images of `what`."""
    print(what)
    progress = keras.utils.Progbar(total, unit_name="image")
    for batch in batches:
        progress.add(int(batch.shape[0]))
        yield batch


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def match_by_stem(paths, folder, flag):
    """For each path, the image file in `folder` with the same stem (any image extension).

    flag: the command-line flag that named `folder`, for the error message.
    """
    by_stem = {stem(path): path for path in folders.list_images(folder)}
    missing = [path for path in paths if stem(path) not in by_stem]
    if missing:
        raise FileNotFoundError(
            f"{flag}={folder} has no file for {len(missing)} of the {len(paths)} images, e.g. "
            f"{missing[0]} (expected {stem(missing[0])}.png or another image extension).")
    return [by_stem[stem(path)] for path in paths]


def to_uint8(images):
    """[..., 3] float in [-1, 1] -> uint8, rounded (as the translations written to disk)."""
    return tf.cast(tf.round((tf.clip_by_value(images, -1.0, 1.0) + 1.0) * 127.5), tf.uint8)


class UnreadableImages(ValueError):
    """Some inputs could not be translated (undecodable, too small); all the others were.

    written: the translations' paths, in input order; failed: {input path: why}.
    """

    def __init__(self, written, failed, output_dir):
        self.written, self.failed = written, failed
        super().__init__(
            f"{len(failed)} of {len(failed) + len(written)} images could not be translated "
            f"(the other {len(written)} are in {output_dir}):\n"
            + "\n".join(f"  {why}" for why in failed.values()))


def check_destinations(paths, output_dir):
    """Refuses inputs whose translations would overwrite each other (x.png and x.jpg both
    become OUTPUT_DIR/x.png) or an output folder that holds any of the inputs."""
    output_dir = os.path.abspath(output_dir)
    for path in paths:
        if os.path.dirname(os.path.abspath(path)) == output_dir:
            raise ValueError(f"The translations' folder {output_dir} holds the input {path}: "
                             f"writing there would overwrite the inputs; choose another one.")
    by_stem = collections.defaultdict(list)
    for path in paths:
        by_stem[stem(path)].append(path)
    clashes = [f"{' and '.join(same)} -> {stem(same[0])}.png"
               for same in by_stem.values() if len(same) > 1]
    if clashes:
        raise ValueError(f"Inputs with the same file stem would overwrite each other's "
                         f"translation in {output_dir}: {'; '.join(clashes)}; rename them.")


def translate_images(translator, paths, output_dir, image_size=None):
    """Translates each file into OUTPUT_DIR/STEM.png; returns the written paths in order.

    translator: from `inference.load_translator`; `inference.translate` runs it on any size
      from MIN_SIDE up.
    image_size: None translates at each image's own size; N resizes to N x N first.
    Everything is checked with `check_destinations` before anything is written. A file that
    cannot be decoded or is too small does not stop the others: UnreadableImages at the end
    lists every such file.
    """
    check_destinations(paths, output_dir)
    os.makedirs(output_dir, exist_ok=True)
    options = resize_options(image_size)
    written, failed = [], {}
    print(f"Translating {len(paths)} images")
    progress = keras.utils.Progbar(len(paths), unit_name="image")
    for path in paths:
        try:
            image = load(path, options)
        except ValueError as error:
            failed[path] = str(error)
        else:
            height, width = image.shape[:2]
            if min(height, width) < MIN_SIDE:
                failed[path] = (f"Image file {path} is {height}x{width} pixels (height x "
                                f"width); translating needs at least {MIN_SIDE}x{MIN_SIDE}")
            else:
                target = os.path.join(output_dir, stem(path) + ".png")
                tf.io.write_file(target, tf.io.encode_png(
                    to_uint8(translate(translator, image[tf.newaxis])[0])))
                written.append(target)
        progress.add(1)
    if failed:
        raise UnreadableImages(written, failed, output_dir)
    return written


def label_path(labels_dir, image_path):
    """The label map of an image: same stem, any image extension; error if none."""
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for name in sorted(os.listdir(labels_dir)):
        if os.path.splitext(name)[0] == stem:
            return os.path.join(labels_dir, name)
    raise FileNotFoundError(f"--labels={labels_dir}: no label map for {image_path} "
                            f"(expected a file named {stem}.*)")


def translate_files(checkpoint, inputs, output, labels=None, direction="AtoB"):
    """Writes OUTPUT/STEM.png for each input and OUTPUT_labels/ copies of their label maps;
    returns the written paths. UnreadableImages (see translate_images) comes after every
    other input is translated and its label map copied."""
    if not os.path.exists(inputs):
        raise FileNotFoundError(f"--input={inputs} does not exist")
    paths = folders.list_images(inputs) if os.path.isdir(inputs) else [inputs]
    sources = {path: label_path(labels, path) for path in paths} if labels else {}
    check_destinations(paths, output)  # before the checkpoint is read
    translator, _ = load_translator(checkpoint, direction)
    try:
        written = translate_images(translator, paths, output)
    except UnreadableImages as error:
        _copy_labels([p for p in paths if p not in error.failed], sources, output)
        raise
    _copy_labels(paths, sources, output)
    return written


def _copy_labels(paths, sources, output):
    """Copies the label map of each of `paths` ({path: label map} in `sources`, empty without
    --labels) into OUTPUT_labels/."""
    if not sources:
        return
    labels_out = output.rstrip("/") + "_labels"
    os.makedirs(labels_out, exist_ok=True)
    for path in paths:
        shutil.copyfile(sources[path], os.path.join(labels_out, os.path.basename(sources[path])))
