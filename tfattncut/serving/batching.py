"""Running a signature of a loaded version: one call, with TF errors turned into
ServingErrors carrying the op's own message (`call_signature`), and the batching of
concurrent calls as TF Serving's batching session does (`Batcher`). What a call may cost and
when it may start is `servable`'s.
"""
import collections
import concurrent.futures
import dataclasses
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging

from tfattncut.serving.admission import NO_DEADLINE
from tfattncut.serving.validation import ServingError, exhausted, invalid, quoted, shape_text


@dataclasses.dataclass
class _Task:
    """One request waiting in a Batcher: its inputs, row count, batching key and call."""
    key: tuple
    rows: int
    inputs: dict
    call: object
    future: concurrent.futures.Future
    since: float


class Batcher:
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
        # rows per model call -> how many calls: what tells a test (or an operator reading
        # Servable.batch_sizes) that requests really ran together
        self.batch_sizes = collections.Counter()
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
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE, f"the batching queue is full ({limit} "
                        "requests waiting: max_enqueued_batches x max_batch_size of "
                        "--batching_parameters_file); retry later")
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
        with self._cond:  # several batch threads count
            self.batch_sizes[sum(rows)] += 1
        splits = np.cumsum(rows)[:-1]
        parts = {name: np.split(value, splits) for name, value in outputs.items()}
        for i, task in enumerate(batch):
            task.future.set_result({name: value[i] for name, value in parts.items()})

    def _run(self, inputs, rows):
        """call_signature, and INVALID_ARGUMENT unless every output has `rows` rows."""
        outputs = call_signature(self._function, inputs)
        for name, shape in outputs_without_rows(outputs, rows).items():
            raise invalid(f"output {quoted(name)} has shape {shape_text(shape)} for {rows} "
                          f"input row(s): {ONE_ROW_PER_INPUT}")
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


ONE_ROW_PER_INPUT = ("with --enable_batching every output must have one row per input row "
                     "(the batch dimension first)")


def outputs_without_rows(outputs, rows):
    """{name: shape} of the outputs that do not have `rows` rows first: what batching
    cannot split back into its requests' answers."""
    return {name: value.shape for name, value in outputs.items()
            if value.ndim == 0 or value.shape[0] != rows}


def call_signature(function, inputs):
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
