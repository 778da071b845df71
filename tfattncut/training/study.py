"""The method study: every preset trained side by side on one data set and budget, scored the
same way over several seeds, and reported with 95 % confidence intervals.

Layout (two folders, so the small results can be kept in git and the large ones not):

    RUNS_DIR/NAME_seedS/           an ordinary run directory per (variant, seed): launch.train
                                   could resume it; study/ holds its translations
    RUNS_DIR/baselines/seedS/      segmenter_B, the B-trained segmenter of seed S
    STUDY_DIR/segmenters/seedS.npz its weights, so that another machine scores with it
    STUDY_DIR/scores/NAME_seedS.json   the run's scores: a run with this file is done
    STUDY_DIR/scores/baseline_seedS.json   the per-seed floor and ceiling
    STUDY_DIR/samples/NAME_seedS.png   the run's row of the sample grid (lowest seed only;
                                   tfattncut.training.study_grid)
    STUDY_DIR/report.md, report.json, chart.png, samples.png   (tfattncut.evaluation.study_report)

Every step is resumable: a scored run is skipped, a trained one is only scored, an interrupted
one resumes from its newest checkpoint (`--resume` semantics), so the study survives
preemption; runs can be split over machines by presets and seeds, and `report_only` merges the
score folders of several studies.

Scores of a run (all offline; synthetic.md and spec/metrics.md):
  downstream_miou  a fresh segmenter (seed S) trained on the run's translated trainA with A's
                   labels, mean IoU on testB (the sim-to-real use); the seed's raw-A and B arms
                   are the floor and the ceiling;
  label_miou       the seed's B-trained segmenter on the translated testA against testA's
                   labels (the "FCN score": are the objects still where the labels say?);
  fid_seg, kid_seg FID/KID of translated testA vs testB in that segmenter's feature space
                   (domain-specific; not comparable with Inception FIDs);
  segmenter        that segmenter's fingerprint (segmenter.fingerprint);
  fid_inception, kid_inception  the same with --inception=fid2015:PATH or keras:PATH if given;
  step_time_s, images_per_s     the median training step time of the run;
  zero_entropy_fraction, attention_mask  the run's logged QS-Attn zero-entropy fractions and
                                uag attention-mask scalars over its steps (study_report.SERIES);
  wall_minutes, machine         training (the span of its event files, summed over every
                                sitting) plus scoring, and where (tfattncut.machine).
"""
import dataclasses
import glob
import itertools
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from tensorboard.plugins.hparams import api as hparams_api

from tfattncut import config as config_lib
from tfattncut import inference, json_files, machine, translation
from tfattncut.data import synthetic
from tfattncut.data.image_files import list_images
from tfattncut.evaluation import charts, evaluate, segmenter
from tfattncut.evaluation.study_report import (METRICS, SERIES, format_headline,
                                               format_report, load_scores, replace_headline,
                                               run_name, series_summary, summarise)
from tfattncut.evaluation import images as image_files
from tfattncut.metrics import inception
from tfattncut.training import study_grid
from tfattncut.training.trainer import NonFiniteSteps, Trainer

PRESETS = ("cut", "fastcut", "qsattn_global", "qsattn_local", "qsattn_local_global",
           "attn_self", "attn_external", "attn_bam", "attn_triplet", "cyclegan", "dclgan",
           "simdcl", "uag")
# Study variants beyond the presets: name -> (preset, extra training flags).
VARIANTS = {"qsattn_local_correct": ("qsattn_local", ("--qs_local_layout=correct",))}
DEFAULT_VARIANTS = PRESETS + tuple(VARIANTS)
@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What `launch.study`'s flags set; see its help for each."""
    study_dir: str
    runs_dir: str
    variants: tuple = DEFAULT_VARIANTS
    seeds: tuple = (0, 1, 2)
    train_flags: tuple = ()
    configs_dir: str = "configs"
    segmenter_images: int = 250
    segmenter_epochs: int = 5
    segmenter_batch_size: int = 8
    segmenter_learning_rate: float = 1e-3
    segmenter_width: int = 32
    inception: str = ""
    grid_images: int = 4
    command: str = ""   # launch.study's flags, as the report's command line shows them
    doc_path: str = ""  # also write the report here (docs/study.md), images linked relatively
    readme_path: str = ""  # also write the headline table into this file's marked block

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in PRESETS and v not in VARIANTS]
        if unknown:
            raise ValueError(f"--presets: unknown {unknown}; choose from "
                             f"{', '.join(DEFAULT_VARIANTS)}")
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        bad = [s for s in self.seeds if s not in config_lib.SEED]
        if bad:
            raise ValueError(f"--seeds: {bad} not {config_lib.SEED}, the seeds a run accepts")
        for flag, values in (("--presets", self.variants), ("--seeds", self.seeds)):
            if len(set(values)) < len(values):
                raise ValueError(f"{flag}: {', '.join(map(str, values))} names one twice")


