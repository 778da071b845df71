"""An embedded TensorFlow Serving: `tensorflow.serving.PredictionService` (Predict,
GetModelMetadata) and `ModelService.GetModelStatus` over gRPC, plus TF Serving's REST API, for
the SavedModels that `tfattncut.serving.export` writes (any Predict-signature SavedModel works).

Behaviour follows `tensorflow_model_server` where a client can see it: the newest integer
version under a model's base path is served and newer ones are loaded (with their warm-up
requests) while serving, then swapped in; requests already running finish on the version they
started with. Bad requests get INVALID_ARGUMENT (inputs), NOT_FOUND (model, version,
signature) or RESOURCE_EXHAUSTED (message over the size limit) and a message naming the
problem. Deviation: an unknown signature is NOT_FOUND (TF Serving says FAILED_PRECONDITION).
"""
import base64
import binascii
import collections
import concurrent.futures
import dataclasses
import http.server
import json
import os
import re
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format, text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from tfattncut.serving.export import WARMUP_FILE, BatchingOptions, read_warmup_file

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
# As tensorflow_model_server's --max_num_load_retries (default 5) plus the first try.
MAX_LOAD_ATTEMPTS = 6
# TF Serving's REST API maps status codes to HTTP like this; a body over the size limit is 413.
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.INTERNAL: 500}
_STATE = get_model_status_pb2.ModelVersionStatus.State


class ServingError(Exception):
    """A request the server refuses: a gRPC status code and a message for the client."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None or d < 0 else str(d) for d in shape) + "]"


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
        raise _invalid(_op_message(error)) from None
    except tf.errors.ResourceExhaustedError as error:
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, _op_message(error)) from None
    return {name: value.numpy() for name, value in outputs.items()}


def _op_message(error):
    """The failing op's own message: the line before "[[{{node ...}}]]" in TF's report."""
    lines = [line.strip() for line in error.message.split("\n")]
    for before, line in zip(lines, lines[1:]):
        if line.startswith("[[") and before:
            return before
    return lines[0]


class Servable:
    """One loaded version of a model: its signatures and their SignatureDefs."""

    def __init__(self, name, version, path, batching=None):
        self.name, self.version, self.path = name, version, path
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
            raise _not_found(f"model {self.name!r} version {self.version} has no signature "
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


def _check_inputs(signature_name, signature_def, inputs):
    """inputs {name: ndarray}: keys, ranks, fixed dims and non-emptiness as the
    SignatureDef demands; raises INVALID_ARGUMENT naming the input."""
    expected = signature_def.inputs
    missing = sorted(set(expected) - set(inputs))
    extra = sorted(set(inputs) - set(expected))
    if missing or extra:
        raise _invalid(f"signature {signature_name!r} takes inputs {sorted(expected)}; the "
                       f"request is missing {missing} and has unexpected {extra}")
    for name, value in inputs.items():
        dims = [d.size for d in expected[name].tensor_shape.dim]
        if expected[name].tensor_shape.unknown_rank:
            continue
        if value.ndim != len(dims) or any(d >= 0 and d != n for d, n in zip(dims, value.shape)):
            raise _invalid(f"input {name!r} of signature {signature_name!r} must have shape "
                           f"{_shape_text(dims)}; got {_shape_text(value.shape)}")
        if value.size == 0:
            raise _invalid(f"input {name!r} is empty (shape {_shape_text(value.shape)})")
    if len({value.shape[0] for value in inputs.values() if value.ndim}) > 1:
        raise _invalid("all inputs must have the same batch size")


def _request_arrays(signature_name, signature_def, request):
    """The request's TensorProtos as ndarrays, dtypes checked against the SignatureDef."""
    arrays = {}
    for name, proto in request.inputs.items():
        info = signature_def.inputs.get(name)
        if info is not None and proto.dtype != info.dtype:
            raise _invalid(f"input {name!r} of signature {signature_name!r} must be "
                           f"{tf.dtypes.as_dtype(info.dtype).name}; got "
                           f"{_dtype_name(proto.dtype)}")
        try:
            arrays[name] = tf.make_ndarray(proto)
        except (ValueError, TypeError) as error:
            raise _invalid(f"input {name!r} is not a valid TensorProto: {error}") from None
    return arrays


def _dtype_name(enum):
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype enum {enum}"


