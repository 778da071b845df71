"""Translation modules, local files: a run's checkpoint on image files, in this process.

Translating image files with a trained run: what `launch.translate` runs, and what
evaluation, the downstream experiment and the study run before scoring translations.

Files in, PNG files out (OUTPUT/STEM.png), with label maps copied alongside; every
destination is checked before anything is written, and a bad input does not stop the others.
The tensor-level work (any size, padding to the generator's stride) is `inference.translate`;
this module is the file handling around it, kept apart so serving imports only the former.
"""
import collections
import os
import shutil

import tensorflow as tf

from tfattncut import output_folders
from tfattncut.config import Config
from tfattncut.data import image_files, transforms
from tfattncut.data.image_files import stem
from tfattncut.inference import MIN_SIDE, load_translator, translate
from tfattncut.pixels import to_uint8
from tfattncut.progress import Progress


def resize_options(image_size):
    """The Config whose test-time view (transforms.test_transform) resizes to square
    `image_size` images, as training's test view does to crop_size²; None keeps sizes."""
    if image_size is None:
        return None
    return Config(preprocess="resize_and_crop", load_size=image_size, crop_size=image_size)


def load(path, options=None):
    """One file -> [H, W, 3] float32 in [-1, 1], resized by `resize_options` unless None."""
    image = image_files.load_image(path)
    return image if options is None else transforms.test_transform(image, options)


class UnreadableImages(ValueError):
    """Some inputs could not be translated (unreadable, undecodable, too small); all the
    others were.

    written: the translations' paths, in input order; failed: {input path: why}.
    """

    def __init__(self, written, failed, output_dir):
        self.written, self.failed = written, failed
        summary = (f"{len(failed)} of {len(failed) + len(written)} images could not be "
                   f"translated (the other {len(written)} are in {output_dir})" if written
                   else f"none of the {len(failed)} images could be translated")
        super().__init__(summary + ":\n" + "\n".join(f"  {why}" for why in failed.values()))


def translation_path(output_dir, path):
    return os.path.join(output_dir, stem(path) + ".png")


def check_destinations(paths, output_dir):
    """Refuses inputs whose translations would overwrite each other (x.png and x.jpg both
    become OUTPUT_DIR/x.png) or any input (`_refuse_overwriting_inputs`)."""
    by_stem = collections.defaultdict(list)
    for path in paths:
        by_stem[stem(path)].append(path)
    clashes = [f"{' and '.join(same)} -> {stem(same[0])}.png"
               for same in by_stem.values() if len(same) > 1]
    if clashes:
        raise ValueError(f"Inputs with the same file stem would overwrite each other's "
                         f"translation in {output_dir}: {'; '.join(clashes)}; rename them.")
    _refuse_overwriting_inputs({path: translation_path(output_dir, path) for path in paths},
                               output_dir, "translations")


def _refuse_overwriting_inputs(targets, folder, what):
    """targets: {input: the file written for it in `folder`}. Refuses a `folder` that holds
    any input: symbolic links resolved, since an output folder linked to the input folder, or
    an output file linked to an input, is written through the link."""
    real_folder = os.path.realpath(folder)
    for source, target in targets.items():
        real_source = os.path.realpath(source)
        if (os.path.dirname(real_source) == real_folder
                or os.path.realpath(os.path.dirname(source)) == real_folder
                or os.path.realpath(target) == real_source):
            raise ValueError(f"The {what}' folder {folder} holds the input {source}: writing "
                             f"there would overwrite the inputs; choose another one.")


