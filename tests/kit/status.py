"""Helpers for the status tests (docs/STATUS.md): a box config, the real reference server, plays."""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from waitress.server import create_server

from content_sync.db import store
from content_sync.server import create_app
from content_sync.server.db import ServerDB
from content_sync.server.tokens import Tokens
from kiosk_config import Config, load_config

BOARD = "test.status-01"
BOARD_TOKEN = "board-secret-token"
OPERATOR_TOKEN = "operator-secret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp: Path, url: str, **status: Any) -> tuple[Config, Path]:
    """A box config file pointing at ``url``; returns the loaded config and its path."""
    tmp.mkdir(parents=True, exist_ok=True)
    token = tmp / "board.token"
    token.write_text(BOARD_TOKEN + "\n")
    token.chmod(0o600)
    lines = [f"[board]\nid = \"{BOARD}\"\nname = \"Bảng tin xã thử\"\n",
             f"[source]\nurl = \"{url}\"\ntoken_file = \"{token}\"\nconnect_timeout = 2\n"
             "read_timeout = 10\n",
             f"[cache]\ndir = \"{tmp / 'cache'}\"\n",
             "[status]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in status.items())]
    path = tmp / "eboard.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return load_config(path), path


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


@dataclass
class RunningServer:
    url: str
    data: Path
    port: int
    db: ServerDB
    stop: Callable[[], None]


def _what_fds_are(fds: list[int]) -> str:
    """What each descriptor number refers to now (evidence for who closed it)."""
    out = []
    for fd in fds:
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            out.append(f"{fd} -> closed")
    return ", ".join(out) or "none"


class _WaitressSaid(logging.Handler):
    """The latest warnings and errors of waitress (e.g. "uncaptured python exception,
    closing channel <...TcpWSGIServer listening ...>", which closes the wake-up pipe too),
    for the warning below: evidence of who closed the pipe."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: collections.deque[str] = collections.deque(maxlen=10)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.created:.3f} {record.getMessage()[:300]}")


_WAITRESS_SAID = _WaitressSaid()
logging.getLogger("waitress").addHandler(_WAITRESS_SAID)


def stop_waitress(srv: Any, app: Any, loop: threading.Thread | None = None) -> None:
    """Stop an in-process waitress server without leaving a thread that uses its closed
    file descriptors.

    Waitress's worker threads wake the I/O loop by writing ``b"x"`` to a pipe. If the
    server is closed while a worker still runs (a long-poll being answered), that write
    goes to the pipe's old file-descriptor number, which this process may have reused
    meanwhile: it once overwrote the header of a box's SQLite WAL file in a test.
    So: end the long-polls and join the workers first. Then the I/O loop itself closes
    every socket it watches, and the pipe last, from its own thread (a thunk run by the
    trigger): its map is then empty and ``asyncore.loop`` returns, instead of going on
    selecting on numbers that were closed under it (EBADF, or a reused number).
    """
    app.extensions["eboard"]["hub"].stop()
    srv.task_dispatcher.shutdown(cancel_pending=True, timeout=10)
    closed = threading.Event()

    def close_everything() -> None:  # runs in the I/O loop's thread
        for dispatcher in list(srv._map.values()):
            if dispatcher is not srv.trigger:
                dispatcher.close()  # the listening one closes the trigger too
        srv.trigger.close()
        closed.set()

    if loop is not None and loop.is_alive():
        try:
            srv.trigger.pull_trigger(close_everything)
        except OSError as e:  # the pipe is closed already (seen once in CI; cause unknown)
            trig = srv.trigger
            warnings.warn(f"the test server's wake-up pipe was closed before stop ({e}); "
                          f"trigger marked closed: {trig._closed} (it closes itself when its write "
                          f"end goes); its write end now: "
                          f"{_what_fds_are([trig.trigger])}; waitress said lately: "
                          f"{list(_WAITRESS_SAID.lines) or 'nothing'}; closing its sockets "
                          "from the test thread", stacklevel=2)
            close_everything()
        closed.wait(10)
        loop.join(10)
    srv.close()  # idempotent after the above; the whole job when there is no loop thread


@contextmanager
def reference_server(data: Path, port: int = 0,
                     middleware: Callable[[Any], Any] | None = None) -> Iterator[RunningServer]:
    """The real reference server (Flask app under waitress) on 127.0.0.1."""
    data.mkdir(parents=True, exist_ok=True)
    tokens = Tokens(operator=OPERATOR_TOKEN, boards={BOARD: BOARD_TOKEN})
    app = create_app(data, tokens, long_poll_max=5)
    wsgi = middleware(app) if middleware else app
    deadline = time.monotonic() + 5
    while True:  # a server just stopped on this port lets go of it when its poll returns
        try:
            srv = create_server(wsgi, host="127.0.0.1", port=port, threads=8)
            break
        except OSError:
            if not port or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    thread = threading.Thread(target=srv.run, name="waitress-loop", daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            getattr(wsgi, "release", lambda: None)()  # a held-back answer goes now
            stop_waitress(srv, app, thread)

    try:
        yield RunningServer(f"http://127.0.0.1:{srv.effective_port}/", data,
                            int(srv.effective_port), app.extensions["eboard"]["db"], stop)
    finally:
        stop()


def slow_after(path_suffix: str, seconds: float) -> Callable[[Any], Any]:
    """WSGI middleware: the response to ``path_suffix`` is held back ``seconds`` after the
    app has done its work (stored), as a slow link or a busy server would. Stopping the
    server (``reference_server``) ends the wait, so no worker outlives its server."""
    def wrap(app: Any) -> Any:
        released = threading.Event()

        def slowed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            body = list(app(environ, start_response))
            if environ.get("PATH_INFO", "").endswith(path_suffix):
                released.wait(seconds)
            return body
        slowed.release = released.set  # type: ignore[attr-defined]
        return slowed
    return wrap


def make_play(item: str, playlist: str, started: datetime, seconds: float,
              outcome: str = "played") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "item_id": item, "playlist_id": playlist,
            "manifest_version": 1, "started_at": started.isoformat(timespec="milliseconds"),
            "ended_at": (started + timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
            "duration_s": seconds, "outcome": outcome, "detail": ""}


def add_plays(db_path: Path, n: int, start: datetime | None = None,
              items: tuple[str, ...] = ("anh-1", "tb-1", "clip-1")) -> list[str]:
    """Write ``n`` proof-of-play records with ``store.add_play`` (one transaction, for speed)."""
    start = start or datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    conn = store.connect(db_path)
    ids = []
    try:
        with store.transaction(conn):
            for i in range(n):
                rec = make_play(items[i % len(items)], "thong-bao",
                                start + timedelta(seconds=20 * i), 10.0 + (i % 3))
                store.add_play(conn, rec)
                ids.append(rec["id"])
    finally:
        conn.close()
    return ids


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
