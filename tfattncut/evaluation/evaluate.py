"""Metric reports (docs/design/metrics.md#reports): chosen metrics between two image sets, a
translator's scores on a data set's test split, and what `launch.evaluate` does. The report
itself (its keys, table, JSON and TensorBoard scalars) is `reports`'.

Sets are streamed one batch at a time (`images.ImageSet`, or any re-iterable of batches such
as a `tf.data.Dataset`): the Inception pass keeps running moments, so set size is not bounded
by memory except for KID's feature rows.
"""
import collections
import os
import shutil
import tempfile

import numpy as np

from tfattncut import inference, output_folders, translation
from tfattncut.data.image_files import list_images, match_by_stem
from tfattncut.errors import InvalidValue
from tfattncut.evaluation import images as image_sets
from tfattncut.evaluation import segmenter as segmenter_lib
from tfattncut.evaluation.reports import (EVAL_FOLDER, backbone_info, check_report_path,
                                         log_to_tensorboard, write_json)
from tfattncut.metrics import fid, fidelity, inception, inception_score, kid, streaming, swd
from tfattncut.models.segmenter import load_segmenter

INCEPTION_METRICS = ("fid", "kid", "is")
SET_METRICS = INCEPTION_METRICS + ("swd",)  # compare a fake set with a real one
PAIRED_METRICS = ("psnr", "ssim")           # need the paired target of each fake image
METRICS = SET_METRICS + PAIRED_METRICS


def default_metrics(has_real, has_paired):
    """What the given inputs allow: the set metrics with a real set, PSNR/SSIM with targets."""
    return (SET_METRICS if has_real else ()) + (PAIRED_METRICS if has_paired else ())


# What launch.evaluate's user passes for each input a metric needs (`check_metrics`).
EVALUATE_REMEDIES = {
    "real": "pass --real=DIR (or --dataroot with --checkpoint).",
    "paired": "pass --paired=DIR (e.g. testA_as_B).",
    "backbone": "pass --inception=fid2015:PATH (comparable with published numbers), "
                "keras:PATH, segmenter:PATH (domain-specific) or random (smoke test only).",
}


