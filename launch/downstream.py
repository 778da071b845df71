"""The downstream sim-to-real experiment: `python -m launch.downstream
--flagfile=configs/downstream.cfg [--checkpoint=runs/NAME ...]`.

Trains the same small segmenter on raw A, on A translated by --checkpoint (both with A's
labels) and on B (the upper bound), and reports each one's mean IoU on B's test split as a
table, JSON and a bar chart (tfattncut.evaluation.downstream).
"""
import os
import time

from absl import flags

from tfattncut import cli, output_folders
from tfattncut import inference, options
from tfattncut.data import synthetic
from tfattncut.evaluation import downstream
from tfattncut.models import segmenter

flags.DEFINE_string("dataroot", synthetic.DEFAULT_ROOT, "Data set with trainA, trainB, testB and "
                    "their *_labels folders.")
flags.DEFINE_bool("make_synthetic", False, "Render the bundled synthetic street scenes into "
                  "--dataroot if it has none.")
flags.DEFINE_string("checkpoint", None, "AtoB training run whose translator is tested.")
flags.DEFINE_string("output", None, "Folder for the report, chart, translations and the "
                    "upper-bound segmenter.")
flags.DEFINE_integer("epochs", 5, "Segmenter training epochs (each arm).", lower_bound=1)
flags.DEFINE_integer("batch_size", segmenter.BATCH_SIZE, "Segmenter batch size.",
                     lower_bound=1)
flags.DEFINE_float("learning_rate", segmenter.LEARNING_RATE, "Segmenter Adam learning rate.")
flags.DEFINE_integer("max_train_images", 0, "Train on the first N images of trainA and of "
                     "trainB (0: all).", lower_bound=0)
flags.DEFINE_integer("width", segmenter.WIDTH, "Segmenter width (channels of its first layer).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Segmenter initialisation and data order.")
flags.DEFINE_bool("overwrite", False, "Replace the results of an earlier run in --output.")
options.register_bounds("learning_rate", options.POSITIVE)
options.register_bounds("seed", options.SEED)
flags.mark_flags_as_required(["checkpoint", "output"])
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    # A wrong --checkpoint or --output fails before the rendering.
    inference.find_run(FLAGS.checkpoint)
    output_folders.check_output_folder("--output", FLAGS.output)
    output_folders.check_not_replacing(
        "--output", FLAGS.output, [os.path.join(FLAGS.output, name)
                                   for name in downstream.OUTPUTS], FLAGS.overwrite)
    if FLAGS.make_synthetic:
        synthetic.ensure_dataset(FLAGS.dataroot)
    start = time.time()
    report = downstream.run_downstream(
        FLAGS.dataroot, FLAGS.checkpoint, FLAGS.output, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        max_train_images=FLAGS.max_train_images, width=FLAGS.width, seed=FLAGS.seed)
    print(f"\nMean IoU on {report['settings']['test_images']} images of "
          f"{os.path.join(FLAGS.dataroot, 'testB')} ({(time.time() - start) / 60:.1f} min):\n")
    print(downstream.format_table(report))
    print(f"\nReport: {os.path.join(FLAGS.output, downstream.REPORT)}")
    print(f"Chart:  {os.path.join(FLAGS.output, downstream.CHART)}")


if __name__ == "__main__":
    cli.run(main)
