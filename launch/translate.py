"""Translates images with a trained generator:
`python -m launch.translate --checkpoint=runs/NAME --input=DIR_OR_FILE --output=DIR [--labels=DIR]`.

Any image size works: sizes that are not multiples of 4 are reflect-padded at the bottom and
right, translated, and cropped back (tfattncut.inference). With --labels, each image's label
map (same file stem) is copied to OUTPUT_labels/, so a labelled simulator set becomes a
labelled photo-style set in the CycleGAN layout.
"""
import os
import shutil

from absl import app, flags

from tfattncut.data import folders
from tfattncut.evaluation import images
from tfattncut.inference import load_translator

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
    sources = [label_path(labels, path) for path in paths] if labels else []
    translator, _ = load_translator(checkpoint, direction)
    written = images.translate_images(translator, paths, output)
    if labels:
        labels_out = output.rstrip("/") + "_labels"
        os.makedirs(labels_out, exist_ok=True)
        for source in sources:
            shutil.copyfile(source, os.path.join(labels_out, os.path.basename(source)))
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
