"""Helpers for the status tests (docs/STATUS.md): a box config, the real reference server
(uvicorn in a thread), plays."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from content_sync.db import store
from content_sync.server import Store, Tokens, create_app, listening_socket, make_server
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
    db: Store
    stop: Callable[[], None]


class ServedApp:
    """An ASGI app served by the server's own uvicorn setup in a thread on 127.0.0.1."""

    def __init__(self, app: Any, port: int = 0, **server: Any) -> None:
        self.app = app
        deadline = time.monotonic() + 5
        while True:  # a server just stopped on this port lets go of it at once, or soon
            try:
                self.sock = listening_socket("127.0.0.1", port)
                break
            except OSError:
                if not port or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = make_server(app, **server)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="uvicorn-loop", daemon=True)

    def start(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start (its lifespan failed: see "
                                   "the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(15)
        self.sock.close()


@contextmanager
def serve_app(app: Any, port: int = 0, **server: Any) -> Iterator[ServedApp]:
    """Serve ``app`` (``server``: make_server's options, e.g. header_timeout_s)."""
    served = ServedApp(app, port, **server).start()
    try:
        yield served
    finally:
        served.stop()


@contextmanager
def reference_server(data: Path, port: int = 0,
                     middleware: Callable[[Any], Any] | None = None,
                     store: str | None = None) -> Iterator[RunningServer]:
    """The real reference server (the ASGI app under uvicorn) on 127.0.0.1."""
    data.mkdir(parents=True, exist_ok=True)
    tokens = Tokens(operator=OPERATOR_TOKEN, boards={BOARD: BOARD_TOKEN})
    app = create_app(data, tokens, long_poll_max=5, store=store)
    asgi = middleware(app) if middleware else app
    served = ServedApp(asgi, port).start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            getattr(asgi, "release", lambda: None)()  # a held-back answer goes now
            served.stop()

    db = Store(store or data / ".server" / "server.db")
    try:
        yield RunningServer(served.url, data, served.port, db, stop)
    finally:
        stop()
        db.close()


class Middleware:
    """An ASGI wrapper that keeps the wrapped app's ``state`` (the server's parts)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class _Slowed(Middleware):
    def __init__(self, app: Any, path_suffix: str, seconds: float) -> None:
        super().__init__(app)
        self.path_suffix, self.seconds = path_suffix, seconds
        self.released: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(self.path_suffix):
            await self.app(scope, receive, send)
            return
        self.loop = asyncio.get_running_loop()
        if self.released is None:
            self.released = asyncio.Event()
        held: list[dict[str, Any]] = []

        async def hold(message: dict[str, Any]) -> None:
            held.append(message)
        await self.app(scope, receive, hold)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), self.seconds)
        for message in held:
            await send(message)

    def release(self) -> None:
        if self.loop is not None and self.released is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self.loop.call_soon_threadsafe(self.released.set)


def slow_after(path_suffix: str, seconds: float) -> Callable[[Any], Any]:
    """ASGI middleware: the response to ``path_suffix`` is held back ``seconds`` after
    the app has done its work (stored), as a slow link or a busy server would. Stopping
    the server (``reference_server``) ends the wait."""
    return lambda app: _Slowed(app, path_suffix, seconds)


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
