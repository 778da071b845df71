"""The bulk translation pipeline, its metrics, and the summary a job ends with.

  MatchFiles(--input) --- key REL/STEM ---+    (no regular file: a failure at once)
  MatchFiles(--labels/**) - key REL/STEM -+- CoGroupByKey - Plan - Decode - RunInference - Write
  every refusal (Plan, Decode, RunInference) - Flatten - OUTPUT/_failed.jsonl

Inputs that are no regular file (links that lead nowhere, which Beam's match passes over
without a word, and FIFOs) are failures from the start (`files.unreadable_matches`). Plan
refuses inputs that share a key, lack a label map or have several, and skips those whose
outputs exist (outputs are renamed into place whole, so one that exists is complete;
a translation whose label map a run without --labels did not copy gets it here); Decode
applies the server's checks (`images.decode`); RunInference batches images under a pixel
budget and loads the model once per worker (`SavedModelHandler`); Write copies the label map
and then writes the translation, each atomically, so a translation never exists without its
label map. Failures never stop the job: each goes, with its reason, to the dead-letter file
OUTPUT/_failed.jsonl. A rerun retries them and rewrites the file: the records of inputs its
--input covers are replaced by its own, those of inputs a narrower rerun does not cover are
kept.

Outputs are written only into a folder that is empty or holds OUTPUT/_job.json naming the
same model (`claim_output`), so an existing output is this model's translation.
"""
import contextlib
import dataclasses
import json
import os
import re
import threading
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import BeamIOError, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tfattncut import output_folders
from tfattncut.bulk import files, images
from tfattncut.bulk.model_handler import (DEFAULT_MAX_BATCH_PIXELS, SavedModelHandler,
                                          model_identity)
from tfattncut.progress import Progress
from tfattncut.serving.image_header import DEFAULT_MAX_IMAGE_PIXELS

NAMESPACE = "bulk_translate"
COUNTERS = ("translated", "skipped", "failed")
LATENCY = "latency_ms"
_FAILED = "failed"
_FAILED_COUNTER = Metrics.counter(NAMESPACE, "failed")


def local_options(workers=1):
    """The embedded default: the DirectRunner, one worker in this process, whose TensorFlow
    already spreads each model call over every core; one worker process per core, which
    compete for the same cores and each hold a model, measured no faster on 2 cores
    (`launch.benchmark --bulk`). `workers` > 1 runs that many SDK worker processes. (Prism,
    the DirectRunner's other engine, is a binary downloaded from GitHub at run time.)"""
    return {"runner": "DirectRunner", "direct_num_workers": workers,
            "direct_running_mode": "multi_processing" if workers > 1 else "in_memory",
            "default_sdk_harness_log_level": "WARNING"}


def _failure(path, reason):
    return beam.pvalue.TaggedOutput(_FAILED, {"path": path, "reason": reason})


def _copy_label(item):
    files.write_atomically(item.label_target, files.read(item.label_source))


class _Plan(beam.DoFn):
    """(REL/STEM, {"inputs": paths, "labels": paths}) -> Item, a failure, or nothing (done)."""

    def __init__(self, layout):
        self._layout = layout
        self._skipped = Metrics.counter(NAMESPACE, "skipped")

    def process(self, keyed):
        key, found = keyed
        sources, labels = sorted(found["inputs"]), sorted(found["labels"])
        if not sources:
            return
        if len(sources) > 1:
            for source in sources:
                yield _failure(source, f"{', '.join(sources)} would all be translated to "
                                       f"{self._layout.item(source).target}; rename all but one")
            return
        if self._layout.labels and not labels:
            yield _failure(sources[0], f"no label map {self._layout.labels_base}{key}.* "
                                       "(--labels)")
            return
        if len(labels) > 1:
            yield _failure(sources[0], f"several label maps for one input: {', '.join(labels)} "
                                       "(--labels); keep one")
            return
        item = self._layout.item(sources[0], labels[0] if labels else None)
        if FileSystems.exists(item.target):
            if item.label_source and not FileSystems.exists(item.label_target):
                _copy_label(item)  # translated by a run without --labels
            self._skipped.inc()
            return
        yield item


