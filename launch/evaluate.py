"""Scores translations: `python -m launch.evaluate --real=DIR --fake=DIR
[--metrics=fid,kid,is,swd,psnr,ssim]
[--inception=fid2015:PATH|keras:PATH|segmenter:SAVEDMODEL|random]
[--paired=DIR] [--segmenter=SAVEDMODEL --labels=DIR] [--output=JSON] [--logdir=DIR]`,
or `--checkpoint=RUN --dataroot=DIR` to translate the test split first (into a folder next
to the JSON). Prints a table that names the Inception backbone (tfattncut.evaluation.evaluate).
"""
from absl import flags

from tfattncut import cli
from tfattncut.evaluation import evaluate, reports
from tfattncut.evaluation import images as image_sets

flags.DEFINE_string("real", None, "Folder of real target-domain images (FID, KID, SWD).")
flags.DEFINE_string("fake", None, "Folder of translated images.")
flags.DEFINE_string("paired", None, "Folder with each fake image's target, same file stem "
                    "(PSNR, SSIM), e.g. DATAROOT/testA_as_B.")
flags.DEFINE_list("metrics", None, f"Any of {','.join(evaluate.METRICS)}; default: all that "
                  "the given folders allow.")
flags.DEFINE_string("inception", None, "Inception backbone for FID/KID/IS: fid2015:PATH "
                    "(comparable with published numbers), keras:PATH, segmenter:SAVEDMODEL (a "
                    "segmenter's feature space), or random (smoke test).")
flags.DEFINE_string("checkpoint", None, "Training run to translate --dataroot's test split with.")
flags.DEFINE_string("dataroot", None, "Data set (testA, testB, ...) for --checkpoint.")
flags.DEFINE_string("segmenter", None, "SavedModel segmenter: images -> logits over the 19 "
                    "Cityscapes train ids; scored on --fake against --labels.")
flags.DEFINE_string("labels", None, "Label maps (Cityscapes label ids) of the source images, "
                    "same stems as --fake; default with --checkpoint: the source's test labels.")
flags.DEFINE_integer("image_size", None, "Resize every image to this square size (default: "
                     "keep sizes; each folder's images must then share one).", lower_bound=1)
flags.DEFINE_integer("batch_size", image_sets.BATCH_SIZE, "Images per batch.", lower_bound=1)
flags.DEFINE_string("output", None, "JSON report path (default with --checkpoint: "
                    "RUN/eval/evaluate.json).")
flags.DEFINE_string("logdir", None, "Also write the metrics as TensorBoard scalars here.")
FLAGS = flags.FLAGS


def main(_argv):  # cli.run refuses positional arguments
    report, output = evaluate.run(
        fake=FLAGS.fake, real=FLAGS.real, paired=FLAGS.paired, metrics=FLAGS.metrics,
        inception_spec=FLAGS.inception, checkpoint=FLAGS.checkpoint, dataroot=FLAGS.dataroot,
        segmenter=FLAGS.segmenter, labels=FLAGS.labels, image_size=FLAGS.image_size,
        batch_size=FLAGS.batch_size, output=FLAGS.output, logdir=FLAGS.logdir)
    print()
    print(reports.format_table(report))
    if FLAGS.checkpoint:
        print(f"Translations: {report['inputs']['fake']}")
    if output:
        print(f"Report: {output}")


if __name__ == "__main__":
    cli.run(main)
