"""TF Serving's REST API for the embedded server: GET /v1/models/NAME[/versions/N][/metadata]
and POST /v1/models/NAME[/versions/N]:predict (row "instances" or columnar "inputs"), with
every answer, errors included, a JSON body as TF Serving's are.

Built for a port that strangers reach, on the standard library's asyncio. One event-loop
thread reads every connection, and only a complete request goes to one of `num_threads`
worker threads, so a client that sends slowly (or nothing) holds a socket and a few
kilobytes, never a worker:
  - one deadline per request (`timeout_seconds`) for its request line, headers and body
    together, counted from when the server starts waiting for it: a client that sends a byte
    a second is answered 408 when it passes, an idle keep-alive connection is closed then;
  - at most `max_connections_per_client` connections per client address (more are answered
    503 and closed) and MAX_CONNECTIONS in all (more wait in the listen backlog of
    LISTEN_BACKLOG);
  - the request line and headers read with http.server's limits and messages (414, 431, 400,
    505, 501), strict framing (Content-Length one non-negative integer within the message
    limit; Transfer-Encoding, chunked bodies, is 411), and a body's bytes taken from the
    in-flight memory budget before it is read; a JSON body whose parse would take more than
    the message limit (`json_cost`) is refused before it is parsed;
  - a client that closes its connection cancels its request (REST clients send no deadline),
    and a request waits for room in the memory budget at most `timeout_seconds` (then 429);
  - after a refusal the connection is closed gracefully (what the client still sends is read
    for a moment), so the client reads the answer instead of a connection reset.
A server library (waitress, cheroot, uvicorn) would bring a similar event loop, but it
answers what it rejects while parsing with its own text/plain pages, and it cannot let
running requests finish on SIGTERM while refusing new ones; both are what a TF Serving client
relies on.
"""
import asyncio
import base64
import binascii
import collections
import concurrent.futures
import email.utils
import http
import http.client
import io
import json
import os
import re
import resource
import socket
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tfattncut.serving.admission import Call, mib
from tfattncut.serving.servable import DEFAULT_SIGNATURE, run_arrays
from tfattncut.serving.validation import (ServingError, exhausted, invalid, not_found,
                                          quoted, quoted_list)
from tfattncut.serving.versions import MAX_VERSION

# As large as Linux allows by default (net.core.somaxconn caps it): a burst of clients that
# connect at once waits here instead of being reset.
LISTEN_BACKLOG = 4096
DEFAULT_NUM_THREADS = max(16, 4 * (os.cpu_count() or 1))
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256
# Every connection holds a file descriptor; half of the process's stay for models and gRPC.
MAX_CONNECTIONS = max(64, min(16384, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2))
# TF Serving's REST API maps status codes to HTTP like this; a body over the size limit is 413,
# a request whose client went away 499 (nginx's "client closed request"; no one reads it).
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.INTERNAL: 500,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.CANCELLED: 499}
_REASONS = {499: "Client Closed Request"}
_MAX_LINE = 65536  # http.server's and http.client's limits
_MAX_HEADERS = 100
_READ_BYTES = 1 << 16
_LINGER_SECONDS = 1.0
# Python's memory for a parsed JSON body, per token: a list and its first slot, a dict with a
# key, a number or string and its slot in a list. With tracemalloc, 100,000 rows of [r, g, b]
# (integers over 256 or floats) and of {"b64": ...} held 10-20 % less than this estimate
# (half as much for integers up to 256, which Python shares).
_JSON_BYTES = {b"[": 64, b"{": 240, b",": 40}
# No request to an image signature nests deeper: a body that opens this many arrays in a row
# is refused before its cost is estimated (Python's parser would give up at about 1000).
_TOO_DEEP = b"[" * 64
_STATE = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODE = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name[
    "status"].message_type.fields_by_name["error_code"].enum_type


