"""One loaded version of a model and how a request runs on it: the signature lookup, the
input checks of `validation`, optional batching of concurrent requests (as TF Serving's
batching session does), and TF errors turned into ServingErrors with the op's own message.
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
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

from tfattncut.serving.export import WARMUP_FILE, read_warmup_file
from tfattncut.serving.validation import (RequestLimits, ServingError, check_inputs, exhausted,
                                          invalid, not_found, request_arrays)

DEFAULT_SIGNATURE = "serving_default"


@dataclasses.dataclass
class _Task:
    """One request waiting in a _Batcher: its inputs, row count and batching key."""
    key: tuple
    rows: int
    inputs: dict
    future: concurrent.futures.Future
    since: float


class _Batcher:
    """Runs concurrent calls of one signature as one batch when their inputs' shapes (but the
    batch dimension) and dtypes agree, as TF Serving's batching session does.

    A batch closes when it holds max_batch_size rows or its first request has waited
    batch_timeout_micros. A request larger than max_batch_size runs alone.
    """

    def __init__(self, function, options):
        self._function = function
        self._options = options
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.batch_sizes = collections.Counter()  # rows per model call -> how many calls
        for _ in range(max(1, options.num_batch_threads)):
            threading.Thread(target=self._loop, daemon=True, name="batcher").start()

    def __call__(self, inputs):
        """inputs {name: ndarray [B, ...]} -> outputs {name: ndarray [B, ...]}."""
        task = _Task(key=tuple((name, value.dtype.str, value.shape[1:])
                               for name, value in sorted(inputs.items())),
                     rows=next(iter(inputs.values())).shape[0], inputs=inputs,
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
            return _call(self._function, inputs)
        return task.future.result()

    def _take_batch(self):
        """Blocks until a batch is due; returns its tasks (None once closed and drained)."""
        timeout = self._options.batch_timeout_micros / 1e6
        with self._cond:
            while True:
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

    def _loop(self):
        while (batch := self._take_batch()) is not None:
            try:
                outputs = _call(self._function, {
                    name: np.concatenate([task.inputs[name] for task in batch])
                    for name in batch[0].inputs})
            except Exception as error:
                self._run_alone(batch, error)
                continue
            self.batch_sizes[sum(task.rows for task in batch)] += 1
            splits = np.cumsum([task.rows for task in batch])[:-1]
            parts = {name: np.split(value, splits) for name, value in outputs.items()}
            for i, task in enumerate(batch):
                task.future.set_result({name: value[i] for name, value in parts.items()})

    def _run_alone(self, batch, error):
        """A failed batch is rerun request by request, so that one bad request (say, bytes
        that are not an image) fails alone."""
        if len(batch) == 1:
            batch[0].future.set_exception(error)
            return
        for task in batch:
            try:
                task.future.set_result(_call(self._function, task.inputs))
            except Exception as own_error:
                task.future.set_exception(own_error)

    def close(self):
        """Runs what is queued, then stops the threads; later calls run unbatched."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _call(function, inputs):
    """Runs a signature; TF errors become ServingErrors with the op's own first line."""
    try:
        outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
    except tf.errors.InvalidArgumentError as error:
        raise invalid(_op_message(error)) from None
    except tf.errors.ResourceExhaustedError as error:
        raise exhausted(_op_message(error)) from None
    return {name: value.numpy() for name, value in outputs.items()}


def _op_message(error):
    """The failing op's own message: the line before "[[{{node ...}}]]" in TF's report."""
    lines = [line.strip() for line in error.message.split("\n")]
    for before, line in zip(lines, lines[1:]):
        if line.startswith("[[") and before:
            return before
    return lines[0]


class Servable:
    """One loaded version of a model: its signatures, their SignatureDefs, and the limits
    every request on it is checked against."""

    def __init__(self, name, version, path, batching=None, limits=RequestLimits()):
        self.name, self.version, self.path, self.limits = name, version, path, limits
        self._loaded = tf.saved_model.load(path)
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            meta_graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
        self.signature_defs = {key: value for key, value in meta_graph.signature_def.items()
                               if key in self._loaded.signatures}
        self._runners = {key: (_Batcher(fn, batching) if batching else
                               lambda inputs, fn=fn: _call(fn, inputs))
                         for key, fn in self._loaded.signatures.items()}

    def batch_sizes(self):
        """{signature: Counter(rows per model call)} where batching is on."""
        return {key: runner.batch_sizes for key, runner in self._runners.items()
                if isinstance(runner, _Batcher)}

    def signature(self, name):
        """(SignatureDef, runner) of a signature name ('' = serving_default)."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise not_found(f"model {self.name!r} version {self.version} has no signature "
                            f"{name!r}; it has {sorted(self.signature_defs)}")
        return self.signature_defs[name], self._runners[name]

    def warm_up(self):
        """Replays assets.extra/tf_serving_warmup_requests (as TF Serving does on load)."""
        path = os.path.join(self.path, "assets.extra", WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        requests = read_warmup_file(path)
        for request in requests:
            run_predict(self, request)
        return len(requests)

    def close(self):
        for runner in self._runners.values():
            if isinstance(runner, _Batcher):
                runner.close()


def run_predict(servable, request):
    """A PredictRequest on a loaded version -> PredictResponse (raises ServingError)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    outputs = run_arrays(servable, signature_name, request_arrays(
        signature_name, signature_def, request, servable.limits), list(request.output_filter))
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def run_arrays(servable, signature_name, inputs, output_filter=()):
    """inputs {name: ndarray} -> the signature's outputs {name: ndarray} (or those listed)."""
    signature_def, runner = servable.signature(signature_name)
    unknown = sorted(set(output_filter) - set(signature_def.outputs))
    if unknown:
        raise invalid(f"output_filter names {unknown}, which signature {signature_name!r} "
                      f"does not have; it has {sorted(signature_def.outputs)}")
    check_inputs(signature_name, signature_def, inputs, servable.limits)
    try:
        outputs = runner(inputs)
    except ServingError as error:
        raise ServingError(error.code, f"signature {signature_name!r}: {error.message}") from None
    return {name: value for name, value in outputs.items()
            if not output_filter or name in output_filter}
