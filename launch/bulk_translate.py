"""Translates every image a glob matches, as an Apache Beam pipeline:
`python -m launch.bulk_translate --model=saved_models/NAME[/VERSION] --input='data/sim/**/*.png'
--output=out/ [--labels=DIR] [--format=jpg --quality=N] [--runner=... any Beam option]`.

Each input PREFIX/REL/STEM.EXT becomes OUTPUT/REL/STEM.png (PREFIX: --input up to the last
"/" before its first glob character), translated at its own size by the exported model's
serving signature (the pixels TF Serving returns); with --labels, LABELS/REL/STEM.* is copied
to OUTPUT_labels/REL/. --checkpoint=runs/NAME exports a run on the fly instead of --model.

Without --runner it runs here, in this process (--workers=N: N processes). Any other Beam
pipeline option (--runner=DataflowRunner --project=... --region=... --temp_location=gs://...,
--runner=FlinkRunner --flink_master=..., --runner=SparkRunner ...) is passed to Beam.

An --output must be empty or hold the outputs of the same model (OUTPUT/_job.json says
which). Reruns skip inputs whose output exists (outputs are renamed into place whole); inputs that
cannot be translated are listed with their reason in OUTPUT/_failed.jsonl, and the exit
status is then 1. The work is tfattncut.bulk's.
"""
import contextlib
import logging
import sys

from absl import app, flags
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from tfattncut import cli
from tfattncut.bulk import images, pipeline
from tfattncut.bulk.files import Layout, local_absolute
from tfattncut.bulk.model_handler import (DEFAULT_MAX_BATCH_PIXELS, checkpoint_identity,
                                          exported_checkpoint, model_identity, resolve_model)
from tfattncut.options import DIRECTIONS
from tfattncut.serving import image_header

flags.DEFINE_string("model", None, "Exported model: saved_models/NAME (newest version) or "
                    "saved_models/NAME/VERSION; local, gs:// or any path TensorFlow reads.")
flags.DEFINE_string("checkpoint", None, "Instead of --model: a run directory (or checkpoint "
                    "prefix), exported on the fly; local runners only.")
flags.DEFINE_enum("direction", "AtoB", DIRECTIONS, "--checkpoint: which generator of a "
                  "two-way method translates.")
flags.DEFINE_string("input", None, "Glob of the input files, e.g. 'data/sim/**/*.png' (Beam "
                    "globs: * within a folder, ** across folders).")
flags.DEFINE_string("output", None, "Folder for the translations (same relative paths).")
flags.DEFINE_string("labels", None, "Optional folder of label maps mirroring the inputs' "
                    "relative paths and stems; copied to OUTPUT_labels/.")
flags.DEFINE_enum("format", "png", images.FORMATS, "Output format.")
flags.DEFINE_integer("quality", images.DEFAULT_QUALITY, "--format=jpg: JPEG quality.",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_integer("max_image_pixels", image_header.DEFAULT_MAX_IMAGE_PIXELS,
                     "Inputs whose header declares more pixels are refused (as the server's "
                     "flag).", lower_bound=1, upper_bound=image_header.MAX_PIXELS_LIMIT)
flags.DEFINE_integer("max_batch_pixels", DEFAULT_MAX_BATCH_PIXELS, "Pixels per model call "
                     "at most (bounds memory; a larger image runs alone).", lower_bound=1)
flags.DEFINE_integer("workers", 1, "Local runs: 1 runs here (TensorFlow uses every core); N "
                     "starts N worker processes.", lower_bound=1)
flags.DEFINE_bool("share_model", False, "One model copy per machine, shared by its worker "
                  "processes (e.g. to fit GPU memory).")
flags.mark_flags_as_required(["input", "output"])
flags.register_multi_flags_validator(
    ["model", "checkpoint"], lambda f: (f["model"] is None) != (f["checkpoint"] is None),
    "give exactly one of --model and --checkpoint")
FLAGS = flags.FLAGS
# Runners whose workers are processes of this machine (the first two get local_options).
LOCAL_RUNNERS = (None, "DirectRunner", "BundleBasedDirectRunner", "FnApiRunner", "PrismRunner")


def parse_flags(argv):
    """Our flags; every other --flag is left in argv for Beam's PipelineOptions."""
    try:
        return FLAGS(argv, known_only=True)
    except flags.Error as error:
        sys.exit(f"FATAL Flags parsing error: {error}\nPass --helpfull to see help on flags.")


def beam_options(args, workers=1):
    """PipelineOptions of the flags that are not ours; the local default without --runner."""
    # A word that is not the value of the "--name value" before it.
    stray = [arg for before, arg in zip(["-"] + args, args) if not arg.startswith("-")
             and not (before.startswith("--") and "=" not in before)]
    if stray:
        raise app.UsageError(f"unexpected arguments: {' '.join(stray)}")
    options = PipelineOptions(args)
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                     - set(options.get_all_options()))
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join('--' + u for u in unknown)}: neither "
                         "flags of launch.bulk_translate (--helpfull) nor Beam pipeline options")
    if options.view_as(StandardOptions).runner in LOCAL_RUNNERS[:2]:
        given = options.get_all_options(drop_default=True)
        return PipelineOptions.from_dictionary({**pipeline.local_options(workers), **given})
    return options


def main(argv):
    options = beam_options(argv[1:], FLAGS.workers)
    layout = Layout(local_absolute(FLAGS.input), local_absolute(FLAGS.output),
                    FLAGS.labels and local_absolute(FLAGS.labels), FLAGS.format)
    runner = options.view_as(StandardOptions).runner
    if FLAGS.checkpoint and runner not in LOCAL_RUNNERS:
        raise ValueError(f"--checkpoint exports into a local temporary folder that "
                         f"--runner={runner}'s workers cannot read: export with "
                         f"launch.export, copy the version folder where the workers "
                         f"read, and pass --model")
    # Checked before --checkpoint's export, which takes a while.
    pipeline.require_input(layout)
    if FLAGS.checkpoint:
        model = checkpoint_identity(FLAGS.checkpoint, FLAGS.direction)
        model_path = exported_checkpoint(FLAGS.checkpoint, FLAGS.direction)
    else:
        resolved = resolve_model(local_absolute(FLAGS.model))
        model, model_path = model_identity(resolved), contextlib.nullcontext(resolved)
    pipeline.claim_output(layout, model)
    # A cluster runner's UI shows the job's counters as it runs; a local one only at the end.
    settings = dict(image_format=FLAGS.format, quality=FLAGS.quality,
                    max_image_pixels=FLAGS.max_image_pixels,
                    max_batch_pixels=FLAGS.max_batch_pixels, share_model=FLAGS.share_model,
                    progress=sys.stdout if runner in LOCAL_RUNNERS else None, model=model)
    with model_path as path:
        summary = pipeline.run(path, layout, options, **settings)
    print(f"Bulk translation into {FLAGS.output}: {summary}")
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    # Beam's per-bundle INFO lines (state cache, batch statistics) bury the summary.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    cli.run(main, flags_parser=parse_flags)