def scores_path(study_dir, name):
    return os.path.join(study_dir, "scores", f"{name}.json")


def run_config(settings, variant, seed):
    """The Config of one run: the preset's flagfile, the variant's flags, then the study's
    shared size/budget flags, then the run's name, folder and seed."""
    preset, extra = VARIANTS.get(variant, (variant, ()))
    flag_values = flags.FlagValues()
    config_lib.define_flags(flag_values)
    flag_values(["study", f"--flagfile={os.path.join(settings.configs_dir, preset + '.cfg')}",
                 *extra, *settings.train_flags, f"--name={run_name(variant, seed)}",
                 f"--checkpoints_dir={settings.runs_dir}", f"--seed={seed}", "--resume"])
    return config_lib.from_flags(flag_values)


def _write_json(value, path):
    """Atomically, so an interrupted study never leaves a half-written score file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(partial, path)


def segmenter_weights_path(study_dir, seed):
    return os.path.join(study_dir, "segmenters", f"seed{seed}.npz")


def _test_b(dataroot):
    """testB's images and labels folder: where downstream segmenters are scored."""
    return list_images(os.path.join(dataroot, "testB")), os.path.join(dataroot, "testB_labels")


def _train_images(dataroot, folder, count):
    paths = list_images(os.path.join(dataroot, folder))
    return paths[:count] if count else paths


def _segment_scores(model, paths, labels):
    return segmenter.scores_dict(segmenter.score_segmenter(model, paths, labels))["mean_iou"]


def _fidelity(backbone, fake_paths, real_paths, seed):
    values = evaluate.compute_metrics(("fid", "kid"), image_files.ImageSet(fake_paths),
                                      image_files.ImageSet(real_paths), backbone=backbone,
                                      seed=seed)
    return values["fid"], values["kid"]