def check_metrics(metrics, has_real, has_paired, has_backbone, flag="--metrics",
                  remedies=EVALUATE_REMEDIES):
    """Raises, naming `flag` (the metrics' flag) and the remedy for the missing input
    (`remedies`: {real, paired, backbone}: what to pass), when a metric is unknown or lacks
    its input."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise InvalidValue(f"{flag}: unknown {unknown}; choose from {','.join(METRICS)}.")

    def refuse(names, verbs, what, remedy):
        """verbs: (singular, plural), as in 'fid needs', 'fid,kid need'."""
        verb = verbs[len(names) > 1]
        raise InvalidValue(f"{flag}={','.join(metrics)}: {','.join(names)} {verb} {what}; "
                           f"{remedies[remedy]}")

    needs_real = [m for m in metrics if m in ("fid", "kid", "swd")]
    if needs_real and not has_real:
        refuse(needs_real, ("compares with", "compare with"), "real images", "real")
    needs_paired = [m for m in metrics if m in PAIRED_METRICS]
    if needs_paired and not has_paired:
        refuse(needs_paired, ("needs", "need"), "the paired target of each fake image",
               "paired")
    needs_backbone = [m for m in metrics if m in INCEPTION_METRICS]
    if needs_backbone and not has_backbone:
        refuse(needs_backbone, ("needs", "need"), "an Inception backbone", "backbone")


def check_training_evaluation(config):
    """Raises, naming training's flags, when --eval_every_epochs could not score
    --eval_metrics on --dataroot's test split (as `evaluate_translator` will): before
    training, not after its first epoch."""
    found = test_split_folders(config.dataroot, config.direction)
    if not os.path.isdir(found["source"]):
        raise InvalidValue(f"--eval_every_epochs={config.eval_every_epochs} translates the test "
                           f"images of {found['source']}, which does not exist; add them to "
                           "--dataroot, or pass --eval_every_epochs=0")
    scored = (f"(training scores {found['source']} against {found['real']} and, for "
              "psnr/ssim, testA_as_B of --dataroot)")
    check_metrics(config.eval_metrics, os.path.isdir(found["real"]),
                  found["paired"] is not None, bool(config.inception), "--eval_metrics",
                  {"real": f"add them to --dataroot {scored}",
                   "paired": f"add them to --dataroot {scored}",
                   "backbone": f"pass --inception {scored}"})


def resolve_backbone(backbone):
    """(Backbone or None, spec) from a spec string ('keras:PATH', 'fid2015:PATH', 'random'),
    a loaded Backbone, None, or such a pair itself (what `run` loads up front, so that the
    report still names the spec)."""
    if isinstance(backbone, tuple):
        return backbone
    if backbone is None or isinstance(backbone, inception.Backbone):
        return backbone, None
    return inception.load_backbone(backbone), backbone


def compute_metrics(metrics, fake, real=None, paired=None, backbone=None, seed=0):
    """{name: float} of the chosen metrics.

    fake, real, paired: re-iterable image batches [B, H, W, 3] float32 in [-1, 1] (an
      `images.ImageSet`, a `tf.data.Dataset`, a list); `paired` yields the target of each
      fake image in the same order. Only the sets the metrics need are read.
    backbone: a `metrics.inception.Backbone`, required for fid, kid and is.
    seed: KID's subsets and SWD's draws.
    """
    check_metrics(metrics, real is not None, paired is not None, backbone is not None)
    # First, though listed last: they are cheap, and an image too small for SSIM is then
    # refused before the Inception and SWD passes rather than after.
    paired_values = (_paired_scores(metrics, fake, paired)
                     if any(m in metrics for m in PAIRED_METRICS) else {})
    values = {}
    if any(m in INCEPTION_METRICS for m in metrics):
        keep = "kid" in metrics
        fake_acts = streaming.collect(
            backbone, _progress(fake, "Inception features of the fake set"), keep)
        if "fid" in metrics or keep:
            real_acts = streaming.collect(
                backbone, _progress(real, "Inception features of the real set"), keep)
            if "fid" in metrics:
                values["fid"] = fid.fid(real_acts.moments, fake_acts.moments)
            if keep:
                values["kid"], values["kid_std"] = kid.kid(
                    real_acts.features, fake_acts.features, seed=seed)
        if "is" in metrics:
            values["is"], values["is_std"] = inception_score.inception_score(fake_acts.logits)
    if "swd" in metrics:
        result = swd.swd(real, fake, seed=seed)
        values["swd"] = result.mean
        values.update({f"swd_{r}": d for r, d in zip(result.resolutions, result.per_level)})
    values.update(paired_values)
    return {name: float(value) for name, value in values.items()}


def _progress(batches, what):
    size = len(batches) if isinstance(batches, image_sets.ImageSet) else None
    return image_sets.with_progress(batches, size, what)


def _paired_scores(metrics, fake, paired):
    """Mean per-image PSNR / SSIM of each fake image against its target."""
    scores = {m: [] for m in PAIRED_METRICS if m in metrics}
    functions = {"psnr": fidelity.psnr, "ssim": fidelity.ssim}
    for index, (images, targets) in enumerate(zip(fake, paired)):
        if images.shape != targets.shape:
            raise ValueError(f"PSNR/SSIM compare each fake image with its target: batch {index} "
                             f"has fake {images.shape[1:3]} and target {targets.shape[1:3]}; "
                             f"pass --image_size to resize both.")
        height, width = images.shape[1:3]
        if "ssim" in scores and min(height, width) < fidelity.SSIM_WINDOW:
            raise ValueError(f"SSIM compares {fidelity.SSIM_WINDOW}x{fidelity.SSIM_WINDOW} "
                             f"windows, but batch {index} has {height}x{width} images (height "
                             f"x width); leave ssim out (--metrics=psnr) or resize them "
                             f"(--image_size={fidelity.SSIM_WINDOW} or more).")
        for name, values in scores.items():
            values.append(functions[name](images, targets).numpy())
    return {name: np.mean(np.concatenate(values)) for name, values in scores.items()}


def evaluate_folders(fake, real=None, paired=None, metrics=None, backbone=None,
                     image_size=None, batch_size=image_sets.BATCH_SIZE, seed=0,
                     fake_paths=None, segmentation=None):
    """The report of the chosen metrics between image folders.

    fake: folder of translations; real: folder of real target-domain images; paired: folder
      holding each fake image's target under the same file stem (any image extension).
    metrics: names from METRICS; None: every metric the given folders allow.
    backbone: 'fid2015:PATH', 'keras:PATH', 'random', a loaded Backbone or a
      `resolve_backbone` pair.
    image_size: None compares images at their own sizes; N resizes all to N x N.
    fake_paths: the files of `fake` to score; None: every image in it.
    segmentation: a `Segmentation` to add its score on the fake images, or None.
    """
    metrics = (tuple(metrics) if metrics is not None
               else default_metrics(real is not None, paired is not None))
    backbone, spec = (resolve_backbone(backbone) if set(metrics) & set(INCEPTION_METRICS)
                      else (None, None))
    fake_set = image_sets.ImageSet(
        list_images(fake) if fake_paths is None else fake_paths, batch_size, image_size)
    real_set = image_sets.ImageSet.from_folder(real, batch_size, image_size) if real else None
    # Before the Inception pass, which would fail only at its end without naming the set.
    covariances = [m.upper() for m in ("fid", "kid") if m in metrics]
    for flag, folder, images in (("--fake", fake, fake_set), ("--real", real, real_set)):
        if covariances and images is not None and len(images) < 2:
            raise ValueError(f"{flag}={folder}: {' and '.join(covariances)} need at least 2 "
                             f"images per set; it has {len(images)}")
    paired_set = None
    if paired:
        paired_set = image_sets.ImageSet(
            match_by_stem(fake_set.paths, paired, "--paired"), batch_size, image_size)
    values = compute_metrics(metrics, fake_set, real_set, paired_set, backbone, seed)
    report = {
        "inputs": {"fake": fake, "real": real, "paired": paired, "num_fake": len(fake_set),
                   "num_real": len(real_set) if real_set else None, "image_size": image_size},
        "inception": backbone_info(backbone, spec),
        "metrics": values,
    }
    if segmentation:
        add_segmentation(report, segmentation, fake_set.paths)
    return report


class Segmentation(collections.namedtuple("Segmentation", ["segmenter", "model", "labels"])):
    """The segmentation score's inputs, loaded before any other work: segmenter, the
    SavedModel's path (recorded in the report); model, its `models.segmenter.load_segmenter`
    callable; labels, the folder of the source images' label maps."""

    @classmethod
    def load(cls, segmenter, labels):
        return cls(segmenter, load_segmenter(segmenter), labels)


