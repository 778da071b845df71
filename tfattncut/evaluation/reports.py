"""An evaluation report and its forms: the dict, a printable table, a JSON file and
TensorBoard scalars; where a run's reports go (RUN/eval/) and the check that writing one
destroys nothing.

A report is a JSON-ready dict:
    inputs:     what was compared (folders, image counts, segmenter, ...);
    inception:  {backbone, comparable, note}: every report says which Inception backbone its
                FID/KID/IS came from, and for `random` that they are smoke-test numbers only;
    metrics:    flat {name: float}: fid, kid, kid_std, is, is_std, swd, swd_RES (per pyramid
                level), psnr, ssim, and with a segmenter mean_iou, pixel_accuracy,
                mean_class_accuracy;
    per_class_iou (with a segmenter), epoch (when a training run evaluates itself).
"""
import json
import os

import tensorflow as tf

from tfattncut import json_files, output_folders
from tfattncut.errors import ExistingPath, IsAFolder

EVAL_FOLDER = "eval"
# The keys every report has: how `check_report_path` recognises an earlier report.
REPORT_KEYS = {"inputs", "inception", "metrics"}


def backbone_info(backbone, spec=None):
    """The report's `inception` entry for a `metrics.inception.Backbone` (or None)."""
    if backbone is None:
        return {"backbone": None, "comparable": None,
                "note": "No Inception backbone: no FID, KID or IS in this report."}
    name = spec or backbone.name
    if backbone.name == "random":
        note = ("Inception backbone 'random' (a tiny fixed-seed random network): SMOKE TEST "
                "ONLY. Its FID/KID/IS are not comparable with published numbers, with other "
                "backbones or with anything but the same smoke test.")
    elif backbone.comparable:
        note = (f"Inception backbone '{name}' (the 2015 Inception graph): FID/KID/IS comparable "
                f"with published numbers.")
    else:
        note = (f"Inception backbone '{name}' (keras.applications InceptionV3): FID/KID/IS "
                f"comparable only with numbers from this backbone, not with published ones "
                f"(those use fid2015).")
    return {"backbone": name, "comparable": bool(backbone.comparable), "note": note}


def epoch_report_path(run_dir, epoch):
    """RUN/eval/epoch_NNNN.json: where a run's per-epoch reports go (launch.compare reads them)."""
    return os.path.join(run_dir, EVAL_FOLDER, f"epoch_{epoch:04d}.json")


def format_table(report):
    """The report as Markdown: metrics, the backbone note, and per-class IoU if present."""
    lines = ["| metric | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in report["metrics"].items()]
    lines += ["", report["inception"]["note"]]
    per_class = {k: v for k, v in report.get("per_class_iou", {}).items() if v is not None}
    if per_class:
        lines += ["", "| class | IoU |", "|---|---:|"]
        lines += [f"| {name} | {iou:.4f} |" for name, iou in per_class.items()]
        lines += ["(classes in neither the labels nor the predictions have no IoU and are "
                  "left out of the means)"]
    return "\n".join(lines)


def check_report_path(path):
    """Refuses --output=PATH when writing the report there would destroy something or fail:
    a folder; an existing file that is not an earlier report (an input image, a config, ...)
    or is training's report of an epoch (launch.compare plots those, and a report of
    launch.evaluate has no epoch); a path below an existing file.

    Run before any work, so that a mistyped path fails at once rather than after the metrics.
    """
    if os.path.isdir(path):
        raise IsAFolder(f"--output={path} is a folder; give the report's file path, "
                        f"e.g. {os.path.join(path, 'evaluate.json')}")
    output_folders.check_output_folder("--output", os.path.dirname(os.path.abspath(path)))
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            earlier = json.load(f)
    except (UnicodeDecodeError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and REPORT_KEYS <= earlier.keys()):
        raise ExistingPath(f"--output={path} exists and is not an evaluation report; "
                           f"writing the report would replace it: choose another path")
    if earlier.get("epoch") is not None:
        raise ExistingPath(
            f"--output={path} is training's report of epoch {earlier['epoch']}; writing this "
            f"report (which has no epoch) would take that point out of launch.compare's plot: "
            f"choose another path, e.g. {os.path.join(os.path.dirname(path), 'evaluate.json')}")


def write_json(report, path):
    """Writes the report (json_files.write_atomic); a NaN or infinite metric is a
    json_files.NonFiniteValue naming its entry, raised before the file is touched."""
    try:
        return json_files.write_atomic(report, path)
    except json_files.NonFiniteValue as error:
        raise json_files.NonFiniteValue(f"{error}; the metric failed on these images.") \
            from None


def log_to_tensorboard(report, step, logdir=None):
    """Scalars eval/NAME for every metric and the backbone note as text eval/inception, into
    a new writer at `logdir`, or (None) into the default writer of the caller's context."""
    if logdir:
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            log_to_tensorboard(report, step)
        writer.flush()
        return
    for name, value in report["metrics"].items():
        tf.summary.scalar(f"eval/{name}", value, step=step)
    tf.summary.text("eval/inception", report["inception"]["note"], step=step)