class Study:
    """Runs, scores and reports a study; every method is safe to call again."""

    def __init__(self, settings):
        self.settings = settings
        self._inception = None

    def _segmenter(self, paths, labels, seed):
        s = self.settings
        return segmenter.train_segmenter(paths, labels, s.segmenter_epochs,
                                         s.segmenter_batch_size, s.segmenter_learning_rate,
                                         seed, s.segmenter_width)

    def _inception_backbone(self):
        if self.settings.inception and self._inception is None:
            self._inception = inception.load_backbone(self.settings.inception)
        return self._inception

    def baseline(self, seed, dataroot):
        """The seed's raw-A and B arms and its B-trained segmenter, the label-preservation
        scorer and FID feature space of every run of this seed; returns (its SavedModel
        folder, its `segmenter.fingerprint`).

        The segmenter's weights are kept in STUDY_DIR/segmenters/seedS.npz, beside the
        scores, so that another machine scores with the same one: trained again from the
        same seed there, it would differ. A baseline file from before the weights were kept
        (no "segmenter" field) whose segmenter is gone gets one trained again; if it scores
        untranslated testA differently, its reference numbers are added under
        "retrained_segmenters" and the report names the runs it scored.
        """
        s = self.settings
        saved = os.path.join(s.runs_dir, "baselines", f"seed{seed}", "segmenter_B")
        kept = segmenter_weights_path(s.study_dir, seed)
        path = scores_path(s.study_dir, f"baseline_seed{seed}")
        labels = {name: os.path.join(dataroot, name + "_labels") for name in ("trainA", "trainB")}
        if not tf.saved_model.contains_saved_model(saved):
            if os.path.exists(kept):
                model = segmenter.build_segmenter(width=s.segmenter_width, seed=seed)
                with np.load(kept) as weights:
                    model.set_weights([weights[f"w{i}"] for i in range(len(weights.files))])
            else:
                print(f"Baseline of seed {seed}: segmenters on raw A and on B")
                model = self._segmenter(_train_images(dataroot, "trainB", s.segmenter_images),
                                        labels["trainB"], seed)
            segmenter.export_segmenter(model, saved)
            keras.backend.clear_session()
        variables = tf.saved_model.load(saved).variables
        if not os.path.exists(kept):
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            np.savez(kept + ".partial.npz", **{f"w{i}": v.numpy()
                                              for i, v in enumerate(variables)})
            os.replace(kept + ".partial.npz", kept)
        identity = segmenter.fingerprint(variables)
        scores = (json_files.read_object(path, "delete it and the study computes the baseline "
                                            "again") if os.path.exists(path) else None)
        if scores is not None and identity in (scores.get("segmenter"),
                                               *scores.get("retrained_segmenters", {})):
            return saved, identity
        reference = self._reference_scores(saved, dataroot, seed)
        if scores is None:
            raw = self._segmenter(_train_images(dataroot, "trainA", s.segmenter_images),
                                  labels["trainA"], seed)
            scorer = segmenter.load_segmenter(saved)
            test_b = _test_b(dataroot)
            scores = {"seed": seed, "segmenter": identity,
                      "raw_a_downstream_miou": _segment_scores(raw, *test_b),
                      "b_downstream_miou": _segment_scores(scorer, *test_b),
                      **reference}
        elif abs(scores["raw_test_a_label_miou"] - reference["raw_test_a_label_miou"]) < 1e-6:
            scores["segmenter"] = identity  # the file's own scorer, from before they were kept
        else:
            scores.setdefault("retrained_segmenters", {})[identity] = {
                **reference, "machine": machine.describe()}
        _write_json(scores, path)
        keras.backend.clear_session()
        return saved, identity

    def _reference_scores(self, saved, dataroot, seed):
        """Untranslated testA under the segmenter at `saved`: the label mIoU and FID/KID
        references of the runs it scores."""
        test_a = list_images(os.path.join(dataroot, "testA"))
        scores = {"raw_test_a_label_miou": _segment_scores(
            segmenter.load_segmenter(saved), test_a, os.path.join(dataroot, "testA_labels"))}
        backbone = inception.load_backbone(f"segmenter:{saved}")
        scores["raw_test_a_fid_seg"], scores["raw_test_a_kid_seg"] = _fidelity(
            backbone, test_a, _test_b(dataroot)[0], seed)
        return scores

    def train(self, config):
        """Trains (or resumes) one run to its last step."""
        trainer = Trainer(config)
        trainer.fit()
        step = int(trainer.step)
        del trainer
        keras.backend.clear_session()
        return step

    def record_failure(self, variant, seed, config, error):
        """A run that diverged is a result of the method at this budget, not a crash of the
        study: its score file says why (the same seed would diverge again), the report lists
        it apart from the means, and the study goes on. Delete the file to retry it."""
        _write_json({"variant": variant, "seed": seed, "model": config.model,
                     "selector": config.selector, "steps": total_steps(config),
                     "failed": f"{type(error).__name__}: {error}",
                     "wall_minutes": training_minutes(os.path.join(config.run_dir, "logs")),
                     "machine": machine.describe()},
                    scores_path(self.settings.study_dir, run_name(variant, seed)))

    def score(self, variant, seed, config, scorer_b):
        """The run's scores (module docstring), written to STUDY_DIR/scores and TensorBoard;
        `scorer_b`: the seed's B segmenter as `baseline` returns it."""
        started = time.time()
        s = self.settings
        dataroot = config.dataroot
        work = os.path.join(config.run_dir, "study")
        translator, _ = inference.load_translator(config.run_dir)
        test_a = list_images(os.path.join(dataroot, "testA"))
        test_b, test_b_labels = _test_b(dataroot)
        translated_train = translation.translate_images(
            translator, _train_images(dataroot, "trainA", s.segmenter_images),
            os.path.join(work, "trainA_translated"))
        downstream = self._segmenter(translated_train, os.path.join(dataroot, "trainA_labels"),
                                     seed)
        translated_test = translation.translate_images(translator, test_a,
                                                       os.path.join(work, "testA_translated"))
        segmenter_b, identity = scorer_b
        scorer = segmenter.load_segmenter(segmenter_b)
        scores = {
            "variant": variant, "seed": seed, "model": config.model, "segmenter": identity,
            "selector": config.selector, "steps": total_steps(config),
            "downstream_miou": _segment_scores(downstream, test_b, test_b_labels),
            "label_miou": _segment_scores(scorer, translated_test,
                                          os.path.join(dataroot, "testA_labels")),
        }
        scores["fid_seg"], scores["kid_seg"] = _fidelity(
            inception.load_backbone(f"segmenter:{segmenter_b}"), translated_test, test_b, seed)
        if self._inception_backbone() is not None:
            scores["fid_inception"], scores["kid_inception"] = _fidelity(
                self._inception_backbone(), translated_test, test_b, seed)
        logdir = os.path.join(config.run_dir, "logs")
        scores["step_time_s"] = median_step_time(logdir)
        scores["images_per_s"] = (config.batch_size / scores["step_time_s"]
                                  if scores["step_time_s"] else None)
        for key, prefix, _ in SERIES:
            scores[key] = scalar_series(logdir, prefix)
        trained = training_minutes(logdir)  # before write_run_summaries adds a file
        write_run_summaries(logdir, scores, config)
        scores["wall_minutes"] = trained + (time.time() - started) / 60
        scores["machine"] = machine.describe()
        if seed == min(s.seeds):
            study_grid.write_row(s.study_dir, run_name(variant, seed), translator, dataroot,
                                 s.grid_images)
        _write_json(scores, scores_path(s.study_dir, run_name(variant, seed)))
        keras.backend.clear_session()
        return scores

    def run(self):
        """Trains and scores every (variant, seed) not yet scored (write_report reports)."""
        s = self.settings
        todo = [(v, seed) for seed in s.seeds for v in s.variants
                if not os.path.exists(scores_path(s.study_dir, run_name(v, seed)))]
        total = len(s.variants) * len(s.seeds)
        print(f"Study: {total} runs, {total - len(todo)} already scored, {len(todo)} to do")
        write_hparams_config(s.runs_dir)
        start = time.time()
        for index, (variant, seed) in enumerate(todo, 1):
            config = run_config(s, variant, seed)
            if config.make_synthetic:
                synthetic.ensure_dataset(config.dataroot)
            scorer_b = self.baseline(seed, config.dataroot)
            print(f"\n[{index}/{len(todo)}] {run_name(variant, seed)}: training to step "
                  f"{total_steps(config)} ({(time.time() - start) / 60:.1f} min so far)")
            try:
                self.train(config)
            except NonFiniteSteps as error:
                self.record_failure(variant, seed, config, error)
                print(f"[{index}/{len(todo)}] {run_name(variant, seed)}: failed: {error}")
                continue
            scores = self.score(variant, seed, config, scorer_b)
            print(f"[{index}/{len(todo)}] {run_name(variant, seed)}: downstream mIoU "
                  f"{scores['downstream_miou']:.4f}, label mIoU {scores['label_miou']:.4f}, "
                  f"FID (segmenter) {scores['fid_seg']:.3f}")


