"""The budget of one request: a deadline for the answer, a minimum pace for the body.

requests and urllib3 know only per-operation timeouts: ``read_timeout`` bounds the wait
for each ``recv``, so a source that sends its headers or its body a byte a second keeps
a request (and ``eboard sync --once``, or a daemon job) running for hours. Here every
socket operation of a request is given the time its budget has left:

- the answer (connect, TLS, sending the request, the status line and headers) must
  come within ``answer_s`` of the request's start, retries and their waits included;
- a body read by the caller as it comes (``stream=True``: the manifest, media, a CAP
  feed, any size the caller bounds itself) must come at ``min_rate`` bytes a second
  or more over each ``window_s`` of waiting for it: a 50 MB video on a slow 3G link is
  legitimate, a drip is not. Only time spent waiting in ``recv`` counts, so a caller
  that reads slowly (the bandwidth limit, the disk) is never taken for a slow source;
- a small answer read whole by requests (heartbeat, plays, events, screenshot) must
  also be complete within ``total_s`` of the start.

A request over its budget ends as :class:`BudgetSpent` (a ``socket.timeout``, so that
urllib3 and http.client close the connection as after any time-out); its message says
which limit and by how much, and :func:`spent_in` finds it under urllib3's and
requests' wrappers. The budget is per thread: it belongs to the thread's latest
request, which is the one whose response the thread reads.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

SEND_BLOCK = 64 * 1024


class Phase(Enum):
    ANSWER = "answer"  # connecting, sending, waiting for the status line and headers
    BODY = "body"      # the headers are in: reading the body


class BudgetSpent(socket.timeout):
    """A request went over its budget; the message says which limit."""


@dataclass(frozen=True)
class Budget:
    """What one request may take (seconds; bytes per second)."""

    answer_s: float
    window_s: float
    min_rate: float
    total_s: float | None = None  # for answers read whole; None: paced only


@dataclass
class Exchange:
    """One request under way against its :class:`Budget` (monotonic clock)."""

    budget: Budget
    start: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.ANSWER
    window_waited: float = 0.0
    window_bytes: int = 0
    idempotent: bool = False  # may be sent again after it may have reached the server
    cap: float | None = None  # an absolute end set by the job that made the request
    cap_reason: str = ""

    def time_left(self) -> float:
        """Seconds the current phase may still take (raises BudgetSpent when none)."""
        now = time.monotonic()
        ends = []
        if self.phase is Phase.ANSWER:
            ends.append((self.start + self.budget.answer_s,
                         f"no answer within {self.budget.answer_s:.0f} s (connect, send, "
                         "status line and headers)"))
        if self.budget.total_s is not None:
            ends.append((self.start + self.budget.total_s,
                         f"the answer took longer than its {self.budget.total_s:.0f} s "
                         "budget"))
        if self.cap is not None:
            ends.append((self.cap, self.cap_reason or "the job's time is up"))
        left, reason = min(ends, default=(float("inf"), ""))
        if left - now <= 0:
            raise BudgetSpent(reason)
        return left - now

    def wait_allowed(self, nominal: float | None) -> tuple[float | None, bool]:
        """The timeout for the next wait, and whether it is shorter than ``nominal``."""
        limit = self.time_left()
        if self.phase is Phase.BODY:
            window_left = self.budget.window_s - self.window_waited
            if window_left <= 0:
                need = self.budget.min_rate * self.budget.window_s
                if self.window_bytes < need:
                    raise BudgetSpent(
                        f"transfer stalled: {self.window_bytes} bytes in "
                        f"{self.window_waited:.0f} s of waiting, below the minimum of "
                        f"{self.budget.min_rate:.0f} bytes/s")
                self.window_waited, self.window_bytes = 0.0, 0
                window_left = self.budget.window_s
            limit = min(limit, window_left)
        if nominal is None or limit < nominal:
            return limit, True
        return nominal, False

    def waited(self, seconds: float, nbytes: int) -> None:
        if self.phase is Phase.BODY:
            self.window_waited += seconds
            self.window_bytes += nbytes

    def answered(self) -> None:
        self.phase = Phase.BODY
        self.window_waited, self.window_bytes = 0.0, 0

    def sending(self) -> None:
        """A new attempt (a retry or a redirect): the answer phase again, same start."""
        self.phase = Phase.ANSWER


_local = threading.local()


def begin(exchange: Exchange | None) -> None:
    """Make ``exchange`` this thread's current request (None: no budget)."""
    _local.exchange = exchange