def translate_images(translator, paths, output_dir, image_size=None):
    """Translates each file into OUTPUT_DIR/STEM.png; returns the written paths in order.

    translator: from `inference.load_translator`; `inference.translate` runs it on any size
      from MIN_SIDE up.
    image_size: None translates at each image's own size; N resizes to N x N first.
    Everything is checked with `check_destinations` before anything is written. A file that
    cannot be read (a dangling or looping link, a FIFO), cannot be decoded or is too small
    does not stop the others: UnreadableImages at the end lists every such file. OUTPUT_DIR
    is made with the first translation, so a run that writes nothing leaves no empty folder.
    """
    check_destinations(paths, output_dir)
    options = resize_options(image_size)
    # One graph for every image size: at a 1052x1916 frame it runs in 43 s and 2.8 GiB where
    # eager layer calls took 56 s and 4.4 GiB (the graph frees and reuses buffers in place).
    run = tf.function(lambda images: translate(translator, images),
                      input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    written, failed = [], {}
    progress = Progress(len(paths), unit="image")
    progress.note(f"Translating {len(paths)} images")
    for path in paths:
        try:
            image = load(path, options)
        except (ValueError, OSError) as error:
            failed[path] = str(error)
        else:
            height, width = image.shape[:2]
            if min(height, width) < MIN_SIDE:
                failed[path] = (f"Image file {path} is {height}x{width} pixels (height x "
                                f"width); translating needs at least {MIN_SIDE}x{MIN_SIDE}")
            else:
                target = translation_path(output_dir, path)
                os.makedirs(output_dir, exist_ok=True)  # here: a run that writes nothing
                tf.io.write_file(target, tf.io.encode_png(to_uint8(run(image[tf.newaxis])[0])))
                written.append(target)
        progress.add(1)
    if failed:
        raise UnreadableImages(written, failed, output_dir)
    return written


def label_paths(labels_dir, image_paths):
    """{image path: its label map}: the file of LABELS_DIR with the image's stem, any
    extension (the first by name if several); an error names the flag and the first image
    without one."""
    if not os.path.isdir(labels_dir):
        raise FileNotFoundError(f"--labels={labels_dir} is not a folder")
    by_stem = {}
    for name in sorted(os.listdir(labels_dir)):
        by_stem.setdefault(os.path.splitext(name)[0], os.path.join(labels_dir, name))
    for path in image_paths:
        if stem(path) not in by_stem:
            raise FileNotFoundError(f"--labels={labels_dir}: no label map for {path} "
                                    f"(expected a file named {stem(path)}.*)")
    return {path: by_stem[stem(path)] for path in image_paths}


def input_images(inputs):
    """The images of --input: a folder's, or the one file; FileNotFoundError naming the flag
    when there is nothing at that path (before any output folder is made)."""
    if not os.path.exists(inputs):
        raise FileNotFoundError(f"--input={inputs} does not exist")
    return image_files.list_images(inputs) if os.path.isdir(inputs) else [inputs]


def translate_files(checkpoint, inputs, output, labels=None, direction="AtoB",
                    overwrite=False):
    """Writes OUTPUT/STEM.png for each input and OUTPUT_labels/ copies of their label maps;
    returns the written paths. Files already there that this would replace are refused unless
    `overwrite` (a mistyped --output must not replace a data set's images with translations).
    UnreadableImages (see translate_images) comes after every other input is translated and
    its label map copied."""
    paths = input_images(inputs)
    sources = label_paths(labels, paths) if labels else {}
    # All before the checkpoint is read.
    output_folders.check_output_folder("--output", output)
    check_destinations(paths, output)
    label_targets = {source: os.path.join(labels_folder(output), os.path.basename(source))
                     for source in sources.values()}
    if sources:
        _refuse_overwriting_inputs(label_targets, labels_folder(output), "label maps")
    output_folders.check_not_replacing(
        "--output", output,
        [*(translation_path(output, p) for p in paths), *label_targets.values()], overwrite)
    translator, _ = load_translator(checkpoint, direction)
    try:
        written = translate_images(translator, paths, output)
    except UnreadableImages as error:
        _copy_labels([p for p in paths if p not in error.failed], label_targets, sources)
        raise
    _copy_labels(paths, label_targets, sources)
    return written


def labels_folder(output):
    """Where `translate_files` copies the label maps: OUTPUT_labels, the CycleGAN layout."""
    return output.rstrip("/") + "_labels"


def _copy_labels(paths, label_targets, sources):
    """Copies the label map of each of `paths` ({path: label map} in `sources`, empty without
    --labels) to its place in `label_targets`."""
    for path in paths:
        if path in sources:
            target = label_targets[sources[path]]
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(sources[path], target)
