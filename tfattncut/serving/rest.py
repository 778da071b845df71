"""TF Serving's REST API for the embedded server: GET /v1/models/NAME[/versions/N][/metadata]
and POST /v1/models/NAME[/versions/N]:predict (row "instances" or columnar "inputs"), with
every answer, errors included, a JSON body as TF Serving's are.

Built on the standard library's http.server, deliberately. A maintained server library
(waitress, cheroot) would bring chunked bodies and its own timeouts, but it answers what it
rejects while parsing (bad request line, oversized headers, bad lengths) with its own
text/plain pages, and it cannot let running requests finish on SIGTERM while refusing new
ones; both are what a TF Serving client relies on. What http.server lacks for a port that
strangers reach is added here in a few lines:
  - a listen backlog of LISTEN_BACKLOG (http.server's 5 resets bursts of connections);
  - at most `num_threads` connections served at once: the accept loop waits for a free
    worker, so the rest wait in the backlog; while every worker is busy, a keep-alive
    connection is closed after its answer so that waiting clients get a turn;
  - a read deadline per request (`timeout_seconds`) for the request line, the headers and
    the whole body, so a client that sends less than its Content-Length (or nothing) cannot
    hold a worker;
  - strict request framing: Content-Length must be one non-negative integer within the
    message limit, and Transfer-Encoding (chunked bodies) is answered 411; after such a
    refusal the connection is closed gracefully (what the client still sends is read for a
    moment), so the client reads the answer instead of a connection reset;
  - no Python version in the `Server` header.
"""
import base64
import binascii
import contextlib
import http.server
import json
import os
import re
import socket
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tfattncut.serving.servable import DEFAULT_SIGNATURE, run_arrays
from tfattncut.serving.validation import ServingError, invalid, not_found

# As large as Linux allows by default (net.core.somaxconn caps it): a burst of clients that
# connect at once waits here instead of being reset.
LISTEN_BACKLOG = 4096
DEFAULT_NUM_THREADS = max(16, 4 * (os.cpu_count() or 1))
DEFAULT_TIMEOUT_SECONDS = 30.0
# TF Serving's REST API maps status codes to HTTP like this; a body over the size limit is 413.
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.INTERNAL: 500}
_MAX_VERSION = 2 ** 63 - 1  # ModelSpec.version is an int64
_LINGER_SECONDS = 1.0
_STATE = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODE = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name[
    "status"].message_type.fields_by_name["error_code"].enum_type