def run_predict(servable, request):
    """A PredictRequest on a loaded version -> PredictResponse (raises ServingError)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    outputs = run_arrays(servable, signature_name, _request_arrays(
        signature_name, signature_def, request), list(request.output_filter))
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
        raise _invalid(f"output_filter names {unknown}, which signature {signature_name!r} "
                       f"does not have; it has {sorted(signature_def.outputs)}")
    _check_inputs(signature_name, signature_def, inputs)
    try:
        outputs = runner(inputs)
    except ServingError as error:
        raise ServingError(error.code, f"signature {signature_name!r}: {error.message}") from None
    return {name: value for name, value in outputs.items()
            if not output_filter or name in output_filter}


class ModelSource:
    """One model name: polls its base path for integer version folders, serves the newest."""

    def __init__(self, name, base_path, batching=None):
        self.name, self.base_path, self.batching = name, base_path, batching
        self._lock = threading.Lock()
        self._current = None
        self._states = {}  # version -> ModelVersionStatus.State
        self._failures = collections.Counter()  # version -> failed loads

    def available_versions(self):
        """Integer versions on disk holding a saved_model.pb, ascending."""
        if not tf.io.gfile.isdir(self.base_path):
            return []
        return sorted(int(n.strip("/")) for n in tf.io.gfile.listdir(self.base_path)
                      if n.strip("/").isdigit() and tf.io.gfile.exists(
                          os.path.join(self.base_path, n.strip("/"), "saved_model.pb")))

    def poll(self):
        """Loads (and warms up) the newest version if it is newer than the served one."""
        versions = [v for v in self.available_versions()
                    if self._failures[v] < MAX_LOAD_ATTEMPTS]
        current = self._current
        if not versions or (current is not None and versions[-1] <= current.version):
            return
        version = versions[-1]
        self._states[version] = _STATE.LOADING
        try:
            servable = Servable(self.name, version,
                                os.path.join(self.base_path, str(version)), self.batching)
            warmed = servable.warm_up()
        except Exception as error:  # keep serving the old version; try the new one again
            self._failures[version] += 1
            logging.error("Model %s version %d failed to load (attempt %d of %d): %s",
                          self.name, version, self._failures[version], MAX_LOAD_ATTEMPTS, error)
            self._states[version] = _STATE.END
            return
        with self._lock:
            old, self._current = self._current, servable
            self._states[version] = _STATE.AVAILABLE
            if old is not None:
                self._states[old.version] = _STATE.END
        if old is not None:
            old.close()
        logging.info("Serving model %s version %d (%d warm-up requests replayed)",
                     self.name, version, warmed)

    def get(self, version=None):
        """The served Servable; `version` must be the served one if given."""
        with self._lock:
            current = self._current
        if current is None:
            raise _not_found(f"model {self.name!r} has no loaded version yet (looking for "
                             f"integer version folders with a SavedModel in {self.base_path})")
        if version is not None and version != current.version:
            raise _not_found(f"model {self.name!r} has no version {version}; serving "
                             f"version {current.version}")
        return current

    def status(self, version=None):
        """[(version, state)] of the versions this source has seen."""
        if version is not None:
            if version not in self._states:
                raise _not_found(f"model {self.name!r} has no version {version}; known "
                                 f"versions {sorted(self._states)}")
            return [(version, self._states[version])]
        return sorted(self._states.items())

    def close(self):
        if self._current is not None:
            self._current.close()


def read_model_config_file(path):
    """{name: base_path} of a model_config_list text proto (`--model_config_file`).

    Base paths as the container sees them (`/models/NAME`, written by the export) are looked
    up beside the config file when they do not exist here.
    """
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as f:
        try:
            text_format.Parse(f.read(), config)
        except text_format.ParseError as error:
            raise ValueError(f"--model_config_file={path}: not a ModelServerConfig text "
                             f"proto: {error}") from None
    models = {}
    for entry in config.model_config_list.config:
        base_path = entry.base_path
        if not os.path.isdir(base_path):
            beside = os.path.join(os.path.dirname(os.path.abspath(path)),
                                  os.path.basename(base_path.rstrip("/")))
            base_path = beside if os.path.isdir(beside) else base_path
        models[entry.name] = base_path
    if not models:
        raise ValueError(f"--model_config_file={path} lists no model (model_config_list "
                         "{ config { name: ... base_path: ... } })")
    return models


def read_batching_parameters(path):
    """BatchingOptions from a `--batching_parameters_file` (`NAME { value: N }` lines)."""
    names = {field.name for field in dataclasses.fields(BatchingOptions)}
    values = {}
    with open(path) as f:
        text = re.sub(r"#.*", "", f.read())
    for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", text):
        if name not in names:
            raise ValueError(f"--batching_parameters_file={path}: {name} is not supported; "
                             f"use {sorted(names)}")
        values[name] = int(value)
    return BatchingOptions(**values)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

    def __init__(self, server):
        self._server = server

    def Predict(self, request, context):
        return _answer(context, self._server.predict, request)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._server.get_model_metadata, request)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "this server implements Predict and GetModelMetadata only")

    Classify = Regress = MultiInference = _unimplemented


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):

    def __init__(self, server):
        self._server = server

    def GetModelStatus(self, request, context):
        return _answer(context, self._server.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "reloading the model config is not supported; restart the server")


def _answer(context, handler, request):
    try:
        return handler(request)
    except ServingError as error:
        context.abort(error.code, error.message)


class ModelServer:
    """The gRPC (and optional REST) server over one or more ModelSources.

    models: {name: base_path}. `poll_wait_seconds` as tensorflow_model_server's
    --file_system_poll_wait_seconds: > 0 polls that often, 0 once, < 0 never.
    `port=0` picks a free port (see `.port` after `start()`).
    """

    def __init__(self, models, port=8500, host="0.0.0.0", rest_api_port=None,
                 batching=None, poll_wait_seconds=1.0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                 max_workers=32):
        self.sources = {name: ModelSource(name, path, batching) for name, path in models.items()}
        self.host, self.max_message_bytes = host, max_message_bytes
        self.poll_wait_seconds = poll_wait_seconds
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._grpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers),
                                 options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), self._grpc)
        self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind the gRPC port {host}:{port}")
        self._rest = None
        if rest_api_port is not None:
            self._rest = http.server.ThreadingHTTPServer((host, rest_api_port), _RestHandler)
            self._rest.daemon_threads = True
            self._rest.model_server = self
        self._stop = threading.Event()
        self._threads = []

    @property
    def rest_api_port(self):
        return self._rest.server_address[1] if self._rest else None

    def poll(self):
        for source in self.sources.values():
            source.poll()

    def start(self):
        """Loads what is on disk now (if polling at all), then starts serving."""
        if self.poll_wait_seconds >= 0:
            self.poll()
        if self.poll_wait_seconds > 0:
            self._threads.append(threading.Thread(target=self._poll_loop, daemon=True,
                                                  name="version-poller"))
        if self._rest:
            self._threads.append(threading.Thread(target=self._rest.serve_forever,
                                                  daemon=True, name="rest"))
        self._grpc.start()
        for thread in self._threads:
            thread.start()
        return self

    def _poll_loop(self):
        while not self._stop.wait(self.poll_wait_seconds):
            self.poll()

    def stop(self, grace=5.0):
        """Stops accepting requests, lets running ones finish (up to `grace` s), unloads."""
        self._stop.set()
        if self._rest:
            self._rest.shutdown()
            self._rest.server_close()
        self._grpc.stop(grace).wait()
        for thread in self._threads:
            thread.join()
        for source in self.sources.values():
            source.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(grace=0)

    def source(self, model_spec):
        """(ModelSource, version or None) of a ModelSpec; NOT_FOUND for unknown names."""
        if model_spec.name not in self.sources:
            raise _not_found(f"no model named {model_spec.name!r}; this server serves "
                             f"{sorted(self.sources)}")
        if model_spec.version_label:
            raise _not_found(f"version labels are not supported (got "
                             f"{model_spec.version_label!r}); ask for a version number")
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.sources[model_spec.name], version

    def servable(self, model_spec):
        source, version = self.source(model_spec)
        return source.get(version)

    def predict(self, request):
        return run_predict(self.servable(request.model_spec), request)

    def get_model_metadata(self, request):
        if list(request.metadata_field) != ["signature_def"]:
            raise _invalid(f"metadata_field must be ['signature_def']; got "
                           f"{list(request.metadata_field)}")
        servable = self.servable(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signatures)
        return response

    def get_model_status(self, request):
        source, version = self.source(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state in source.status(version):
            response.model_version_status.add(version=number, state=state)
        return response


class _RestHandler(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST API: GET /v1/models/NAME[/versions/N][/metadata] and
    POST /v1/models/NAME[/versions/N]:predict (row "instances" or columnar "inputs")."""
    protocol_version = "HTTP/1.1"
    _PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")

    def log_message(self, format, *args):
        logging.debug("REST %s", format % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        server = self.server.model_server
        try:
            body = self._read_body(server.max_message_bytes)
            match = self._PATH.match(self.path.split("?")[0])
            verb = match.group(3) if match else None
            if not match or (method == "POST") != (verb == ":predict"):
                raise _not_found(f"{method} {self.path} is not a TF Serving REST endpoint")
            spec = predict_pb2.PredictRequest().model_spec
            spec.name = match.group(1)
            if match.group(2):
                spec.version.value = int(match.group(2))
            if verb == "/metadata":
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"])
                response = server.get_model_metadata(request)
                signatures = get_model_metadata_pb2.SignatureDefMap()
                response.metadata["signature_def"].Unpack(signatures)
                result = {"model_spec": _proto_json(response.model_spec),
                          "metadata": {"signature_def": _proto_json(signatures)}}
            elif verb == ":predict":
                result = _rest_predict(server.servable(spec), body)
            else:
                request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
                result = _status_json(server.get_model_status(request))
            self._reply(200, result)
        except ServingError as error:
            self._reply(HTTP_STATUS.get(error.code, 500), {"error": error.message})

    def _read_body(self, limit):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _invalid("the Content-Length header is not a number") from None
        if length > limit:
            self.close_connection = True
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"request body of {length} bytes exceeds the limit of {limit}")
        return self.rfile.read(length)

    def _reply(self, status, result):
        data = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _proto_json(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _status_json(response):
    """GetModelStatusResponse as TF Serving's REST API prints it (defaults included)."""
    return {"model_version_status": [
        {"version": str(status.version), "state": _STATE.Name(status.state),
         "status": {"error_code": "OK", "error_message": ""}}
        for status in response.model_version_status]}


def _rest_predict(servable, body):
    """The JSON predict request body -> the JSON response dict (TF Serving's formats)."""
    try:
        request = json.loads(body)
    except ValueError as error:
        raise _invalid(f"request body is not JSON: {error}") from None
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        raise _invalid('the JSON body must be an object with exactly one of "instances" '
                       '(row format) or "inputs" (columnar format)')
    signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    names = sorted(signature_def.inputs)
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise _invalid('"instances" must be a list, one entry per example')
        if len(names) == 1 and not all(isinstance(r, dict) and names[0] in r for r in rows):
            columns = {names[0]: rows}
        else:
            columns = {name: [row.get(name) if isinstance(row, dict) else None for row in rows]
                       for name in {key for row in rows if isinstance(row, dict) for key in row}}
    else:
        inputs = request["inputs"]
        columns = inputs if isinstance(inputs, dict) and (len(names) != 1 or names[0] in inputs) \
            else {names[0]: inputs}
    unexpected = sorted(set(columns) - set(names))
    if unexpected:
        raise _invalid(f"signature {signature_name!r} takes inputs {names}; the request has "
                       f"unexpected {unexpected}")
    arrays = {name: _json_to_array(name, value, signature_def.inputs[name])
              for name, value in columns.items()}
    outputs = run_arrays(servable, signature_name, arrays)
    encoded = {name: _array_to_json(name, value) for name, value in outputs.items()}
    if "inputs" in request:
        return {"outputs": encoded if len(encoded) > 1 else next(iter(encoded.values()))}
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    return {"predictions": [dict(zip(encoded, row)) for row in zip(*encoded.values())]}


def _json_to_array(name, value, info):
    """A JSON value (nested lists) -> ndarray of the input's dtype."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    try:
        if dtype == tf.string:
            return np.array(_decode_strings(value), dtype=object)
        return np.array(value, dtype=dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError, binascii.Error) as error:
        raise _invalid(f"input {name!r} cannot be read as {dtype.name}: {error}") from None


def _decode_strings(value):
    """JSON strings / {"b64": ...} objects (nested lists) -> bytes."""
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def _array_to_json(name, value):
    """ndarray -> nested lists; strings as {"b64": ...} for outputs named *_bytes."""
    if value.dtype == object:
        as_text = (lambda s: {"b64": base64.b64encode(s).decode()}) if name.endswith("_bytes") \
            else (lambda s: s.decode("utf-8", "replace"))
        return np.vectorize(as_text, otypes=[object])(value).tolist()
    return value.tolist()