class HttpError(Exception):
    """An answer decided by HTTP framing, before any model is involved; the connection is
    closed after it, since the rest of the request cannot be trusted."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class _Request(collections.namedtuple("_Request", "method path headers body close")):
    """A request as read off the wire: `close` when the connection ends after its answer."""


class _Connection:
    """A client's socket, read through a buffer by the event loop."""

    def __init__(self, loop, sock, client):
        self.loop, self.sock, self.client = loop, sock, client
        self.buffer = bytearray()
        self.eof = False
        self.received = 0  # bytes of the request being read

    async def _fill(self):
        data = await self.loop.sock_recv(self.sock, _READ_BYTES)
        self.received += len(data)
        if data:
            self.buffer += data
        else:
            self.eof = True

    async def readline(self, limit):
        """A line of at most `limit` bytes with its newline (at the end of the stream what is
        left, b"" if nothing), or None once `limit` bytes arrived without a newline."""
        while True:
            end = self.buffer.find(b"\n", 0, limit)
            if end >= 0 or self.eof:
                end = end + 1 if end >= 0 else len(self.buffer)
                line = bytes(self.buffer[:end])
                del self.buffer[:end]
                return line
            if len(self.buffer) >= limit:
                return None
            await self._fill()

    async def read(self, size):
        """`size` bytes, fewer if the stream ends first."""
        while len(self.buffer) < size and not self.eof:
            await self._fill()
        with memoryview(self.buffer) as view:  # one copy of a body of up to --max_message_mb
            data = bytes(view[:size])
        del self.buffer[:size]
        return data

    def watch_for_close(self):
        """While a request runs: notices the client closing its connection (sets `eof`)
        without reading what it may send meanwhile. `stop_watching` ends it."""
        def readable():
            try:
                if not self.sock.recv(1, socket.MSG_PEEK):
                    self.eof = True
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.eof = True
            self.stop_watching()  # closed, or the next request is arriving

        if not self.eof and not self.buffer:
            self.loop.add_reader(self.sock.fileno(), readable)

    def stop_watching(self):
        self.loop.remove_reader(self.sock.fileno())

    async def send(self, data, seconds):
        async with asyncio.timeout(seconds):
            await self.loop.sock_sendall(self.sock, data)

    async def linger(self):
        """Half-closes, then reads what the client still sends for a moment: closing a socket
        with unread bytes resets the connection, which can destroy the answer in flight."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            async with asyncio.timeout(_LINGER_SECONDS):
                while await self.loop.sock_recv(self.sock, _READ_BYTES):
                    pass
        except (OSError, TimeoutError):  # the client is gone, or the moment has passed
            pass


class RestServer:
    """The REST port of a ModelServer (`model_server`: its predict/metadata/status calls,
    `limits` and `budget`). Binds at construction (an OSError if it cannot); `start` serves
    from a thread; `stop` or `close` end it."""

    def __init__(self, address, model_server, num_threads=DEFAULT_NUM_THREADS,
                 timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
                 max_connections_per_client=DEFAULT_MAX_CONNECTIONS_PER_CLIENT):
        self.model_server = model_server
        self.num_threads, self.timeout_seconds = num_threads, timeout_seconds
        self.max_connections_per_client = max_connections_per_client
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.create_server(address, family=family, backlog=LISTEN_BACKLOG)
        self._listener.setblocking(False)
        self.server_address = self._listener.getsockname()
        self.closing = threading.Event()
        self._workers = concurrent.futures.ThreadPoolExecutor(
            num_threads, thread_name_prefix="rest-worker")
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_log_loop_error)
        self._thread = None
        self._acceptor = None
        self._tasks = set()
        self._per_client = collections.Counter()
        self._state = threading.Condition()
        self._running = 0  # requests being answered

    def start(self):
        self._thread = threading.Thread(target=self._serve, daemon=True, name="rest")
        self._thread.start()

    def _serve(self):
        asyncio.set_event_loop(self._loop)
        self._acceptor = self._loop.create_task(self._accept())
        self._loop.run_forever()

    async def _accept(self):
        slots = asyncio.Semaphore(MAX_CONNECTIONS)
        while True:
            await slots.acquire()
            try:
                sock, address = await self._loop.sock_accept(self._listener)
            except OSError as error:  # out of file descriptors, say: wait, then go on
                slots.release()
                logging.warning("REST port: accepting a connection failed: %s", error)
                await asyncio.sleep(0.1)
                continue
            sock.setblocking(False)
            task = self._loop.create_task(self._connection(_Connection(
                self._loop, sock, address[0])))
            self._tasks.add(task)

            def ended(done):
                self._tasks.discard(done)
                slots.release()

            task.add_done_callback(ended)

    async def _connection(self, connection):
        """Answers a connection's requests until it closes, errs or stays idle too long."""
        client = connection.client
        self._per_client[client] += 1
        try:
            if self._per_client[client] > self.max_connections_per_client:
                await self._refuse(connection, HttpError(
                    503, f"this client already has {self.max_connections_per_client} "
                         "connections open (--rest_api_max_connections_per_client)"))
                return
            while await self._next_request(connection):
                pass
        except (OSError, TimeoutError):  # the client went away, or stopped reading
            pass
        except Exception:  # a bug here must cost one connection, not the server
            logging.exception("REST connection from %s failed", client)
        finally:
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]
            connection.stop_watching()
            connection.sock.close()

    async def _next_request(self, connection):
        """Reads, answers, and says whether the connection may carry another request."""
        connection.received = len(connection.buffer)
        deadline = self._loop.time() + self.timeout_seconds
        try:
            request, held = await self._read_request(connection, deadline)
        except TimeoutError:
            if connection.received:
                await self._refuse(connection, HttpError(
                    408, f"the request did not arrive within {self.timeout_seconds:g} s "
                         f"({connection.received} bytes of it did: its request line, headers "
                         "and body must arrive within --rest_api_timeout_in_ms)"))
            return False
        except HttpError as error:
            await self._refuse(connection, error)
            return False
        if request is None:
            return False
        try:
            return await self._answer(connection, request)
        finally:
            self.model_server.budget.give_back(held)

    async def _answer(self, connection, request):
        with self._state:
            self._running += 1
        try:
            if self.closing.is_set():
                await self._refuse(connection, HttpError(503, "the server is stopping"))
                return False
            # REST clients send no deadline: a request ends when its client closes the
            # connection, and waits for room in the memory budget as long as it may take to
            # arrive.
            call = Call(cancelled=lambda: connection.eof, wait_seconds=self.timeout_seconds)
            connection.watch_for_close()
            try:
                status, result = await self._loop.run_in_executor(
                    self._workers, self._respond, request, call)
            finally:
                connection.stop_watching()
            close = request.close or self.closing.is_set()
            await connection.send(_response(status, result, close), self.timeout_seconds)
            return not close
        finally:
            with self._state:
                self._running -= 1
                self._state.notify_all()

    async def _refuse(self, connection, error):
        await connection.send(_response(error.status, {"error": error.message}, True),
                              self.timeout_seconds)
        await connection.linger()

    async def _read_request(self, connection, deadline):
        """(_Request, bytes held from the budget for its body), or (None, 0) when the client
        closed the connection between requests. TimeoutError when it has not arrived by
        `deadline` (loop time, moved on by the time its body waited for the budget);
        HttpError for what cannot be answered."""
        async with asyncio.timeout_at(deadline):
            head = await self._read_head(connection)
        if head is None:
            return None, 0
        method, path, headers, version = head
        kind = headers.get("Connection", "").lower()
        close = kind == "close" or (version < (1, 1) and kind != "keep-alive")
        length = self._body_length(headers)
        budget = self.model_server.budget
        try:
            budget.check_fits(length, "the request body")
        except ServingError as error:
            raise HttpError(413, error.message) from None
        waited = time.monotonic()
        while not budget.try_take(length):
            if time.monotonic() - waited > self.timeout_seconds:
                raise HttpError(429, budget.busy(length, self.timeout_seconds,
                                                 "the request body").message)
            await asyncio.sleep(0.05)
        waited = time.monotonic() - waited
        try:
            async with asyncio.timeout_at(deadline + waited):
                if headers.get("Expect", "").lower() == "100-continue" and version >= (1, 1):
                    await self._loop.sock_sendall(connection.sock,
                                                  b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await connection.read(length)
            if len(body) < length:
                raise HttpError(400, f"the body ended after {len(body)} of its {length} bytes "
                                     "(Content-Length)")
        except BaseException:
            budget.give_back(length)
            raise
        return _Request(method, path, headers, body, close), length

    async def _read_head(self, connection):
        """(method, path, headers, (major, minor) version) of the next request, read with
        http.server's limits and messages; None when the client closed the connection
        before it."""
        line = await connection.readline(_MAX_LINE)
        if line is None:
            raise HttpError(414, "Request-URI Too Long")
        words = line.decode("iso-8859-1").rstrip("\r\n").split()
        if not words:
            return None
        method, path, version = _parse_request_line(words)
        raw_headers = []
        while True:
            header = await connection.readline(_MAX_LINE)
            if header is None:
                raise HttpError(431, "Line too long")
            if header in (b"\r\n", b"\n", b""):
                break
            raw_headers.append(header)
            if len(raw_headers) > _MAX_HEADERS:
                raise HttpError(431, "Too many headers")
        headers = http.client.parse_headers(io.BytesIO(b"".join(raw_headers) + b"\r\n"))
        if method not in ("GET", "POST"):
            raise HttpError(501, f"Unsupported method ({quoted(method)})")
        return method, path, headers, version

    def _body_length(self, headers):
        """The Content-Length of a request, checked."""
        if "Transfer-Encoding" in headers:
            raise HttpError(411, "send the body with a Content-Length header; "
                                 "Transfer-Encoding (chunked bodies) is not supported")
        lengths = headers.get_all("Content-Length") or ["0"]
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()):
            raise HttpError(400, f"Content-Length must be one non-negative integer; got "
                                 f"{quoted(', '.join(lengths))}")
        length, limit = int(text), self.model_server.limits.max_message_bytes
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes exceeds the limit of "
                                 f"{limit} (--max_message_mb)")
        return length

    def _respond(self, request, call):
        """(HTTP status, JSON result) of a request; runs in a worker thread."""
        try:
            return 200, self._result(request, call)
        except ServingError as error:
            return (error.http_status or HTTP_STATUS.get(error.code, 500),
                    {"error": error.message})
        except Exception as error:  # a bug here must not cost the client its answer
            logging.exception("REST %s %s failed", request.method, request.path[:200])
            return 500, {"error": f"internal error: {type(error).__name__}: {error}"}

    def _result(self, request, call):
        match = _PATH.match(request.path.split("?")[0])
        verb = match.group(3) if match else None
        if not match or (request.method == "POST") != (verb == ":predict"):
            raise not_found(f"{request.method} {quoted(request.path)} is not a TF Serving "
                            "REST endpoint")
        spec = predict_pb2.PredictRequest().model_spec
        spec.name = match.group(1)
        if match.group(2):
            version = int(match.group(2))
            if version > MAX_VERSION:
                raise invalid(f"version {match.group(2)[:40]} is out of range (at most "
                              f"{MAX_VERSION})")
            spec.version.value = version
        model_server = self.model_server
        if verb == "/metadata":
            response = model_server.get_model_metadata(
                get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"]))
            signatures = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signatures)
            return {"model_spec": _proto_json(response.model_spec),
                    "metadata": {"signature_def": _proto_json(signatures)}}
        if verb == ":predict":
            call.check("it started")
            return _rest_predict(model_server.servable(spec), request.body, call)
        return _status_json(model_server.get_model_status(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec)))

    def stop(self, deadline):
        """Stops accepting, answers 503 to requests that start from now on, waits until
        time.monotonic() reaches `deadline` for the running ones to finish, then closes every
        connection."""
        self.closing.set()
        if self._thread is None:
            self.close()
            return
        self._loop.call_soon_threadsafe(self._stop_accepting)
        with self._state:
            self._state.wait_for(lambda: self._running == 0,
                                 timeout=max(0.0, deadline - time.monotonic()))
        self._loop.call_soon_threadsafe(self._shut_down)
        self._thread.join(max(0.0, deadline - time.monotonic()) + _LINGER_SECONDS)
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _stop_accepting(self):
        """Cancels the accept loop, then (once the cancellation has unregistered the
        listener from the event loop) closes the port."""
        if self._acceptor is not None:
            self._acceptor.cancel()
        self._loop.call_soon(self._listener.close)

    def _shut_down(self):
        for task in list(self._tasks):
            task.cancel()
        self._loop.call_soon(self._loop.stop)

    def close(self):
        """Frees the port of a server that never started."""
        self._listener.close()
        self._workers.shutdown(wait=False)
        self._loop.close()


