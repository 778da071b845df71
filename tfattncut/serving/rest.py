"""The REST port of the embedded server: who is read when, for how long, and with what
memory. What it speaks is TF Serving's REST API (`rest_api`: routes and JSON) over HTTP/1.1
(`http_connection`: a socket's reads, the request's framing and limits, an answer's bytes).

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
  - the request line and headers read with `http_connection`'s limits, and a body's bytes
    taken from the in-flight memory budget as they arrive, before more are read (a client
    that announces a large body and sends little holds little; `rest_api` then refuses a
    JSON body whose parse would take more than the message limit, before it is parsed);
  - a client that closes its connection cancels its request (REST clients send no deadline),
    and a request waits for room in the memory budget until its deadline (then 429);
  - the answer's JSON is encoded by the worker, within the request's share of the budget,
    never on the event loop;
  - after a refusal the connection is closed gracefully (what the client still sends is read
    for a moment), so the client reads the answer instead of a connection reset.
A server library (waitress, cheroot, uvicorn) would bring a similar event loop, but it
answers what it rejects while parsing with its own text/plain pages, and it cannot let
running requests finish on SIGTERM while refusing new ones; both are what a TF Serving client
relies on.
"""
import asyncio
import collections
import concurrent.futures
import os
import resource
import socket
import threading
import time

from absl import logging

from tfattncut.serving import rest_api
from tfattncut.serving.admission import POLL_SECONDS, Call
from tfattncut.serving.http_connection import (LINGER_SECONDS, Connection, HttpError, Request,
                                               body_length, json_body, read_head, response)
from tfattncut.serving.validation import ServingError

# As large as Linux allows by default (net.core.somaxconn caps it): a burst of clients that
# connect at once waits here instead of being reset.
LISTEN_BACKLOG = 4096
DEFAULT_NUM_THREADS = max(16, 4 * (os.cpu_count() or 1))
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256
# Every connection holds a file descriptor; half of the process's stay for models and gRPC.
MAX_CONNECTIONS = max(64, min(16384, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2))


class RestServer:
    """The REST port of a ModelServer (`model_server`: its predict/metadata/status calls,
    `limits` and `budget`). Binds at construction (an OSError if it cannot); `start` serves
    from a thread; `stop` or `close` end it."""

    def __init__(self, address, model_server, num_threads=DEFAULT_NUM_THREADS,
                 timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
                 max_connections_per_client=DEFAULT_MAX_CONNECTIONS_PER_CLIENT):
        self.model_server = model_server
        self.timeout_seconds = timeout_seconds
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
        try:
            self._loop.run_forever()
        finally:  # its selector and wake-up sockets
            self._loop.close()

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
            task = self._loop.create_task(self._connection(Connection(
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
                status, body = await self._loop.run_in_executor(
                    self._workers, rest_api.respond, self.model_server, request, call)
            finally:
                connection.stop_watching()
            close = request.close or self.closing.is_set()
            await connection.send(response(status, body, close), self.timeout_seconds)
            return not close
        finally:
            with self._state:
                self._running -= 1
                self._state.notify_all()

    async def _refuse(self, connection, error):
        await connection.send(response(error.status, json_body({"error": error.message}), True),
                              self.timeout_seconds)
        await connection.linger()

    async def _read_request(self, connection, deadline):
        """(Request, bytes held from the budget for its body), or (None, 0) when the client
        closed the connection between requests. TimeoutError when it has not arrived by
        `deadline` (loop time); HttpError for what cannot be answered (429 when the budget
        has no room for its body by then)."""
        async with asyncio.timeout_at(deadline):
            head = await read_head(connection)
        if head is None:
            return None, 0
        method, path, headers, version = head
        kind = headers.get("Connection", "").lower()
        close = kind == "close" or (version < (1, 1) and kind != "keep-alive")
        length = body_length(headers, self.model_server.limits.max_message_bytes)
        budget = self.model_server.budget
        try:
            budget.check_fits(length, "the request body")
        except ServingError as error:
            raise HttpError(413, error.message) from None
        held = 0

        async def reserve(size):
            """Takes the body's bytes from the budget as they arrive, so that a client that
            announces a large body and sends little holds little; 429 without room by the
            deadline. Polls (MemoryBudget.admit waits on the budget's condition instead, which
            would block this event loop and every connection on it)."""
            nonlocal held
            started = self._loop.time()
            while not budget.try_take(size):
                if self._loop.time() >= deadline:
                    raise HttpError(429, budget.busy(
                        length, self._loop.time() - started, "the request body").message)
                await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - self._loop.time())))
            held += size

        try:
            if headers.get("Expect", "").lower() == "100-continue" and version >= (1, 1):
                async with asyncio.timeout_at(deadline):
                    await self._loop.sock_sendall(connection.sock,
                                                  b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await connection.read(length, deadline, reserve)
            if len(body) < length:
                raise HttpError(400, f"the body ended after {len(body)} of its {length} bytes "
                                     "(Content-Length)")
        except BaseException:
            budget.give_back(held)
            raise
        return Request(method, path, headers, body, close), held

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
        self._thread.join(max(0.0, deadline - time.monotonic()) + LINGER_SECONDS)
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
