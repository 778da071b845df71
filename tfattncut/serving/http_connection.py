"""HTTP/1.1 on the wire for the REST port: a client's socket read through a buffer, the
request line and headers read with http.server's limits and messages (414, 431, 400, 505,
501), strict framing (Content-Length one non-negative integer within the message limit;
Transfer-Encoding, chunked bodies, is 411), a graceful close after a refusal, and an answer's
bytes (every answer, errors included, a JSON body as TF Serving's are). What the requests
mean is `rest_api`'s; when and for whom they are read is `rest`'s.
"""
import asyncio
import collections
import email.utils
import http
import http.client
import io
import json
import socket

from tfattncut.serving.validation import quoted

_REASONS = {499: "Client Closed Request"}
_MAX_LINE = 65536  # http.server's and http.client's limits
_MAX_HEADERS = 100
_READ_BYTES = 1 << 16
LINGER_SECONDS = 1.0


class HttpError(Exception):
    """An answer decided by HTTP framing, before any model is involved; the connection is
    closed after it, since the rest of the request cannot be trusted."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class Request(collections.namedtuple("Request", "method path headers body close")):
    """A request as read off the wire: `close` when the connection ends after its answer."""


class Connection:
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

    async def read(self, size, deadline, reserve):
        """`size` bytes, fewer if the stream ends first; TimeoutError if they have not arrived
        by `deadline` (loop time). Each piece is passed to `await reserve(bytes)` as it
        arrives, before more is read: what holds memory for them, or refuses it."""
        reserved = 0
        while True:
            arrived = min(len(self.buffer), size)
            if arrived > reserved:
                await reserve(arrived - reserved)
                reserved = arrived
            if arrived == size or self.eof:
                break
            async with asyncio.timeout_at(deadline):
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
            async with asyncio.timeout(LINGER_SECONDS):
                while await self.loop.sock_recv(self.sock, _READ_BYTES):
                    pass
        except (OSError, TimeoutError):  # the client is gone, or the moment has passed
            pass


async def read_head(connection):
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


def body_length(headers, limit):
    """The Content-Length of a request, checked against `limit` bytes (--max_message_mb)."""
    if "Transfer-Encoding" in headers:
        raise HttpError(411, "send the body with a Content-Length header; "
                             "Transfer-Encoding (chunked bodies) is not supported")
    lengths = headers.get_all("Content-Length") or ["0"]
    text = lengths[0].strip()
    if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()):
        raise HttpError(400, f"Content-Length must be one non-negative integer; got "
                             f"{quoted(', '.join(lengths))}")
    length = int(text)
    if length > limit:
        raise HttpError(413, f"request body of {length} bytes exceeds the limit of "
                             f"{limit} (--max_message_mb)")
    return length


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


def json_body(result):
    """The bytes of a JSON answer's body; `rest_api` makes them in a worker thread, never on
    the event loop, where a large answer would stall every connection."""
    return json.dumps(result).encode()


def response(status, data, close):
    """The bytes of an HTTP/1.1 answer with a JSON body of bytes `data` (`json_body`)."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = _REASONS.get(status, "")
    head = [f"HTTP/1.1 {status} {reason}", "Server: tfattncut-serving",
            f"Date: {email.utils.formatdate(usegmt=True)}", "Content-Type: application/json",
            f"Content-Length: {len(data)}"] + (["Connection: close"] if close else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data