def total_steps(config):
    """The step a run ends at: the data's steps per epoch times the epochs, or --max_steps."""
    size = len(list_images(os.path.join(config.dataroot, "trainA")))
    if config.max_dataset_size:
        size = min(size, config.max_dataset_size)
    steps = (size // config.batch_size) * (config.n_epochs + config.n_epochs_decay)
    return min(steps, config.max_steps) if config.max_steps else steps


def _event_files(logdir):
    """[[event, ...] of each event file of the run]; one process writes one file, and a
    file cut short (the process was killed mid-write) ends at its last whole record."""
    files = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        events = []
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                events.append(event)
        except tf.errors.DataLossError:
            pass
        files.append(events)
    return files


def _events(logdir):
    """(tag, step, wall_time, value) of every scalar in the run's event files."""
    for events in _event_files(logdir):
        for event in events:
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    yield value.tag, event.step, event.wall_time, float(
                        tf.make_ndarray(value.tensor))


def training_minutes(logdir):
    """The minutes the run's event files span, summed over the files: every sitting a run
    was trained in (each writes its own file), without the gaps between them."""
    spans = [max(e.wall_time for e in events) - min(e.wall_time for e in events)
             for events in _event_files(logdir) if events]
    return sum(spans) / 60


def median_step_time(logdir):
    """The median seconds per step between consecutive loss summaries (compilation, resume
    gaps and evaluation pauses are outliers the median ignores); None if under two."""
    times = {}
    for tag, step, wall_time, _ in _events(logdir):
        if tag.startswith("loss/"):
            times.setdefault(step, wall_time)
    steps = sorted(times)
    rates = [(times[b] - times[a]) / (b - a) for a, b in zip(steps, steps[1:])
             if times[b] > times[a]]
    return float(np.median(rates)) if rates else None


def scalar_series(logdir, prefix):
    """{tag without prefix: [[step, value], ...]} of the scalars whose tag starts with prefix."""
    series = {}
    for tag, step, _, value in _events(logdir):
        if tag.startswith(prefix):
            series.setdefault(tag[len(prefix):], {})[step] = value
    return {tag: sorted([step, value] for step, value in points.items())
            for tag, points in sorted(series.items())}


HPARAMS = ("variant", "model", "selector", "seed")


def write_hparams_config(runs_dir):
    """The HParams tab's columns: the run's method and seed, and the study's metrics."""
    with tf.summary.create_file_writer(runs_dir).as_default():
        hparams_api.hparams_config(
            hparams=[hparams_api.HParam(name) for name in HPARAMS],
            metrics=[hparams_api.Metric(f"study/{key}", display_name=label)
                     for key, label, _ in METRICS])


def write_run_summaries(logdir, scores, config):
    """study/* scalars and the run's HParams entry, at the run's last step."""
    with tf.summary.create_file_writer(logdir).as_default():
        hparams_api.hparams({name: scores[name] for name in HPARAMS},
                            trial_id=run_name(scores["variant"], scores["seed"]))
        for key, _, _ in METRICS:
            if scores.get(key) is not None:
                tf.summary.scalar(f"study/{key}", scores[key], step=scores["steps"])


def write_report(settings, merge_dirs=()):
    """Writes STUDY_DIR/report.md (and the same page at settings.doc_path), report.json,
    chart.png and samples.png from the scores of STUDY_DIR and `merge_dirs`, and the headline
    table into settings.readme_path's marked block; returns the summary."""
    runs, baselines = load_scores([settings.study_dir, *merge_dirs])
    if not runs and not baselines:
        raise FileNotFoundError(
            f"--study_dir={settings.study_dir}"
            + "".join(f", {d}" for d in merge_dirs)
            + ": no scores/*.json to report (a mistyped folder?); nothing written")
    variants = [v for v in DEFAULT_VARIANTS if any(k[0] == v for k in runs)]
    summary = summarise(runs, baselines, variants,
                        planned=itertools.product(settings.variants, settings.seeds))
    summary["series"] = series_summary(runs)
    os.makedirs(settings.study_dir, exist_ok=True)
    _write_json({"summary": summary, "runs": [runs[k] for k in sorted(runs)],
                 "baselines": [baselines[s] for s in sorted(baselines)]},
                os.path.join(settings.study_dir, "report.json"))
    with open(os.path.join(settings.study_dir, "report.md"), "w") as f:
        f.write(format_report(summary, settings))
    if settings.doc_path:
        doc_dir = os.path.dirname(settings.doc_path) or "."
        os.makedirs(doc_dir, exist_ok=True)
        image_dir = os.path.relpath(settings.study_dir, doc_dir)
        with open(settings.doc_path, "w") as f:
            f.write(format_report(summary, settings, image_dir + "/"))
    if settings.readme_path:
        page = settings.doc_path or os.path.join(settings.study_dir, "report.md")
        replace_headline(settings.readme_path, format_headline(
            summary, os.path.relpath(page, os.path.dirname(settings.readme_path) or ".")))
    means = {v: e["metrics"]["downstream_miou"]["mean"] for v, e in summary["variants"].items()
             if "downstream_miou" in e["metrics"]}
    if means:
        charts.bar_chart(means, os.path.join(settings.study_dir, "chart.png"),
                         "Downstream mIoU on testB (mean over seeds)")
    rows = study_grid.method_rows(settings, variants)
    if rows:
        config = run_config(settings, variants[0], min(settings.seeds))
        if config.make_synthetic:
            synthetic.ensure_dataset(config.dataroot)
        study_grid.draw(rows, config.dataroot, settings.grid_images,
                        os.path.join(settings.study_dir, "samples.png"))
    return summary
