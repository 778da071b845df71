"""One loaded version of a model and how a request runs on it: the signature lookup, the
input checks of `validation`, admission by cost (`admission`), optional batching of
concurrent requests (as TF Serving's batching session does), and TF errors turned into
ServingErrors with the op's own message.

What a request costs is measured when a version loads (`Servable.costs`): each signature
with image inputs runs on a 128x128 and a 256x256 image while nothing else runs, and the
growth of the peak memory between the two gives the bytes per pixel (a request's cost counts
all its images' pixels: an overestimate for a signature that runs its images one at a time).
The same runs give the least time a pixel takes (their CPU time over the cores): a request
that could not end before its deadline even at that rate is not started (a model call cannot be stopped once it runs). A
first run on two images checks, with batching on, that every output has one row per input
row (a model whose outputs lose the batch dimension cannot be split among the requests of a
batch), so such a model fails to load instead of failing every request.
"""
import collections
import concurrent.futures
import dataclasses
import os
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

from tfattncut.serving import image_header, memory
from tfattncut.serving.admission import NO_DEADLINE, MemoryBudget
from tfattncut.serving.export import WARMUP_FILE, read_warmup_file, warmup_image
from tfattncut.serving.validation import (RequestLimits, ServingError, check_inputs, exhausted,
                                          invalid, not_found, quoted, quoted_list,
                                          request_arrays, shape_text)

DEFAULT_SIGNATURE = "serving_default"
# Sides of the two images measured: far enough apart for the per-pixel slope to stand out, and
# small: with the batch of two at the smaller side that runs first (its one-off allocations
# are no cost per pixel; it shows whether the outputs keep the batch dimension), 114,688
# pixels a signature, 1.5 s of a 2-core machine for a CUT generator of ngf 64 (13 us a pixel).
_CALIBRATION_SIDES = (128, 256)
# A request's tensors outside the model's own memory: the received message, its ndarrays and
# the response's copy of the outputs (about the inputs' size for an image translator).
_COPIES_OUTSIDE_THE_MODEL = 3
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_NO_LIMITS = RequestLimits(max_message_bytes=1 << 62,
                           max_image_pixels=image_header.MAX_PIXELS_LIMIT)
# The slope measured between the two sides ran up to 10 % under the peak per pixel of
# 1024x1024 and 2048x2048 images (a tiny generator, malloc'd tensors).
_MARGIN = 1.25


@dataclasses.dataclass(frozen=True)
class SignatureCost:
    """What one call of a signature holds in memory: fixed_bytes + bytes_per_pixel x the
    inputs' pixels (`validation.check_inputs`), and the least time it takes per pixel,
    measured when the version loaded (`measured` False: a signature without image inputs,
    whose cost is its tensors' alone)."""
    fixed_bytes: int = 0
    bytes_per_pixel: float = 0.0
    seconds_per_pixel: float = 0.0
    measured: bool = False


@dataclasses.dataclass
class _Task:
    """One request waiting in a _Batcher: its inputs, row count, batching key and call."""
    key: tuple
    rows: int
    inputs: dict
    call: object
    future: concurrent.futures.Future
    since: float


