"""Translates images with a trained generator:
`python -m launch.translate --checkpoint=runs/NAME --input=DIR_OR_FILE --output=DIR [--labels=DIR]`.

Any image size works: sizes that are not multiples of 4 are reflect-padded at the bottom and
right, translated, and cropped back (tfattncut.inference). With --labels, each image's label
map (same file stem) is copied to OUTPUT_labels/, so a labelled simulator set becomes a
labelled photo-style set in the CycleGAN layout.
"""
import os
import shutil

import keras
import tensorflow as tf
from absl import app, flags

from tfattncut.data import folders
from tfattncut.inference import load_translator, translate

flags.DEFINE_string("checkpoint", None, "Run directory, its checkpoints/ folder, or a prefix.")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output", None, "Folder for the translations (PNG, same stems).")
flags.DEFINE_string("labels", None, "Optional folder of label maps with the inputs' stems.")
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"],
                  "Which generator of a two-way method (CycleGAN, DCLGAN, ...) translates; "
                  "one-sided methods (CUT) only have AtoB, their trained direction.")
flags.mark_flags_as_required(["checkpoint", "input", "output"])
FLAGS = flags.FLAGS


def label_path(labels_dir, image_path):
    """The label map of an image: same stem, any image extension; error if none."""
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for name in sorted(os.listdir(labels_dir)):
        if os.path.splitext(name)[0] == stem:
            return os.path.join(labels_dir, name)
    raise FileNotFoundError(f"--labels={labels_dir}: no label map for {image_path} "
                            f"(expected a file named {stem}.*)")


def translate_files(checkpoint, inputs, output, labels=None, direction="AtoB"):
    """Writes OUTPUT/STEM.png for each input (and OUTPUT_labels/ copies); returns the paths."""
    paths = folders.list_images(inputs) if os.path.isdir(inputs) else [inputs]
    for path in paths:
        if os.path.abspath(os.path.dirname(path)) == os.path.abspath(output):
            raise ValueError(f"--output={output} is the input folder: translations would "
                             "overwrite the inputs")
    generator, _ = load_translator(checkpoint, direction)
    os.makedirs(output, exist_ok=True)
    labels_out = output.rstrip("/") + "_labels"
    if labels:
        os.makedirs(labels_out, exist_ok=True)
    progress = keras.utils.Progbar(len(paths), unit_name="image")
    written = []
    for i, path in enumerate(paths, start=1):
        image = folders.load_image(path)[tf.newaxis]
        translated = translate(generator, image)[0]
        pixels = tf.cast(tf.round((tf.clip_by_value(translated, -1, 1) + 1) * 127.5), tf.uint8)
        stem = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(output, f"{stem}.png")
        tf.io.write_file(target, tf.io.encode_png(pixels))
        if labels:
            source = label_path(labels, path)
            shutil.copyfile(source, os.path.join(labels_out, os.path.basename(source)))
        written.append(target)
        progress.update(i)
    return written


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    written = translate_files(FLAGS.checkpoint, FLAGS.input, FLAGS.output, FLAGS.labels,
                              FLAGS.direction)
    print(f"Wrote {len(written)} translation(s) to {FLAGS.output}"
          + (f" and their label maps to {FLAGS.output.rstrip('/')}_labels" if FLAGS.labels else ""))


if __name__ == "__main__":
    app.run(main)