def add_segmentation(report, segmentation, fake_paths, batch_size=8):
    """Adds the segmentation score of a `Segmentation` on the fake images against the source
    label maps (same stems): mean IoU, pixel and class accuracy."""
    scores = segmenter_lib.scores_dict(segmenter_lib.score_segmenter(
        segmentation.model, fake_paths, segmentation.labels, batch_size))
    report["inputs"].update(segmenter=segmentation.segmenter, labels=segmentation.labels)
    report["per_class_iou"] = scores.pop("per_class_iou")
    report["metrics"].update(scores)
    return report


def test_split_folders(dataroot, direction):
    """The folders of a data set's test split for a translation direction: {source, real
    (the target domain), paired (testA_as_B, AtoB only), labels (the source's)}, None for
    optional ones that do not exist."""
    source, target = ("testA", "testB") if direction == "AtoB" else ("testB", "testA")
    optional = {"paired": os.path.join(dataroot, "testA_as_B") if direction == "AtoB" else None,
                "labels": os.path.join(dataroot, source + "_labels")}
    return {"source": os.path.join(dataroot, source), "real": os.path.join(dataroot, target),
            **{k: v if v and os.path.isdir(v) else None for k, v in optional.items()}}


def evaluate_translator(translator, dataroot, direction="AtoB", metrics=None,
                        backbone=None, crop_size=None, output_dir=None, epoch=None,
                        batch_size=image_sets.BATCH_SIZE, seed=0, real=None, paired=None,
                        segmentation=None):
    """Report of a translator on a data set's test split (e.g. every N epochs of training).

    Translates the source domain's test images (testA for AtoB, testB for BtoA), resized to
    crop_size² first as in training's test view (None: their own sizes), and scores them
    against the target domain's test images at the same size; PSNR/SSIM against testA_as_B
    where it exists (AtoB only); `real` and `paired` replace those folders.

    translator: a generator, e.g. `method.generator` or from `inference.load_translator`.
    metrics: names from METRICS; None: every metric the data set allows.
    backbone: spec, a loaded `inception.Backbone` (load it once when calling per epoch) or a
      `resolve_backbone` pair; needed for fid, kid and is.
    output_dir: where the translations are written (PNG); None: a temporary folder, removed.
      Only this call's translations are scored: other files there (an earlier call's on
      another data set) are left alone and not counted.
    segmentation: a `Segmentation` to add its score on the translations, or None.
    epoch: recorded in the report; write it with
      `reports.write_json(report, reports.epoch_report_path(run_dir, epoch))` (what
      launch.compare reads) and log it with `reports.log_to_tensorboard(report, step)` inside
      the run's summary writer.
    """
    keep = output_dir is not None
    output_dir = output_dir or tempfile.mkdtemp(prefix="tfattncut-eval-")
    found = test_split_folders(dataroot, direction)
    try:
        written = translation.translate_images(translator, list_images(found["source"]),
                                               output_dir, crop_size)
        report = evaluate_folders(output_dir, real or found["real"], paired or found["paired"],
                                  metrics, backbone, crop_size, batch_size, seed,
                                  fake_paths=written, segmentation=segmentation)
    finally:
        if not keep:
            shutil.rmtree(output_dir, ignore_errors=True)
    report["inputs"]["dataroot"] = dataroot
    report["inputs"]["direction"] = direction
    if not keep:
        report["inputs"]["fake"] = None
    if epoch is not None:
        report["epoch"] = epoch
    return report