class _Batcher:
    """Runs concurrent calls of one signature as one batch when their inputs' shapes (but the
    batch dimension) and dtypes agree, as TF Serving's batching session does.

    A batch closes when it holds max_batch_size rows or its first request has waited
    batch_timeout_micros. A request larger than max_batch_size runs alone. Requests whose
    client has gone are dropped before they run. Whatever a batch raises fails its requests
    only (a failed batch is rerun request by request, so one bad request fails alone); the
    threads run until `close`.
    """

    def __init__(self, signature_name, function, options):
        self._signature_name = signature_name
        self._function = function
        self._options = options
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.batch_sizes = collections.Counter()  # rows per model call -> how many calls
        for _ in range(max(1, options.num_batch_threads)):
            threading.Thread(target=self._loop, daemon=True, name="batcher").start()

    def __call__(self, inputs, call=NO_DEADLINE):
        """inputs {name: ndarray [B, ...]} -> outputs {name: ndarray [B, ...]}."""
        task = _Task(key=tuple((name, value.dtype.str, value.shape[1:])
                               for name, value in sorted(inputs.items())),
                     rows=next(iter(inputs.values())).shape[0], inputs=inputs, call=call,
                     future=concurrent.futures.Future(), since=time.monotonic())
        limit = self._options.max_enqueued_batches * self._options.max_batch_size
        with self._cond:
            enqueued = not self._closed
            if enqueued:
                if len(self._queue) >= limit:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                       f"the batching queue is full ({limit} requests waiting)")
                self._queue.append(task)
                self._cond.notify_all()
        if not enqueued:  # this version was swapped out meanwhile
            return self._run(inputs, task.rows)
        return call.wait(task.future, "its batch ran")

    def _take_batch(self):
        """Blocks until a batch is due; returns its tasks (None once closed and drained).
        Tasks whose client has gone leave the queue with their error."""
        timeout = self._options.batch_timeout_micros / 1e6
        with self._cond:
            while True:
                self._drop_abandoned()
                if not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                first = self._queue[0]
                same = [task for task in self._queue if task.key == first.key]
                full = sum(task.rows for task in same) >= self._options.max_batch_size
                wait = first.since + timeout - time.monotonic()
                if full or wait <= 0 or self._closed:
                    break
                self._cond.wait(wait)
            batch, rows = [], 0
            for task in same:
                if batch and rows + task.rows > self._options.max_batch_size:
                    break
                batch.append(task)
                rows += task.rows
            for task in batch:
                self._queue.remove(task)
            return batch

    def _drop_abandoned(self):
        for task in [task for task in self._queue if _fail_if_abandoned(task)]:
            self._queue.remove(task)

    def _loop(self):
        while True:
            batch = []
            try:
                batch = self._take_batch()
                if batch is None:
                    return
                self._run_batch(batch)
            except Exception as error:  # a bug here must fail its batch, not the thread
                logging.exception("Batcher of signature %s failed", self._signature_name)
                for task in batch:
                    if not task.future.done():
                        task.future.set_exception(ServingError(
                            grpc.StatusCode.INTERNAL,
                            f"the batch failed: {type(error).__name__}: {error}"))

    def _run_batch(self, batch):
        rows = [task.rows for task in batch]
        try:
            outputs = self._run({name: np.concatenate([task.inputs[name] for task in batch])
                                 for name in batch[0].inputs}, sum(rows))
        except ServingError as error:
            self._run_alone(batch, error)
            return
        self.batch_sizes[sum(rows)] += 1
        splits = np.cumsum(rows)[:-1]
        parts = {name: np.split(value, splits) for name, value in outputs.items()}
        for i, task in enumerate(batch):
            task.future.set_result({name: value[i] for name, value in parts.items()})

    def _run(self, inputs, rows):
        """_call, and INVALID_ARGUMENT unless every output has `rows` rows."""
        outputs = _call(self._function, inputs)
        for name, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != rows:
                raise invalid(f"output {quoted(name)} has shape {shape_text(value.shape)} for "
                              f"{rows} input row(s): with --enable_batching every output "
                              "must have one row per input row (the batch dimension first)")
        return outputs

    def _run_alone(self, batch, error):
        """A failed batch is rerun request by request (those whose client is still there), so
        that one bad request (say, bytes that are not an image) fails alone."""
        if len(batch) == 1:
            batch[0].future.set_exception(error)
            return
        for task in batch:
            if _fail_if_abandoned(task):
                continue
            try:
                task.future.set_result(self._run(task.inputs, task.rows))
            except ServingError as own_error:
                task.future.set_exception(own_error)

    def close(self):
        """Runs what is queued, then stops the threads; later calls run unbatched."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _fail_if_abandoned(task):
    """Fails a task whose client has gone (True), else False."""
    try:
        task.call.check("its batch ran")
    except ServingError as error:
        task.future.set_exception(error)
        return True
    return False


# TF's error codes are gRPC's (both are google.rpc.Code).
_GRPC_CODE = {code.value[0]: code for code in grpc.StatusCode}


def _call(function, inputs):
    """Runs a signature; TF errors become ServingErrors with the op's own first line, any
    other error INTERNAL (logged)."""
    try:
        outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}
    except tf.errors.ResourceExhaustedError as error:
        raise exhausted(_op_message(error)) from None
    except tf.errors.OpError as error:
        raise ServingError(_GRPC_CODE.get(error.error_code, grpc.StatusCode.UNKNOWN),
                           _op_message(error)) from None
    except Exception as error:
        logging.exception("A model call failed")
        raise ServingError(grpc.StatusCode.INTERNAL,
                           f"the model call failed: {type(error).__name__}: {error}") from None


def _op_message(error):
    """The failing op's own message: the line before "[[{{node ...}}]]" in TF's report."""
    lines = [line.strip() for line in error.message.split("\n")]
    for before, line in zip(lines, lines[1:]):
        if line.startswith("[[") and before:
            return before
    return lines[0]


class Servable:
    """One loaded version of a model: its signatures, their SignatureDefs and measured costs,
    the limits every request on it is checked against and the budget it is admitted from."""

    def __init__(self, name, version, path, batching=None, limits=RequestLimits(),
                 budget=None):
        self.name, self.version, self.path, self.limits = name, version, path, limits
        self.budget = budget or MemoryBudget(memory.default_budget_bytes())
        self._loaded = tf.saved_model.load(path)
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            meta_graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
        self.signature_defs = {key: value for key, value in meta_graph.signature_def.items()
                               if key in self._loaded.signatures}
        self._runners = {key: (_Batcher(key, fn, batching) if batching else
                               lambda inputs, call=NO_DEADLINE, fn=fn: _call(fn, inputs))
                         for key, fn in self._loaded.signatures.items()}
        try:
            with self.budget.exclusive():
                self.costs = {key: self._measure(key, batching is not None)
                              for key in self.signature_defs}
        except BaseException:
            self.close()
            raise

    def _measure(self, signature_name, batching):
        """The SignatureCost of a signature (see the module's docstring); a ValueError when,
        with `batching`, an output does not keep the batch dimension."""
        signature_def = self.signature_defs[signature_name]
        pair = _calibration_inputs(signature_def, _CALIBRATION_SIDES[0], 2)
        if pair is None:
            return SignatureCost()
        function = self._loaded.signatures[signature_name]
        peaks, pixels, rates = [], [], []
        try:
            outputs = _call(function, pair)
            for side in _CALIBRATION_SIDES:
                inputs = _calibration_inputs(signature_def, side, 1)
                started = time.process_time()
                peaks.append(memory.peak_growth_bytes(lambda: _call(function, inputs)))
                pixels.append(check_inputs(signature_name, signature_def, inputs, _NO_LIMITS))
                # CPU time over the cores: what no run can beat, however idle the machine;
                # wall time would count other processes' load at this moment.
                rates.append((time.process_time() - started) / pixels[-1] / _CORES)
        except ServingError as error:
            logging.warning("Model %s version %d signature %s fails on images, so its cost "
                            "is counted as its tensors' alone: %s", self.name, self.version,
                            signature_name, error.message)
            return SignatureCost()
        lost = {name: value.shape for name, value in outputs.items()
                if value.ndim == 0 or value.shape[0] != 2}
        if batching and lost:
            raise ValueError(
                f"signature {signature_name!r} answers 2 input rows with outputs of shapes "
                f"{', '.join(f'{k}: {shape_text(v)}' for k, v in lost.items())}: with "
                "--enable_batching every output must have one row per input row (the batch "
                "dimension first)")
        per_pixel = max(0.0, (peaks[1] - peaks[0]) / (pixels[1] - pixels[0]))
        cost = SignatureCost(int(max(0.0, peaks[0] - per_pixel * pixels[0])), per_pixel,
                             min(rates), True)
        logging.info("Model %s version %d signature %s: %.0f bytes per pixel, %.1f MiB fixed, "
                     "%.2f s per megapixel", self.name, self.version, signature_name,
                     cost.bytes_per_pixel, cost.fixed_bytes / (1 << 20),
                     cost.seconds_per_pixel * 1e6)
        return cost

    def cost(self, signature_name, pixels, inputs):
        """The estimated bytes of one call of a signature on `inputs` {name: ndarray} holding
        `pixels` pixels."""
        measured = self.costs.get(signature_name, SignatureCost())
        tensors = sum(value.nbytes if value.dtype != object else
                      sum(len(item) for item in value.flat) for value in inputs.values())
        return int(measured.fixed_bytes + _MARGIN * measured.bytes_per_pixel * pixels
                   + _COPIES_OUTSIDE_THE_MODEL * tensors)

    def batch_sizes(self):
        """{signature: Counter(rows per model call)} where batching is on."""
        return {key: runner.batch_sizes for key, runner in self._runners.items()
                if isinstance(runner, _Batcher)}

    def signature(self, name):
        """(SignatureDef, runner) of a signature name ('' = serving_default)."""
        name = name or DEFAULT_SIGNATURE
        if not isinstance(name, str):
            raise invalid(f"the signature name must be a string; got {quoted(name)}")
        if name not in self.signature_defs:
            raise not_found(f"model {quoted(self.name)} version {self.version} has no "
                            f"signature {quoted(name)}; it has "
                            f"{quoted_list(self.signature_defs)}")
        return self.signature_defs[name], self._runners[name]

    def warm_up(self):
        """Replays assets.extra/tf_serving_warmup_requests (as TF Serving does on load),
        straight into the model: the export's own requests, not held to the limits of
        clients' nor kept waiting for company in a batch."""
        path = os.path.join(self.path, "assets.extra", WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        requests = read_warmup_file(path)
        for request in requests:
            name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            signature_def, _ = self.signature(name)
            _call(self._loaded.signatures[name],
                  request_arrays(name, signature_def, request, _NO_LIMITS))
        return len(requests)

    def close(self):
        for runner in self._runners.values():
            if isinstance(runner, _Batcher):
                runner.close()


def _check_time(call, cost, pixels):
    """DEADLINE_EXCEEDED, before it starts, for a request that cannot end before its deadline
    even at the fastest rate measured: a model call cannot be stopped once it runs."""
    remaining, least = call.remaining(), cost.seconds_per_pixel * pixels
    if remaining is not None and least > remaining:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                           f"the request would take at least {least:.1f} s to run ({pixels} "
                           f"pixels at the rate measured when the version loaded), more than "
                           f"the {max(0.0, remaining):.1f} s left before its deadline; it was "
                           "not started")


def _calibration_inputs(signature_def, side, batch):
    """Inputs {name: ndarray} of `batch` side x side images for a signature whose inputs are
    all images ([B, H, W, C] numbers, or [B] encoded images); None for any other."""
    inputs = {}
    for name, info in signature_def.inputs.items():
        dtype = tf.dtypes.as_dtype(info.dtype)
        dims = [d.size for d in info.tensor_shape.dim]
        if info.tensor_shape.unknown_rank:
            return None
        if dtype == tf.string and len(dims) == 1:
            png = tf.io.encode_png(warmup_image(side)).numpy()
            inputs[name] = np.array([png] * batch, dtype=object)
        elif (dtype.is_floating or dtype.is_integer) and len(dims) == 4:
            height, width, channels = (n if n > 0 else default for n, default in
                                       zip(dims[1:], (side, side, 3)))
            inputs[name] = np.zeros([batch, height, width, channels], dtype.as_numpy_dtype)
        else:
            return None
    return inputs or None


def run_predict(servable, request, call=NO_DEADLINE):
    """A PredictRequest on a loaded version -> PredictResponse (raises ServingError)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    outputs = run_arrays(servable, signature_name, request_arrays(
        signature_name, signature_def, request, servable.limits), call,
        list(request.output_filter))
    call.check("its answer was encoded")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def run_arrays(servable, signature_name, inputs, call=NO_DEADLINE, output_filter=()):
    """inputs {name: ndarray} -> the signature's outputs {name: ndarray} (or those listed),
    once the request's cost is admitted from the servable's budget."""
    signature_def, runner = servable.signature(signature_name)
    unknown = set(output_filter) - set(signature_def.outputs)
    if unknown:
        raise invalid(f"output_filter names {quoted_list(unknown)}, which signature "
                      f"{quoted(signature_name)} does not have; it has "
                      f"{quoted_list(signature_def.outputs)}")
    pixels = check_inputs(signature_name, signature_def, inputs, servable.limits)
    with servable.budget.admit(servable.cost(signature_name, pixels, inputs), call):
        call.check("it ran")
        _check_time(call, servable.costs.get(signature_name, SignatureCost()), pixels)
        try:
            outputs = runner(inputs, call)
        except ServingError as error:
            raise ServingError(error.code, f"signature {quoted(signature_name)}: "
                                           f"{error.message}", error.http_status) from None
    return {name: value for name, value in outputs.items()
            if not output_filter or name in output_filter}
