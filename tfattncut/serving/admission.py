"""When a request may start and when it must stop: the memory budget that requests in flight
share (admission control by cost), and each call's deadline and cancellation.

A request's cost is estimated from its pixels before anything is decoded or run
(`Servable.cost`: the decoded tensors and the model's activations, measured per pixel when a
version loads). It is admitted once the requests in flight leave room for it in the budget;
until then it waits, within its deadline. One that would not fit in the whole budget is
refused at once. A call whose client has gone (cancelled, or past its deadline) is not
started, and is dropped between stages (admission, decoding, batching, running, encoding).
"""
import contextlib
import threading
import time

import grpc

from tfattncut.serving import memory
from tfattncut.serving.validation import ServingError

# How often a waiting request looks whether its client is still there.
POLL_SECONDS = 0.1
# How long a call without a deadline waits for room in the budget.
DEFAULT_WAIT_SECONDS = 60.0
# A request at least this costly hands its freed memory back to the system when it ends.
RETURN_MEMORY_BYTES = 64 << 20
BUDGET_FLAG = "--max_inflight_memory_mb"


def mib(size):
    """Bytes as MiB for a message: "1,536.0 MiB"."""
    return f"{size / (1 << 20):,.1f} MiB"


class Call:
    """One client call: its deadline (time.monotonic(); None: none), `cancelled()`, whether
    the client has gone (a cancelled RPC, a closed connection), and how long it may wait for
    room in the budget without a deadline."""

    def __init__(self, deadline=None, cancelled=lambda: False,
                 wait_seconds=DEFAULT_WAIT_SECONDS):
        self.deadline, self.cancelled, self.wait_seconds = deadline, cancelled, wait_seconds

    @classmethod
    def within(cls, seconds, cancelled=lambda: False):
        return cls(None if seconds is None else time.monotonic() + seconds, cancelled)

    def remaining(self):
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self, stage):
        """Raises CANCELLED or DEADLINE_EXCEEDED, naming `stage`, once the client has gone."""
        if self.cancelled():
            raise ServingError(grpc.StatusCode.CANCELLED,
                               f"the client cancelled the request before {stage}")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"the request's deadline passed before {stage}")

    def wait(self, future, stage):
        """future.result(), given up (CANCELLED / DEADLINE_EXCEEDED) once the client has
        gone."""
        while True:
            self.check(stage)
            remaining = self.remaining()
            try:
                return future.result(timeout=POLL_SECONDS if remaining is None
                                     else max(0.0, min(POLL_SECONDS, remaining)))
            except TimeoutError:
                continue


NO_DEADLINE = Call()


class MemoryBudget:
    """The bytes that requests in flight may hold together (`BUDGET_FLAG`)."""

    def __init__(self, total_bytes):
        if total_bytes < 1:
            raise ValueError(f"{BUDGET_FLAG} must be positive; got {total_bytes} bytes")
        self.total_bytes = total_bytes
        self._in_use = 0
        self._exclusive = 0  # measurements waiting or running: no admission meanwhile
        self._state = threading.Condition(threading.RLock())  # admit holds it in try_take

    @property
    def in_use(self):
        with self._state:
            return self._in_use

    def check_fits(self, cost, what="the request"):
        """RESOURCE_EXHAUSTED (413 over REST) if `cost` exceeds the whole budget."""
        if cost > self.total_bytes:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{what} needs about {mib(cost)} of memory, more than the whole in-flight "
                f"budget of {mib(self.total_bytes)} ({BUDGET_FLAG}); send fewer or smaller "
                "images", http_status=413)

    def try_take(self, cost):
        """Takes `cost` bytes if they are free now (True), else False; `give_back` returns
        them."""
        with self._state:
            if self._exclusive or self._in_use + cost > self.total_bytes:
                return False
            self._in_use += cost
            return True

    def give_back(self, cost):
        with self._state:
            self._in_use -= cost
            self._state.notify_all()
        if cost >= RETURN_MEMORY_BYTES:
            memory.return_freed_memory()

    def busy(self, cost, waited, what="the request"):
        """The RESOURCE_EXHAUSTED (429 over REST) of a request that found no room in time."""
        return ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{what} needs about {mib(cost)} of memory and waited {waited:.1f} s for it: "
            f"requests in flight hold {mib(self.in_use)} of the {mib(self.total_bytes)} "
            f"budget ({BUDGET_FLAG}); retry later", http_status=429)

    @contextlib.contextmanager
    def admit(self, cost, call=NO_DEADLINE, what="the request"):
        """Holds `cost` bytes of the budget for the body of the `with`. Waits for room within
        the call's deadline (its wait_seconds without one); RESOURCE_EXHAUSTED naming the
        limit when there is none by then, or at once if the whole budget is too small."""
        self.check_fits(cost, what)
        started = time.monotonic()
        give_up = call.deadline if call.deadline is not None else started + call.wait_seconds
        with self._state:
            while not self.try_take(cost):
                if call.cancelled():  # a passed deadline is answered below, naming the limit
                    call.check("it was admitted")
                left = give_up - time.monotonic()
                if left <= 0:
                    raise self.busy(cost, time.monotonic() - started, what)
                self._state.wait(min(POLL_SECONDS, left))
        try:
            yield
        finally:
            self.give_back(cost)

    @contextlib.contextmanager
    def exclusive(self):
        """Holds the whole budget for the body of the `with`, once the requests in flight have
        ended; none is admitted meanwhile (so that a measurement sees only its own memory)."""
        with self._state:
            self._exclusive += 1
            self._state.wait_for(lambda: self._in_use == 0)
        try:
            yield
        finally:
            with self._state:
                self._exclusive -= 1
                self._state.notify_all()