def _log_loop_error(loop, context):
    logging.error("REST event loop: %s", context.get("message"),
                  exc_info=context.get("exception"))


def _parse_request_line(words):
    """(method, path, (major, minor)) of a request line's words, as http.server reads them."""
    if len(words) == 3:
        version_text = words[2]
        try:
            if not version_text.startswith("HTTP/"):
                raise ValueError
            major, minor = version_text[5:].split(".")
            if not (major.isdigit() and minor.isdigit()) or len(major) > 10 or len(minor) > 10:
                raise ValueError
            version = (int(major), int(minor))
        except ValueError:
            raise HttpError(400, f"Bad request version ({quoted(version_text)})") from None
        if version >= (2, 0):
            raise HttpError(505, f"Invalid HTTP version ({version_text[:40]})")
    else:
        raise HttpError(400, f"Bad request syntax ({quoted(' '.join(words))})")
    method, path = words[:2]
    if path.startswith("//"):  # as http.server: not a scheme-relative URL
        path = "/" + path.lstrip("/")
    return method, path, version


def _response(status, result, close):
    """The bytes of an HTTP/1.1 answer with a JSON body."""
    data = json.dumps(result).encode()
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = _REASONS.get(status, "")
    head = [f"HTTP/1.1 {status} {reason}", "Server: tfattncut-serving",
            f"Date: {email.utils.formatdate(usegmt=True)}", "Content-Type: application/json",
            f"Content-Length: {len(data)}"] + (["Connection: close"] if close else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data


_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")


def json_cost(body):
    """The bytes Python takes to parse a JSON body (an upper estimate from its tokens; at
    least the body's own size, which its strings take again)."""
    return len(body) + sum(per_token * body.count(token)
                           for token, per_token in _JSON_BYTES.items()) + _JSON_BYTES[b","]


def _proto_json(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _status_json(response):
    """GetModelStatusResponse as TF Serving's REST API prints it (defaults included)."""
    return {"model_version_status": [
        {"version": str(status.version), "state": _STATE.Name(status.state),
         "status": {"error_code": _ERROR_CODE.values_by_number[status.status.error_code].name,
                    "error_message": status.status.error_message}}
        for status in response.model_version_status]}


def _rest_predict(servable, body, call):
    """The JSON predict request body -> the JSON response dict (TF Serving's formats). What
    parsing the body and encoding the answer take (`json_cost`) is refused over the message
    limit, before the parse, and otherwise admitted from the budget."""
    if _TOO_DEEP in body:
        raise invalid(f"the JSON body nests deeper than this server reads ({len(_TOO_DEEP)} "
                      "arrays in a row)")
    cost, limit = json_cost(body), servable.limits.max_message_bytes
    if cost > limit:
        raise exhausted(f"the JSON body would take about {mib(cost)} to parse, more than the "
                        f"limit of {mib(limit)} (--max_message_mb; each number takes about "
                        f"{_JSON_BYTES[b',']} bytes parsed): send images encoded, "
                        '{"b64": ...} to translate_encoded')
    with servable.budget.admit(cost, call, "parsing the JSON body"):
        signature_name, arrays, columnar = _parse_predict(servable, body)
    outputs = run_arrays(servable, signature_name, arrays, call)
    call.check("its answer was encoded")
    with servable.budget.admit(cost, call, "encoding the JSON answer"):
        encoded = {name: _array_to_json(name, value) for name, value in outputs.items()}
    if columnar:
        return {"outputs": encoded if len(encoded) > 1 else next(iter(encoded.values()))}
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    return {"predictions": [dict(zip(encoded, row)) for row in zip(*encoded.values())]}


def _parse_predict(servable, body):
    """(signature name, {input: ndarray}, whether columnar) of a JSON predict body."""
    try:
        request = json.loads(body)
    except RecursionError:
        raise invalid("the JSON body nests deeper than this server reads") from None
    except ValueError as error:
        raise invalid(f"request body is not JSON: {str(error)[:200]}") from None
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
    unexpected = set(columns) - set(names)
    if unexpected:
        raise invalid(f"signature {quoted(signature_name)} takes inputs {quoted_list(names)}; "
                      f"the request has unexpected {quoted_list(unexpected)}")
    return signature_name, {name: _json_to_array(name, value, signature_def.inputs[name])
                            for name, value in columns.items()}, "inputs" in request


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
            raise invalid(f"input {quoted(name)} is {dtype.name}: send integers only (the request "
                          f"holds {parsed.dtype.name} values)")
        if parsed.size and (parsed.min() < dtype.min or parsed.max() > dtype.max):
            raise invalid(f"input {quoted(name)} is {dtype.name}: values must lie in "
                          f"[{dtype.min}, {dtype.max}]; got [{parsed.min()}, {parsed.max()}]")
        return parsed.astype(dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as error:
        raise invalid(f"input {quoted(name)} cannot be read as {dtype.name}: "
                      f"{str(error)[:200]}") from None


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