class _Decode(beam.DoFn):
    """Item -> ((Item, start time), uint8 [H, W, 3]), or a failure."""

    def __init__(self, max_image_pixels):
        self._max_image_pixels = max_image_pixels

    def process(self, item):
        start = time.time()
        try:
            reason = files.unreadable(item.source)  # it may have changed since the match
            if reason:
                raise images.Unusable(reason)
            pixels = images.decode(files.read(item.source), self._max_image_pixels)
        except (images.Unusable, OSError, BeamIOError) as error:
            yield _failure(item.source, str(error))
            return
        yield (item, start), pixels


class _Write(beam.DoFn):
    """((Item, start time), PredictionResult) -> the label map copy, then the translation."""

    def __init__(self, image_format, quality):
        self._image_format, self._quality = image_format, quality
        self._translated = Metrics.counter(NAMESPACE, "translated")
        self._latency = Metrics.distribution(NAMESPACE, LATENCY)

    def process(self, keyed):
        (item, start), result = keyed
        if item.label_source:
            _copy_label(item)
        files.write_atomically(item.target,
                               images.encode(result.inference, self._image_format, self._quality))
        self._translated.inc()
        self._latency.update(int(1000 * (time.time() - start)))


def _inference_failures(failed):
    """A RunInference dead letter, (batch of ((Item, start), image), (type, repr,
    traceback)) -> a failure per input of the batch."""
    batch, (_, error, _) = failed
    reason = f"the model failed on its batch: {error}"
    return [{"path": item.source, "reason": reason} for (item, _), _ in batch]


class _WriteFailures(beam.DoFn):
    """All failures -> OUTPUT/_failed.jsonl, one JSON object per line, sorted by path, with
    the earlier runs' records of inputs outside this run's --input (`kept_failures`)."""

    def __init__(self, layout):
        self._layout = layout

    def process(self, failures):
        lines = [json.dumps(f, sort_keys=True) + "\n" for f in failures]
        lines += kept_failures(self._layout)
        files.write_atomically(self._layout.failed_path, "".join(sorted(lines)).encode())


def kept_failures(layout):
    """The lines of an earlier OUTPUT/_failed.jsonl that this run does not replace: those
    whose input --input does not match (a rerun over a subset must not drop the rest's
    records), and any line that is not a record (kept as it is: it is not ours to drop)."""
    if not FileSystems.exists(layout.failed_path):
        return []
    covered = re.compile(FileSystem.translate_pattern(layout.input_pattern))
    kept = []
    for line in files.read(layout.failed_path).decode("utf-8", "replace").splitlines():
        try:
            path = json.loads(line)["path"]
        except (ValueError, TypeError, KeyError):
            path = None
        if not (isinstance(path, str) and covered.match(path)) and line.strip():
            kept.append(line + "\n")
    return kept


def _count_failed(failure):
    _FAILED_COUNTER.inc()
    return failure