def current() -> Exchange | None:
    return getattr(_local, "exchange", None)


def job_cap() -> tuple[float, str] | None:
    return getattr(_local, "job_cap", None)


class job_bound:  # noqa: N801 (used as a context manager, like contextlib's)
    """``with job_bound(seconds, name):`` every request of the block ends by then."""

    def __init__(self, seconds: float, name: str) -> None:
        self.seconds, self.name = seconds, name

    def __enter__(self) -> None:
        self._before = job_cap()
        _local.job_cap = (time.monotonic() + self.seconds,
                          f"the {self.name} job's bound of {self.seconds:.0f} s is spent")

    def __exit__(self, *exc: object) -> None:
        _local.job_cap = self._before


def spent_in(e: BaseException | None) -> BudgetSpent | None:
    """The BudgetSpent under ``e`` (urllib3 and requests wrap it), if any."""
    seen = 0
    while e is not None and seen < 20:
        if isinstance(e, BudgetSpent):
            return e
        for arg in getattr(e, "args", ()):
            if isinstance(arg, BudgetSpent):
                return arg
            inner = getattr(arg, "reason", None)
            if isinstance(inner, BudgetSpent):
                return inner
        e = e.__cause__ or e.__context__
        seen += 1
    return None


class PacedSocket:
    """A connected socket whose every wait is cut to the current request's budget."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._nominal = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._nominal = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._nominal

    def _wait(self, op: Any, paced: bool, *args: Any) -> Any:
        """``op(*args)`` within the budget; ``paced``: it waits for the source's bytes."""
        while True:
            ex = current()
            if ex is None:
                self._sock.settimeout(self._nominal)
                return op(*args)
            timeout, ours = ex.wait_allowed(self._nominal)
            self._sock.settimeout(timeout)
            t0 = time.monotonic()
            try:
                got = op(*args)
            except TimeoutError:
                if paced:
                    ex.waited(time.monotonic() - t0, 0)
                if ours:
                    continue  # the budget's own cut: wait_allowed says what next
                raise
            if paced:
                ex.waited(time.monotonic() - t0, got if isinstance(got, int) else len(got))
            return got

    def recv_into(self, *args: Any) -> int:
        return int(self._wait(self._sock.recv_into, True, *args))

    def recv(self, *args: Any) -> bytes:
        return bytes(self._wait(self._sock.recv, True, *args))

    def send(self, *args: Any) -> int:
        return int(self._wait(self._sock.send, False, *args))

    def sendall(self, data: Any, *flags: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            n = self.send(view[:SEND_BLOCK], *flags)
            view = view[n:]

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        # As socket.makefile does, but reading through this object; the real socket
        # counts the file, so that closing the connection leaves the response readable.
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(raw, buffering if buffering and buffering > 0
                                 else io.DEFAULT_BUFFER_SIZE)


class _Paced:
    """Mixed into urllib3's connections: connect within the budget, pace the socket."""

    sock: Any
    timeout: Any

    def connect(self) -> None:
        ex = current()
        if ex is not None:
            ex.sending()  # a retry may connect again after reading a 5xx body
            left = ex.time_left()
            if self.timeout is None or self.timeout > left:
                self.timeout = left  # TCP connect and TLS handshake each within it
        super().connect()  # type: ignore[misc]
        if isinstance(self.sock, socket.socket):
            self.sock = PacedSocket(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        ex = current()
        if ex is not None:
            ex.sending()
            ex.time_left()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        ex = current()
        if ex is not None:
            ex.answered()
        return response


class PacedHTTPConnection(_Paced, HTTPConnection):
    pass


class PacedHTTPSConnection(_Paced, HTTPSConnection):
    pass


class PacedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = PacedHTTPConnection


class PacedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = PacedHTTPSConnection


POOL_CLASSES = {"http": PacedHTTPConnectionPool, "https": PacedHTTPSConnectionPool}