def run(fake=None, real=None, paired=None, metrics=None, inception_spec=None, checkpoint=None,
        dataroot=None, segmenter=None, labels=None, image_size=None,
        batch_size=image_sets.BATCH_SIZE, output=None, logdir=None):
    """What `launch.evaluate` does: with `checkpoint` and `dataroot`, first translates the
    source test split into OUTPUT_translated/ (next to the JSON; never over an input) and
    takes real, paired and labels from the data set unless given; then evaluates, adds the
    segmentation score with `segmenter`, writes the JSON (`output`, refused up front when that
    path holds anything but an earlier report) and TensorBoard scalars (`logdir`). Returns
    (the report, the JSON's path or None).

    Every path is checked, and the backbone and segmenter loaded, before the translation and
    the metrics: a mistake in any of them fails at once, not after that work.
    """
    if checkpoint:
        if not dataroot or fake:
            raise ValueError("--checkpoint translates --dataroot's test split: pass "
                             "--dataroot=DIR and no --fake.")
        output = output or os.path.join(inference.find_run(checkpoint)[0], EVAL_FOLDER,
                                        "evaluate.json")
        fake = os.path.splitext(output)[0] + "_translated"
    if output:
        check_report_path(output)
    if logdir:
        output_folders.check_output_folder("--logdir", logdir)
    if not fake:
        raise ValueError("Nothing to evaluate: pass --fake=DIR, or --checkpoint=RUN with "
                         "--dataroot=DIR.")
    if checkpoint:
        output_folders.check_output_folder("--output", fake)
        translator, config = inference.load_translator(checkpoint)
        found = test_split_folders(dataroot, config.direction)
        real = real or found["real"]
        paired = paired or found["paired"]
        labels = labels or (found["labels"] if segmenter else None)
        inputs = [p for p in (real, paired, labels) if p]
        if any(os.path.abspath(fake) == os.path.abspath(p) for p in inputs):
            raise ValueError(f"--output={output} would write the translations into {fake}, "
                             f"an input folder; choose another --output.")
    if bool(segmenter) != bool(labels):
        raise ValueError("--segmenter and --labels go together: the segmenter's predictions on "
                         "the fake images are scored against the source label maps.")
    if metrics is None:
        metrics = default_metrics(real is not None, paired is not None)
    if not metrics and not segmenter:
        raise ValueError("Nothing to compute: pass --real (FID, KID, IS, SWD), --paired "
                         "(PSNR, SSIM) or --segmenter with --labels.")
    check_metrics(metrics, real is not None, paired is not None, inception_spec is not None)
    backbone = (resolve_backbone(inception_spec)
                if any(m in INCEPTION_METRICS for m in metrics) else None)
    segmentation = None
    if segmenter:
        segmentation = Segmentation.load(segmenter, labels)
        # The translations keep their sources' stems, so the sources show a missing map too.
        match_by_stem(list_images(found["source"] if checkpoint else fake), labels, "--labels")
    if checkpoint:
        report = evaluate_translator(translator, dataroot, config.direction, metrics,
                                     backbone, image_size, output_dir=fake,
                                     batch_size=batch_size, real=real, paired=paired,
                                     segmentation=segmentation)
        report["inputs"]["checkpoint"] = checkpoint
    else:
        report = evaluate_folders(fake, real, paired, metrics, backbone, image_size,
                                  batch_size, segmentation=segmentation)
    if output:
        write_json(report, output)
    if logdir:
        log_to_tensorboard(report, step=report.get("epoch", 0), logdir=logdir)
    return report, output