class HttpError(Exception):
    """An answer decided by HTTP framing, before any model is involved; the connection is
    closed after it, since the rest of the request cannot be trusted."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class RestServer(http.server.ThreadingHTTPServer):
    """The REST port of a ModelServer (`model_server`: its predict/metadata/status calls)."""
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True  # idle keep-alive connections must not hold up the process exit
    block_on_close = False

    def __init__(self, address, model_server, num_threads=DEFAULT_NUM_THREADS,
                 timeout_seconds=DEFAULT_TIMEOUT_SECONDS):
        self.model_server = model_server
        self.num_threads, self.timeout_seconds = num_threads, timeout_seconds
        self.closing = threading.Event()
        self._slots = threading.BoundedSemaphore(num_threads)
        self._state = threading.Condition()
        self._connections = 0
        self._running = 0  # requests being answered
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        """Serves a connection once a worker is free; until then the accept loop waits and
        new connections queue in the listen backlog."""
        while not self._slots.acquire(timeout=0.1):
            if self.closing.is_set():
                self.shutdown_request(request)
                return
        with self._state:
            self._connections += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._state:
                self._connections -= 1
            self._slots.release()

    def crowded(self):
        """Whether every worker holds a connection (others may be waiting)."""
        with self._state:
            return self._connections >= self.num_threads

    @contextlib.contextmanager
    def request(self):
        """Counts a request as running, so stop() waits for it."""
        with self._state:
            self._running += 1
        try:
            yield
        finally:
            with self._state:
                self._running -= 1
                self._state.notify_all()

    def handle_error(self, request, client_address):
        """A client that vanished mid-answer is routine; anything else is logged."""
        logging.debug("REST connection from %s failed", client_address, exc_info=True)

    def stop(self, deadline):
        """Stops accepting, answers 503 to requests that start from now on, and waits until
        time.monotonic() reaches `deadline` for the running ones to finish."""
        self.closing.set()
        self.shutdown()
        self.server_close()
        with self._state:
            self._state.wait_for(lambda: self._running == 0,
                                 timeout=max(0.0, deadline - time.monotonic()))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")

    def setup(self):
        self.timeout = self.server.timeout_seconds  # socket timeout while reading a request
        super().setup()

    def version_string(self):
        return "tfattncut-serving"

    def log_message(self, format, *args):
        logging.debug("REST %s", format % args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (bad request line, headers too long, unsupported
        method) in JSON like every other answer."""
        self.close_connection = True
        self._reply(code, {"error": message or self.responses.get(code, ("error",))[0]})
        self._linger()

    def _linger(self):
        """Half-closes, then reads what the client still sends for a moment: closing a socket
        with unread bytes resets the connection, which can destroy the answer in flight."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(1 << 16):
                    break
        except OSError:  # the client is gone, or the moment has passed
            pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        server = self.server
        with server.request():
            refused = False
            try:
                if server.closing.is_set():
                    raise HttpError(503, "the server is stopping")
                status, result = 200, self._answer(method, server)
            except HttpError as error:
                self.close_connection = True
                status, result = error.status, {"error": error.message}
                refused = True
            except ServingError as error:
                status, result = HTTP_STATUS.get(error.code, 500), {"error": error.message}
            except Exception as error:  # a bug here must not cost the client its answer
                logging.exception("REST %s %s failed", method, self.path)
                status, result = 500, {"error": f"internal error: {type(error).__name__}: "
                                                f"{error}"}
            if server.crowded() or server.closing.is_set():
                self.close_connection = True
            self._reply(status, result)
            if refused:
                self._linger()

    def _answer(self, method, server):
        body = self._read_body(server.model_server.limits.max_message_bytes)
        match = self._PATH.match(self.path.split("?")[0])
        verb = match.group(3) if match else None
        if not match or (method == "POST") != (verb == ":predict"):
            raise not_found(f"{method} {self.path} is not a TF Serving REST endpoint")
        spec = predict_pb2.PredictRequest().model_spec
        spec.name = match.group(1)
        if match.group(2):
            version = int(match.group(2))
            if version > _MAX_VERSION:
                raise invalid(f"version {match.group(2)} is out of range (at most "
                              f"{_MAX_VERSION})")
            spec.version.value = version
        model_server = server.model_server
        if verb == "/metadata":
            response = model_server.get_model_metadata(
                get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"]))
            signatures = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signatures)
            return {"model_spec": _proto_json(response.model_spec),
                    "metadata": {"signature_def": _proto_json(signatures)}}
        if verb == ":predict":
            return _rest_predict(model_server.servable(spec), body)
        return _status_json(model_server.get_model_status(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec)))

    def _read_body(self, limit):
        """The request body, Content-Length bytes read within the server's timeout."""
        if "Transfer-Encoding" in self.headers:
            raise HttpError(411, "send the body with a Content-Length header; "
                                 "Transfer-Encoding (chunked bodies) is not supported")
        lengths = self.headers.get_all("Content-Length") or ["0"]
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()):
            raise HttpError(400, f"Content-Length must be one non-negative integer; got "
                                 f"{', '.join(lengths)!r}")
        length = int(text)
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes exceeds the limit of "
                                 f"{limit} (--max_message_mb)")
        deadline = time.monotonic() + self.server.timeout_seconds
        chunks, remaining = [], length
        try:
            while remaining:
                self.connection.settimeout(max(1e-3, deadline - time.monotonic()))
                chunk = self.rfile.read1(remaining)
                if not chunk:
                    raise HttpError(400, f"the body ended after {length - remaining} of its "
                                         f"{length} bytes (Content-Length)")
                chunks.append(chunk)
                remaining -= len(chunk)
                if remaining and time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError:
            raise HttpError(408, f"the body did not arrive within "
                                 f"{self.server.timeout_seconds:g} s ({length - remaining} of "
                                 f"{length} bytes)") from None
        finally:
            self.connection.settimeout(self.server.timeout_seconds)
        return b"".join(chunks)

    def _reply(self, status, result):
        data = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _proto_json(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _status_json(response):
    """GetModelStatusResponse as TF Serving's REST API prints it (defaults included)."""
    return {"model_version_status": [
        {"version": str(status.version), "state": _STATE.Name(status.state),
         "status": {"error_code": _ERROR_CODE.values_by_number[status.status.error_code].name,
                    "error_message": status.status.error_message}}
        for status in response.model_version_status]}


def _rest_predict(servable, body):
    """The JSON predict request body -> the JSON response dict (TF Serving's formats)."""
    try:
        request = json.loads(body)
    except RecursionError:
        raise invalid("the JSON body nests deeper than this server reads") from None
    except ValueError as error:
        raise invalid(f"request body is not JSON: {error}") from None
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        raise invalid('the JSON body must be an object with exactly one of "instances" '
                      '(row format) or "inputs" (columnar format)')
    signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
    signature_def, _ = servable.signature(signature_name)
    names = sorted(signature_def.inputs)
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise invalid('"instances" must be a list, one entry per example')
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
        raise invalid(f"signature {signature_name!r} takes inputs {names}; the request has "
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
    """A JSON value (nested lists) -> ndarray of the input's dtype. Integer inputs take
    integers only, in the dtype's range: 1.7 is refused, not truncated to 1."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    try:
        if dtype == tf.string:
            return np.array(_decode_strings(value), dtype=object)
        if not dtype.is_integer:
            return np.array(value, dtype=dtype.as_numpy_dtype)
        parsed = np.array(value)
        if parsed.size and parsed.dtype.kind not in "iu":
            raise invalid(f"input {name!r} is {dtype.name}: send integers only (the request "
                          f"holds {parsed.dtype.name} values)")
        if parsed.size and (parsed.min() < dtype.min or parsed.max() > dtype.max):
            raise invalid(f"input {name!r} is {dtype.name}: values must lie in "
                          f"[{dtype.min}, {dtype.max}]; got [{parsed.min()}, {parsed.max()}]")
        return parsed.astype(dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as error:
        raise invalid(f"input {name!r} cannot be read as {dtype.name}: {error}") from None


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
