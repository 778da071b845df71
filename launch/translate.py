"""Translates images with a trained generator:
`python -m launch.translate --checkpoint=runs/NAME --input=DIR_OR_FILE --output=DIR [--labels=DIR]`.

Any image size works: sizes that are not multiples of 4 are reflect-padded at the bottom and
right, translated, and cropped back (tfattncut.inference). With --labels, each image's label
map (same file stem) is copied to OUTPUT_labels/, so a labelled simulator set becomes a
labelled photo-style set in the CycleGAN layout. The work is tfattncut.translation's.

Inputs whose translations would share a name (x.png and x.jpg), an output folder that holds
the inputs, and files already in OUTPUT (or OUTPUT_labels) that this would replace, unless
--overwrite, are refused before anything is written. A file that cannot be read (a dangling
or looping link, a FIFO), cannot be decoded or is smaller than 5x5 does not stop the others:
every such file is listed with its reason at the end, and the exit status is 1.
"""
from absl import flags

from tfattncut import cli
from tfattncut.options import DIRECTIONS
from tfattncut.translation import labels_folder, translate_files

flags.DEFINE_string("checkpoint", None, "Run directory, its checkpoints/ folder, or a prefix.")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output", None, "Folder for the translations (PNG, same stems).")
flags.DEFINE_string("labels", None, "Optional folder of label maps with the inputs' stems.")
flags.DEFINE_enum("direction", "AtoB", DIRECTIONS,
                  "Which generator of a two-way method (CycleGAN, DCLGAN, ...) translates; "
                  "one-sided methods (CUT) only have AtoB, their trained direction.")
flags.DEFINE_bool("overwrite", False, "Replace translations (and label maps) already in "
                  "--output from an earlier run; without it such files are refused.")
flags.mark_flags_as_required(["checkpoint", "input", "output"])
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    written = translate_files(FLAGS.checkpoint, FLAGS.input, FLAGS.output, FLAGS.labels,
                              FLAGS.direction, FLAGS.overwrite)
    print(f"Wrote {len(written)} translation(s) to {FLAGS.output}"
          + (f" and their label maps to {labels_folder(FLAGS.output)}" if FLAGS.labels else ""))


if __name__ == "__main__":
    cli.run(main)