def build(pipeline, model_path, layout, image_format="png", quality=images.DEFAULT_QUALITY,
          max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS, max_batch_pixels=DEFAULT_MAX_BATCH_PIXELS,
          share_model=False):
    """Adds the bulk translation of `layout` with the SavedModel at `model_path` to a
    Pipeline."""
    unreadable = {path: reason for path, reason in
                  files.unreadable_matches(layout.input_pattern).items()
                  if not layout.is_output(path)}
    inputs = (pipeline
              | "MatchInputs" >> fileio.MatchFiles(layout.input_pattern)
              | "NotOutputs" >> beam.Filter(
                  lambda m: not layout.is_output(m.path) and m.path not in unreadable)
              | "KeyInputs" >> beam.Map(
                  lambda m: (files.relative_key(m.path, layout.input_base), m.path)))
    if layout.labels:
        labels = (pipeline
                  | "MatchLabels" >> fileio.MatchFiles(layout.labels_pattern)
                  | "KeyLabels" >> beam.Map(
                      lambda m: (files.relative_key(m.path, layout.labels_base), m.path)))
    else:
        labels = pipeline | "NoLabels" >> beam.Create([])
    planned = ({"inputs": inputs, "labels": labels}
               | "Join" >> beam.CoGroupByKey()
               | "Plan" >> beam.ParDo(_Plan(layout)).with_outputs(_FAILED, main="items"))
    decoded = (planned.items
               | "Decode" >> beam.ParDo(_Decode(max_image_pixels)).with_outputs(
                   _FAILED, main="images"))
    handler = KeyedModelHandler(SavedModelHandler(model_path, max_batch_pixels, share_model))
    translated, dead = (decoded.images
                        | "Translate" >> RunInference(handler).with_exception_handling())
    _ = translated | "Write" >> beam.ParDo(_Write(image_format, quality))
    inference_failures = (dead.failed_inferences
                          | "InferenceFailures" >> beam.FlatMap(_inference_failures))
    no_files = pipeline | "NoRegularFiles" >> beam.Create(
        [{"path": path, "reason": reason} for path, reason in sorted(unreadable.items())])
    _ = ((no_files, planned[_FAILED], decoded[_FAILED], inference_failures)
         | "Failures" >> beam.Flatten()
         | "CountFailed" >> beam.Map(_count_failed)
         | "AllFailures" >> beam.combiners.ToList()
         | "WriteFailures" >> beam.ParDo(_WriteFailures(layout)))


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a job did: inputs translated, skipped (already done) and failed, and the
    per-image latency (read to written, ms; count 0 when nothing was translated)."""
    translated: int
    skipped: int
    failed: int
    failed_path: str
    latency_ms: dict

    def __str__(self):
        latency = (f"; latency per image {self.latency_ms['mean']:.0f} ms mean, "
                   f"{self.latency_ms['min']}-{self.latency_ms['max']} ms"
                   if self.latency_ms["count"] else "")
        failed = f" (reasons in {self.failed_path})" if self.failed else ""
        return (f"{self.translated} translated, {self.skipped} skipped as done, "
                f"{self.failed} failed{failed}{latency}")


def _value(result):
    return result.committed if result.committed is not None else result.attempted


def summarize(result, failed_path):
    """Summary of a finished PipelineResult, from its metrics."""
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    counts = dict.fromkeys(COUNTERS, 0)
    for counter in metrics["counters"]:
        counts[counter.key.metric.name] += _value(counter)
    latency = {"count": 0, "mean": 0.0, "min": 0, "max": 0}
    for distribution in metrics["distributions"]:
        data = _value(distribution)
        if data.count:
            latency = {"count": data.count, "mean": data.mean, "min": data.min,
                       "max": data.max}
    return Summary(failed_path=failed_path, latency_ms=latency, **counts)


def require_input(layout):
    """Refuses an --input or --labels that matches no file (a job over nothing is a mistyped
    path), an --input whose folder lies in an output folder, whose files the job would
    all pass over as its own outputs, and a local --output (or its _labels twin) that is a
    file, or lies below one."""
    for folder in (layout.output, layout.labels_output):
        if "://" not in folder:
            output_folders.check_output_folder("--output", folder)
    matched = FileSystems.match([layout.input_pattern], [1])[0].metadata_list
    if not matched:
        raise FileNotFoundError(f"--input={layout.input_pattern} matches no file")
    # Only a pattern without glob characters matches a folder, which Beam would then read.
    if os.path.isdir(matched[0].path):
        folder = layout.input_pattern.rstrip("/")
        raise IsADirectoryError(f"--input={layout.input_pattern} is a folder, not a pattern "
                                f"of files: pass '{folder}/*.png' (its files) or "
                                f"'{folder}/**/*.png' (its subfolders' files)")
    if layout.labels and not FileSystems.match([layout.labels_pattern], [1])[0].metadata_list:
        raise FileNotFoundError(f"--labels={layout.labels}: no file in it")
    if layout.is_output(layout.input_base):
        raise ValueError(f"--input={layout.input_pattern} lies in the output folder "
                         f"{layout.output} (or its _labels twin), and a job never translates "
                         f"its own outputs: choose an --output outside {layout.input_base}")


def _read_claim(layout):
    """OUTPUT/_job.json as `claim_output` wrote it, or a ValueError naming what is wrong:
    without it nothing says which model the outputs there are from."""
    try:
        claimed = json.loads(files.read(layout.job_path))
    except (ValueError, UnicodeDecodeError) as error:
        claimed = error
    if not isinstance(claimed, dict) or "model" not in claimed:
        raise ValueError(f"{layout.job_path} is damaged (not a JSON object with a \"model\" "
                         f"field: {str(claimed)[:200]}); it records which model wrote the "
                         f"outputs in --output={layout.output}: restore it, or delete that "
                         "folder to start over")
    return claimed


def claim_output(layout, model):
    """Refuses an --output (or its _labels twin) that holds files but no OUTPUT/_job.json
    (another job's outputs or data: a job would skip every input whose target path exists
    and pass the files there off as translations), or whose _job.json names another
    `model` (a `model_identity`); else writes one naming `model` and --input, so reruns of
    the job resume."""
    if FileSystems.exists(layout.job_path):
        claimed = _read_claim(layout)
        if claimed["model"] != model:
            raise ValueError(f"--output={layout.output} holds the outputs of another model "
                             f"({claimed['model']}, per {layout.job_path}), not of {model}: "
                             "choose another --output, or delete this one to start over")
        return
    held = files.find_files([layout.output, layout.labels_output])
    if held:
        raise ValueError(f"--output={layout.output}: {len(held)} file(s) there that no bulk "
                         f"job wrote ({held[0]}, ...; no {files.JOB_FILE}), which would count "
                         "as translations done: choose a new or empty --output")
    files.write_atomically(layout.job_path, json.dumps(
        {"model": model, "input": layout.input_pattern}, indent=1, sort_keys=True).encode())


class OutputProgress:
    """A job's progress read off its output folder: how many inputs have their translation
    (those an earlier run wrote count from the start; failures never do). A local runner
    hands Beam's counters to its caller only when the job ends, and a whole simulator set
    takes days on a CPU, so `watching` looks every `interval` seconds."""

    def __init__(self, layout, stream=None, interval=10.0):
        inputs = [m.path for m in FileSystems.match([layout.input_pattern])[0].metadata_list
                  if not layout.is_output(m.path)]
        self._targets = {layout.item(path).target for path in inputs}
        self._pattern = FileSystems.join(layout.output, "**")
        self._interval = interval
        total = len(self._targets)
        self.progress = Progress(total, unit="image", every=max(1, min(total // 20, 100)),
                                 stream=stream, start=self.done())

    def done(self):
        found = FileSystems.match([self._pattern])[0].metadata_list
        return len(self._targets.intersection(m.path for m in found))

    @contextlib.contextmanager
    def watching(self):
        """Updates the progress from a thread while the body runs, and once at its end."""
        stop = threading.Event()

        def watch():
            while not stop.wait(self._interval):
                self.progress.update(self.done())

        thread = threading.Thread(target=watch, name="bulk-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.progress.update(self.done())


def run(model_path, layout, options=None, progress=None, model=None, **settings):
    """Runs the job to its end and returns its Summary. `options`: Beam pipeline options
    (a dict or PipelineOptions; default `local_options()`); `model`: what `claim_output`
    records (default `model_identity(model_path)`); `progress`: a stream for
    `OutputProgress` (for local runners: a cluster's runner shows the counters in its UI);
    `settings`: `build`'s.

    Before it starts, `require_input` and `claim_output`; after it ends, temporaries that
    killed earlier runs left in the output folders are deleted."""
    require_input(layout)
    claim_output(layout, model or model_identity(model_path))
    if not isinstance(options, PipelineOptions):
        options = PipelineOptions.from_dictionary(options or local_options())
    pipeline = beam.Pipeline(options=options)
    build(pipeline, model_path, layout, **settings)
    watching = (OutputProgress(layout, progress).watching() if progress
                else contextlib.nullcontext())
    with watching:
        result = pipeline.run()
        result.wait_until_finish()
    files.remove_temporaries([layout.output, layout.labels_output])
    return summarize(result, layout.failed_path)
