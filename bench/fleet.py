"""The fleet load generator: N simulated boards speaking eboard/1 to one source server.

    .venv/bin/python -m bench.fleet --url http://127.0.0.1:8765/ --tokens tokens.toml \\
        --boards 2000 --compress 12 --duration 120 --json out.json

Each simulated board does on the wire what ``eboard sync`` does (content_sync/daemon.py,
content_sync/board/events_channel.py, content_sync/board/source.py, content_sync/report/):

- the events long-poll ``GET boards/{id}/events?after=N&wait=25`` on its own keep-alive
  connection, re-armed at once after each answer with ``after`` = the ``next`` it got;
  after a failure it waits as the box does (``events_delay``: 15 s doubling to 60 s,
  jittered) unless a manifest poll gets through first (``link_is_back``);
- the heartbeat ``POST boards/{id}/status`` every ``status.heartbeat_interval`` (60 s,
  plus APScheduler's jitter of up to 6 s): a body made by the project's own builder
  (``build_status``, once, from a box database with a sync and a player row) with this
  board's id, clock fields and active version, gzip-compressed as ``outbox.post_json``
  sends it (about 1.7 KB of JSON, 0.8 KB on the wire);
- proof of play ``POST boards/{id}/plays`` every max(30 s, heartbeat) with the records
  played since the last run (``--plays-per-batch`` records of ``make_play``'s shape,
  fresh UUIDs); a record leaves the simulated outbox only when its id comes back in
  ``accepted`` (or ``rejected``), else it is sent again next time, as the outbox does;
- the manifest poll, a conditional ``GET boards/{id}/manifest.json`` (If-None-Match and
  If-Modified-Since from the last 200) every ``source.poll_interval`` (60 s +-20 %), the
  first one within 12 s of the start, and at once when the long-poll announces a version
  newer than the board's (the daemon's ``kick``);
- screenshots (``PUT boards/{id}/screenshot``) only with ``--screenshot-every`` (the
  box's default ``status.screenshot_interval`` is 0: on command only).

Requests other than the long-poll share a per-board pool of keep-alive connections, as
the box's requests Session does (a connection the server closed while idle is replaced,
as urllib3 does). Boards start evenly spread over one heartbeat interval. ``--compress
K`` divides every period (heartbeat, plays, polls, long-poll wait, backoffs, the start
spread) by K; request budgets stay the box's (connect 10 s + read 30 s; the long-poll's
wait + 10 s), so a dead server cannot hang the run. Connections come from source
addresses 127.0.0.2..127.0.0.254 (board i from 127.0.0.(2 + i mod 253)) so ephemeral
ports do not run out.

The boards run in generator processes of at most 4,000 boards each (``--workers``),
started by this one: a board holds about two descriptors, and RLIMIT_NOFILE cannot be
raised past its hard limit without CAP_SYS_RESOURCE (20,000 where this was written,
root or not). All of them time with CLOCK_MONOTONIC, which is one clock across
processes. Each process collects its cyclic garbage by hand (``Worker._collect``).

The push: halfway through (``push_at``), the "operator" (this process) PUTs a signed
manifest with a larger version to every board, ``--push-parallel`` PUTs at a time, with
the operator token; a board's latency is the time its long-poll brought the manifest
event of that version minus the time its PUT was sent. Boards not reached within
``push_grace_s`` of the last PUT never were. At the end each board's stored plays are
read back (``GET boards/{id}/plays/summary``) and compared with what the server
acknowledged: lost = acknowledged but not stored.

The generator's own cost is reported beside the figures (getrusage of every generator
process over the load, its event loops' lag, and its time in the garbage collector): it
must not be the bottleneck. Latencies are also given for the push window (first PUT to
last PUT + 10 s) and outside it, and in 10-second slices (``latency_by_10s``).
bench/bench_fleet.py starts the server under test, prepares its data folder and runs
this; ``python -m bench.fleet`` drives a server that is already running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import gzip
import json
import math
import os
import random
import resource
import signal
import socket
import sys
import tempfile
import time
import tomllib
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from content_sync.board.events_channel import events_delay
from content_sync.publish.build import manifest_version_in

GZIP_MIN_BYTES = 512  # content_sync.report.outbox: smaller bodies go plain
PLAYS_BATCH_MAX = 500  # outbox.BATCH_SIZE
PLAYS_BATCHES_PER_RUN = 20  # outbox.MAX_BATCHES_PER_RUN
FIRST_POLL_SPREAD_S = 12.0  # daemon.start: min(STARTUP_SPREAD_S, poll_interval * jitter)
RECHECK_S = 600.0  # events_channel.RECHECK_S: a source without events is asked again
SOFTWARE = "0.1.0"
OPERATOR_ADDRESS = "127.0.0.1"


# --- a minimal HTTP/1.1 client on asyncio streams ---------------------------------------


class HttpError(Exception):
    """A request without a usable answer; ``kind`` is its row in the error tables."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _oserror_kind(e: OSError, connecting: bool) -> str:
    if isinstance(e, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED:
        return "refused"
    if isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if e.errno == errno.EADDRNOTAVAIL:
        return "no_local_port"
    if e.errno in (errno.EMFILE, errno.ENFILE):
        return "fd_limit"
    if e.errno == errno.ETIMEDOUT:
        return "connect_timeout" if connecting else "timeout"
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    return f"os_{name}"


def error_kind(e: BaseException) -> str:
    """The class of a failed request: refused, connect_timeout, timeout, reset, closed …"""
    if isinstance(e, HttpError):
        return e.kind
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, asyncio.IncompleteReadError):
        return "closed"  # the server closed the connection before or during its answer
    if isinstance(e, asyncio.LimitOverrunError | ValueError | UnicodeError | zlib.error):
        return "bad_answer"
    if isinstance(e, OSError):
        return _oserror_kind(e, False)
    return type(e).__name__


class Conn:
    """One keep-alive HTTP/1.1 connection from a given source address."""

    __slots__ = ("host", "port", "local", "reader", "writer")

    def __init__(self, host: str, port: int, local: str) -> None:
        self.host, self.port, self.local = host, port, local
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def alive(self) -> bool:
        """Open and not closed by the server (urllib3's is_connection_dropped)."""
        return (self.writer is not None and self.reader is not None
                and not self.writer.is_closing() and not self.reader.at_eof())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _connect(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, local_addr=(self.local, 0), limit=1 << 17)
        except TimeoutError:
            raise HttpError("connect_timeout") from None
        except OSError as e:
            raise HttpError(_oserror_kind(e, True), str(e)) from None
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(self, head: bytes, body: bytes, *, budget: float, connect_s: float,
                      head_only: bool = False) -> tuple[Response, bool]:
        """Send ``head`` (request line and headers, blank line included) and ``body``;
        the whole exchange within ``budget`` s. Returns the answer, and whether the
        request had to be sent again because a reused connection had been closed by
        the server meanwhile (nothing of an answer read: the keep-alive race that
        http clients retry)."""
        retried = False
        try:
            async with asyncio.timeout(budget):
                while True:
                    reused = self.alive()
                    if not reused:
                        self.close()
                        await self._connect(connect_s)
                    assert self.writer is not None and self.reader is not None
                    try:
                        self.writer.write(head + body if body else head)
                        return await self._read(self.reader, head_only), retried
                    except (ConnectionError, asyncio.IncompleteReadError) as e:
                        self.close()
                        nothing = not isinstance(e, asyncio.IncompleteReadError) or not e.partial
                        if reused and nothing and not retried:
                            retried = True
                            continue
                        raise
        except BaseException:
            self.close()  # in an unknown state (timed out, cancelled, cut)
            raise

    async def _read(self, r: asyncio.StreamReader, head_only: bool) -> Response:
        while True:
            raw = await r.readuntil(b"\r\n\r\n")
            nl = raw.index(b"\r\n")
            version, _, rest = raw[:nl].partition(b" ")
            if not version.startswith(b"HTTP/1."):
                raise HttpError("bad_answer", repr(raw[:40]))
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in raw[nl + 2:-4].split(b"\r\n"):
                k, _, v = line.partition(b":")
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
            if status >= 200 or status == 101:
                break  # 100 Continue and other 1xx: the real answer follows
        if head_only or status in (204, 304) or status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    while await r.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    break
                parts.append(await r.readexactly(size))
                await r.readexactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await r.readexactly(int(headers["content-length"]))
        else:
            body = await r.read()  # until the server closes
            self.close()
        conn_hdr = headers.get("connection", "").lower()
        if conn_hdr == "close" or (version == b"HTTP/1.0" and conn_hdr != "keep-alive"):
            self.close()
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return Response(status, headers, body)


def request_head(method: str, target: str, host: str, common: bytes,
                 extra: bytes = b"", length: int | None = None) -> bytes:
    cl = b"" if length is None else b"Content-Length: %d\r\n" % length
    return b"%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n" % (
        method.encode(), target.encode(), host.encode(), common, extra, cl)


class Pool:
    """A board's keep-alive connections for everything but the long-poll (a requests
    Session's pool: a free one is reused, a busy one makes another, a failed one goes)."""

    __slots__ = ("host", "port", "local", "idle", "maxsize", "opened")

    def __init__(self, host: str, port: int, local: str, maxsize: int = 6) -> None:
        self.host, self.port, self.local, self.maxsize = host, port, local, maxsize
        self.idle: list[Conn] = []
        self.opened = 0

    async def request(self, head: bytes, body: bytes, *, budget: float, connect_s: float,
                      head_only: bool = False) -> tuple[Response, bool]:
        conn = self.idle.pop() if self.idle else Conn(self.host, self.port, self.local)
        if conn.writer is None:
            self.opened += 1
        answer = await conn.request(head, body, budget=budget, connect_s=connect_s,
                                    head_only=head_only)
        if conn.alive() and len(self.idle) < self.maxsize:
            self.idle.append(conn)
        else:
            conn.close()
        return answer

    def close(self) -> None:
        for c in self.idle:
            c.close()
        self.idle.clear()


# --- what the boards send ---------------------------------------------------------------


def real_heartbeat(work: Path, url: str, version: int) -> dict[str, Any]:
    """A heartbeat body from the project's own builder (``build_status``) for a box with
    a sync row and a player row of a board that plays its manifest, as sent."""
    from content_sync.db import store
    from content_sync.db.rows import PlayerClock, PlayerScreen, PlayerStatus, PlayingNow, SyncStatus
    from content_sync.db.rows import write as write_row
    from content_sync.report.status_report import build_status
    from kiosk_config import load_config

    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "eboard.toml"
    cfg.write_text(f'[board]\nid = "bench.fleet-00000"\nname = "Bảng tin xã Pa Vệ Sủ"\n'
                   f'[source]\nurl = "{url}"\n[cache]\ndir = "{work / "cache"}"\n',
                   encoding="utf-8")
    config = load_config(cfg)
    conn = store.connect(config.db_path)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    with store.transaction(conn):
        write_row(conn, SyncStatus(state="up_to_date", reason="the active manifest is the "
                                   "newest the source offers", source=url,
                                   active_version=version, last_attempt=now,
                                   last_success=now, errors=[], downloaded_bytes=331993,
                                   cache_bytes=331993))
        write_row(conn, PlayerStatus(
            state="normal", manifest_version=version, generation=1,
            current=PlayingNow(playlist_id="thong-bao-t11", item_id="anh-tiem-chung",
                               type="image", priority="normal", started_at=now),
            screen=PlayerScreen(width=1920, height=1080, x=0, y=0, rotation=0,
                                blanked=False, dpms_off=False, forced_off=False),
            clock=PlayerClock(ok=True, reason=None, jumps=0, timezone="Asia/Ho_Chi_Minh"),
            plays_recorded=1440, plays_waiting_for_disk=0, database_writable=True,
            clips_held=[], pid=4242, started_at=now))
    body = build_status(config, conn)
    conn.close()
    return body


def make_play(item: str, playlist: str, started: datetime, seconds: float,
              version: int) -> dict[str, Any]:
    """A proof-of-play record of the shape tests/kit/status.py ``make_play`` gives (and
    ``outbox.RECORD_FIELDS``), with a fresh UUID."""
    return {"id": str(uuid.uuid4()), "item_id": item, "playlist_id": playlist,
            "manifest_version": version,
            "started_at": started.isoformat(timespec="milliseconds"),
            "ended_at": (started + timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
            "duration_s": seconds, "outcome": "played", "detail": ""}


PLAYLIST_ITEMS = (("tb-hop-dan", 8.0), ("anh-tiem-chung", 6.0), ("clip-demo", 12.0),
                  ("tb-bao-hiem", 8.0), ("anh-ve-sinh", 6.0), ("anh-phong-chong-lu", 6.0))


def tiny_jpeg(width: int = 480) -> bytes:
    """A screenshot as the player sends one (JPEG, ``status.screenshot_width`` wide)."""
    import io

    from PIL import Image

    img = Image.effect_noise((width, width * 9 // 16), 40).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


# --- statistics -------------------------------------------------------------------------


@dataclass
class Tally:
    """One request type: how many were sent, answered well, and how the rest failed."""

    sent: int = 0
    ok: int = 0
    retried: int = 0  # sent again on a fresh connection (keep-alive closed meanwhile)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # when each one was sent (monotonic)
    failed_at: list[float] = field(default_factory=list)  # when each failure was seen

    def fail(self, kind: str) -> None:
        self.errors[kind] += 1
        self.failed_at.append(time.monotonic())

    def add(self, t0: float, latency: float) -> None:
        self.ok += 1
        self.starts.append(t0)
        self.latencies.append(latency)

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        """Counts and latency percentiles; with a ``window`` (the push), the latencies of
        requests sent inside it and outside it as well."""
        out = {"sent": self.sent, "ok": self.ok, "failed": sum(self.errors.values()),
               "stale_keepalive_retried": self.retried, "errors": dict(self.errors),
               "latency_s": percentiles(self.latencies)}
        if window is not None:
            lo, hi = window
            inside = [x for t, x in zip(self.starts, self.latencies, strict=True) if lo <= t <= hi]
            outside = [x for t, x in zip(self.starts, self.latencies, strict=True)
                       if not lo <= t <= hi]
            out["latency_s_during_push"] = percentiles(inside)
            out["latency_s_outside_push"] = percentiles(outside)
            out["failed_during_push"] = sum(1 for t in self.failed_at if lo <= t <= hi)
        return out


def series(t: Tally, t0: float, step: float = 10.0) -> list[tuple[float, int, float, float]]:
    """Latencies in ``step``-second slices of the run: (start s, n, p50, p99)."""
    slices: dict[int, list[float]] = {}
    for s, x in zip(t.starts, t.latencies, strict=True):
        slices.setdefault(int((s - t0) // step), []).append(x)
    out = []
    for k in sorted(slices):
        q = percentiles(slices[k])
        out.append((k * step, len(slices[k]), q["p50"] or 0.0, q["p99"] or 0.0))
    return out


def percentiles(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    s = sorted(xs)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))], 4)
    return {"n": len(s), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(s[-1], 4)}


# --- the fleet --------------------------------------------------------------------------


@dataclass
class FleetOptions:
    url: str  # the operator's server (pushes, the plays check)
    board_urls: list[str] = field(default_factory=list)  # board i talks to [i % len]; [url]
    compress: float = 1.0
    duration_s: float = 300.0  # wall seconds after the start spread
    heartbeat_s: float = 60.0  # status.heartbeat_interval
    poll_s: float = 60.0  # source.poll_interval
    poll_jitter: float = 0.2  # source.poll_jitter
    plays_s: float | None = None  # None: max(30, heartbeat), as the daemon
    plays_per_batch: int = 5  # records played between two runs of the plays job
    screenshot_s: float = 0.0  # 0: none (status.screenshot_interval's default)
    wait_s: float = 25.0  # the long-poll's wait (events_channel.WAIT_S)
    connect_timeout: float = 10.0  # source.connect_timeout
    read_timeout: float = 30.0  # source.read_timeout
    push_at: float | None = 0.5  # fraction of duration_s; None: no push
    push_parallel: int = 8
    push_grace_s: float = 30.0  # after the last PUT: boards not reached by then never were
    push_deadline_s: float = 180.0  # the PUTs not sent by then are not sent
    drain_s: float = 45.0  # at the end: how long requests in flight may take to end
    check_plays: bool = True
    addresses: int = 253  # source addresses 127.0.0.2 ..
    workers: int = 0  # generator processes; 0: one per boards_per_worker boards
    boards_per_worker: int = 4000  # about 2 descriptors a board: well under 20,000 each


class SimBoard:
    """One simulated board: its long-poll, heartbeat, plays, manifest poll (screenshots)."""

    __slots__ = ("fleet", "idx", "gidx", "id", "token", "common", "events_conn", "pool",
                 "after", "etag", "last_modified", "version", "outbox", "kick", "link_back",
                 "events_failing", "accepted", "rejected", "made", "started_mono", "busy")

    def __init__(self, fleet: Worker, idx: int, gidx: int, board_id: str, token: str) -> None:
        self.fleet, self.idx, self.gidx, self.id, self.token = fleet, idx, gidx, board_id, token
        local = f"127.0.0.{2 + gidx % fleet.opts.addresses}"
        self.common = (f"User-Agent: eboard/{SOFTWARE} (board {board_id}; +eboard/1)\r\n"
                       "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\n"
                       f"Connection: keep-alive\r\nAuthorization: Bearer {token}\r\n").encode()
        host, port = fleet.targets[gidx % len(fleet.targets)]
        self.events_conn = Conn(host, port, local)
        self.pool = Pool(host, port, local)
        self.after = 0
        self.etag = self.last_modified = ""
        self.version = fleet.initial_version  # the active manifest (the box has synced)
        self.outbox: dict[str, dict[str, Any]] = {}
        self.kick = asyncio.Event()
        self.link_back = asyncio.Event()
        self.events_failing = False
        self.accepted = self.rejected = self.made = self.busy = 0
        self.started_mono = 0.0

    async def run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.started_mono = time.monotonic()
        f = self.fleet
        f.started += 1
        jobs = [self.events_loop(), self.heartbeat_loop(), self.plays_loop(), self.poll_loop()]
        if f.opts.screenshot_s > 0:
            jobs.append(self.screenshot_loop())
        await asyncio.gather(*jobs)

    async def _request(self, tally: Tally, method: str, target: str, extra: bytes = b"",
                       body: bytes = b"", budget: float | None = None) -> Response | None:
        """A request on the pool; None (and the failure counted) if it got no answer."""
        f = self.fleet
        o = f.opts
        head = request_head(method, target, f.hostport, self.common, extra,
                            len(body) if body or method in ("POST", "PUT") else None)
        tally.sent += 1
        self.busy += 1
        t0 = time.monotonic()
        try:
            resp, retried = await self.pool.request(
                head, body, budget=budget or (o.connect_timeout + o.read_timeout),
                connect_s=o.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            tally.fail(error_kind(e))
            return None
        finally:
            self.busy -= 1
        if retried:
            tally.retried += 1
        if resp.status >= 400 or (resp.status >= 300 and resp.status != 304):
            tally.fail(f"http_{resp.status}")
            return None
        tally.add(t0, time.monotonic() - t0)
        return resp

    async def _sleep_until(self, at: float) -> None:
        left = at - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)

    # --- the events long-poll --------------------------------------------------------

    async def events_loop(self) -> None:
        f, o = self.fleet, self.fleet.opts
        wait = max(1, int(o.wait_s / o.compress))
        budget = wait + 10.0
        failures = 0
        tally = f.tally["events"]
        while not f.stopping:
            target = f"/boards/{self.id}/events?after={self.after}&wait={wait}"
            head = request_head("GET", target, f.hostport, self.common)
            tally.sent += 1
            f.events_held += 1
            kind = ""
            resp: Response | None = None
            try:
                resp, retried = await self.events_conn.request(
                    head, b"", budget=budget, connect_s=o.connect_timeout)
                if retried:
                    tally.retried += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                kind = error_kind(e)
            finally:
                f.events_held -= 1
            if resp is not None and resp.status in (404, 405, 501):
                tally.fail(f"absent_{resp.status}")
                await asyncio.sleep(RECHECK_S / o.compress)
                continue
            if resp is not None and resp.status != 200:
                kind = f"http_{resp.status}"
            if resp is not None and not kind:
                try:
                    data = json.loads(resp.body)
                    nxt = int(data.get("next", self.after))
                    events = data.get("events", [])
                    for ev in events:
                        if ev.get("type") == "manifest" and ev.get("version") is not None:
                            self.on_manifest_event(int(ev["version"]))
                except (ValueError, TypeError, AttributeError, KeyError):
                    kind = "bad_answer"
                else:
                    tally.ok += 1
                    if events:
                        f.events_with_news += 1
                    self.after = nxt
                    failures = 0
                    self.events_failing = False
                    continue
            tally.fail(kind)
            failures += 1
            self.events_failing = True
            self.link_back.clear()
            try:  # the box's backoff, cut short when a poll reaches the source
                async with asyncio.timeout(events_delay(failures) / o.compress):
                    await self.link_back.wait()
                failures = 0
            except TimeoutError:
                pass

    def on_manifest_event(self, version: int) -> None:
        f = self.fleet
        if f.push_version and version >= f.push_version and math.isnan(f.push_got[self.idx]):
            f.push_got[self.idx] = time.monotonic()
        if version > self.version:
            self.kick.set()  # the daemon's kick: poll now

    # --- the periodic jobs ------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        f, o = self.fleet, self.fleet.opts
        period = o.heartbeat_s / o.compress
        jitter = max(1.0, o.heartbeat_s // 10) / o.compress
        due = time.monotonic()  # next_run_time=now
        while True:
            await self._sleep_until(due)
            if f.stopping:
                return
            await self.heartbeat_once()
            due += period + random.uniform(0, jitter)
            now = time.monotonic()
            while due < now:  # coalesced: a late run is run once
                due += period

    async def heartbeat_once(self) -> None:
        f = self.fleet
        now = time.monotonic()
        up = f.uptime_base + now - f.t0
        hb = dict(f.heartbeat)
        hb["board"] = self.id
        hb["name"] = f"Bảng tin {self.id}"
        hb["sent_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        hb["monotonic_s"] = round(up, 1)
        hb["uptime_s"] = round(up, 2)
        hb["manifest"] = {"active_version": self.version, "pending_version": None,
                          "offered_version": None}
        hb["outbox"] = {**f.heartbeat.get("outbox", {}), "records": len(self.outbox)}
        raw = json.dumps(hb, ensure_ascii=False, separators=(",", ":")).encode()
        extra = b"Content-Type: application/json\r\n"
        if len(raw) >= GZIP_MIN_BYTES:
            raw = gzip.compress(raw, 6)
            extra += b"Content-Encoding: gzip\r\n"
        f.bytes_sent["status"] += len(raw)
        resp = await self._request(f.tally["status"], "POST", f"/boards/{self.id}/status",
                                   extra, raw)
        if resp is not None:
            try:
                json.loads(resp.body)
            except ValueError:
                f.tally["status"].fail("bad_answer")

    async def plays_loop(self) -> None:
        f, o = self.fleet, self.fleet.opts
        every = o.plays_s if o.plays_s is not None else max(30.0, o.heartbeat_s)
        period = every / o.compress
        jitter = max(1.0, o.heartbeat_s // 10) / o.compress
        due = time.monotonic()
        while True:
            await self._sleep_until(due)
            if f.stopping:
                return
            self.play_some(every)
            await self.upload_plays()
            due += period + random.uniform(0, jitter)
            now = time.monotonic()
            while due < now:
                due += period

    def play_some(self, every: float) -> None:
        """The records the player wrote since the last run: ``plays_per_batch`` items."""
        n = self.fleet.opts.plays_per_batch
        start = datetime.now(UTC) - timedelta(seconds=every)
        for k in range(n):
            item, secs = PLAYLIST_ITEMS[(self.made + k) % len(PLAYLIST_ITEMS)]
            rec = make_play(item, "thong-bao-t11", start + timedelta(seconds=k * every / n),
                            secs, self.version)
            self.outbox[rec["id"]] = rec
        self.made += n

    async def upload_plays(self) -> None:
        f = self.fleet
        tally = f.tally["plays"]
        for _ in range(PLAYS_BATCHES_PER_RUN):
            if not self.outbox or f.stopping:
                return
            batch = [r for _, r in zip(range(PLAYS_BATCH_MAX), self.outbox.values(),
                                       strict=False)]
            raw = json.dumps({"records": batch, "counts": []}, ensure_ascii=False,
                             separators=(",", ":")).encode()
            extra = b"Content-Type: application/json\r\n"
            if len(raw) >= GZIP_MIN_BYTES:
                raw = gzip.compress(raw, 6)
                extra += b"Content-Encoding: gzip\r\n"
            f.records_sent += len(batch)
            f.bytes_sent["plays"] += len(raw)
            resp = await self._request(tally, "POST", f"/boards/{self.id}/plays", extra, raw)
            if resp is None:
                return
            try:
                answer = json.loads(resp.body)
                accepted = [str(i) for i in answer.get("accepted") or []]
                rejected = [str(r.get("id")) for r in answer.get("rejected") or []
                            if isinstance(r, dict)]
            except (ValueError, AttributeError):
                tally.fail("bad_answer")
                return
            gone = 0
            for rid in accepted:
                if self.outbox.pop(rid, None) is not None:
                    self.accepted += 1
                    gone += 1
            for rid in rejected:
                if self.outbox.pop(rid, None) is not None:
                    self.rejected += 1
                    gone += 1
            if not gone:
                tally.fail("acknowledged_none")
                return

    async def poll_loop(self) -> None:
        f, o = self.fleet, self.fleet.opts
        interval = o.poll_s
        delay = random.uniform(0, min(FIRST_POLL_SPREAD_S, interval * o.poll_jitter))
        failures = 0
        while True:
            try:
                async with asyncio.timeout(delay / o.compress):
                    await self.kick.wait()
            except TimeoutError:
                pass
            if f.stopping:
                return
            self.kick.clear()
            ok = await self.poll_once()
            failures = 0 if ok else failures + 1
            if failures == 0:
                delay = interval * random.uniform(1 - o.poll_jitter, 1 + o.poll_jitter)
            else:  # daemon.next_delay
                base = min(15.0, interval / 4)
                delay = min(max(interval, 900.0), base * 2 ** (failures - 1)) \
                    * random.uniform(0.5, 1.0)

    async def poll_once(self) -> bool:
        f = self.fleet
        extra = b""
        if self.etag:
            extra += f"If-None-Match: {self.etag}\r\n".encode()
        if self.last_modified:
            extra += f"If-Modified-Since: {self.last_modified}\r\n".encode()
        resp = await self._request(f.tally["manifest"], "GET",
                                   f"/boards/{self.id}/manifest.json", extra)
        if resp is None:
            return False
        if self.events_failing:
            self.link_back.set()  # the daemon's link_is_back
        if resp.status == 304:
            f.manifest_304 += 1
            return True
        f.manifest_200 += 1
        self.etag = resp.headers.get("etag", "")
        self.last_modified = resp.headers.get("last-modified", "")
        v = manifest_version_in(resp.body)
        if v:
            self.version = max(self.version, v)
        return True

    async def screenshot_loop(self) -> None:
        f, o = self.fleet, self.fleet.opts
        period = o.screenshot_s / o.compress
        due = time.monotonic() + random.uniform(0, period)
        while True:
            await self._sleep_until(due)
            if f.stopping:
                return
            await self._request(f.tally["screenshot"], "PUT", f"/boards/{self.id}/screenshot",
                                b"Content-Type: image/jpeg\r\n", f.screenshot)
            due += period


class Worker:
    """The simulated boards of one generator process (``python -m bench.fleet --worker``)."""

    def __init__(self, opts: FleetOptions, boards: list[tuple[int, str, str]], total: int,
                 heartbeat: dict[str, Any], initial_version: int, push_version: int,
                 t0: float) -> None:
        self.opts = opts
        u = urlsplit(opts.url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.hostport = f"{self.host}:{self.port}"
        self.targets = [(urlsplit(x).hostname or "127.0.0.1", urlsplit(x).port or 80)
                        for x in (opts.board_urls or [opts.url])]
        self.heartbeat = heartbeat
        self.initial_version = initial_version
        self.push_version = push_version
        self.total = total
        self.boards = [SimBoard(self, i, g, b, t) for i, (g, b, t) in enumerate(boards)]
        self.tally: dict[str, Tally] = {k: Tally() for k in
                                        ("events", "status", "plays", "manifest", "screenshot")}
        self.bytes_sent: Counter[str] = Counter()
        self.stopping = False
        self.started = 0
        self.events_held = 0
        self.events_with_news = 0
        self.manifest_200 = self.manifest_304 = 0
        self.records_sent = 0
        self.push_got = [math.nan] * len(boards)
        self.t0 = t0
        self.uptime_base = 3 * 86400.0
        self.screenshot = tiny_jpeg() if opts.screenshot_s > 0 else b""
        self.samples: list[dict[str, float]] = []
        self.lag: list[float] = []
        self.lag_at: list[float] = []
        self.gc_s = self.gc_cpu_s = self.gc_cpu_max = 0.0  # time in the cyclic collector
        self._gc_t = self._gc_cpu = 0.0
        self.gc_max: dict[int, float] = {}

    async def _sample(self) -> None:
        step = 0.25
        while True:
            t = time.monotonic()
            await asyncio.sleep(step)
            self.lag.append(max(0.0, time.monotonic() - t - step))
            self.lag_at.append(t)
            if len(self.lag) % 4 == 0:
                self.samples.append({"t": round(time.monotonic() - self.t0, 2),
                                     "events_held": self.events_held,
                                     "boards_started": self.started,
                                     "heartbeats_ok": self.tally["status"].ok})

    def _gc_watch(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t = time.perf_counter()
            self._gc_cpu = time.process_time()
        else:
            dt = time.perf_counter() - self._gc_t
            self.gc_s += dt
            self.gc_cpu_s += time.process_time() - self._gc_cpu
            g = info.get("generation", 0)
            self.gc_max[g] = max(self.gc_max.get(g, 0.0), dt)
            self.gc_cpu_max = max(self.gc_cpu_max, time.process_time() - self._gc_cpu)

    async def _collect(self) -> None:
        """The cyclic garbage collector by hand: every second the young generations are
        collected and what survived is frozen (out of every later collection's sight), so
        no collection ever walks the boards' long-lived objects (tasks, streams, state).
        Left to itself, at 10,000 boards the collector took a third of the generator's
        CPU and its full collections stalled every board for up to 1.4 s. The price: a
        reference cycle that outlives a second and dies later is not freed during the
        run (a few per failed request; nothing when the server answers)."""
        gc.collect()
        gc.freeze()
        gc.disable()
        while True:
            await asyncio.sleep(1.0)
            gc.collect(1)
            gc.freeze()

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        """Start the boards at their places in the spread after ``t0``; run until ``stop``;
        let requests in flight end (at most ``drain_s``); return what was measured."""
        o = self.opts
        gc.callbacks.append(self._gc_watch)
        spread = o.heartbeat_s / o.compress
        late = time.monotonic() - self.t0
        await asyncio.sleep(max(0.0, -late))
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        sampler = asyncio.create_task(self._sample())
        now = time.monotonic()
        tasks = [asyncio.create_task(b.run(max(0.0, self.t0 + spread * b.gidx / self.total
                                               + random.uniform(0, 0.01) - now)))
                 for b in self.boards]
        collector = asyncio.create_task(self._collect())
        await stop.wait()
        collector.cancel()
        gc.enable()
        load_end = time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.stopping = True
        for b in self.boards:  # the pollers wake and end; the long-polls go below
            b.kick.set()
        drain_until = time.monotonic() + o.drain_s
        while any(b.busy for b in self.boards) and time.monotonic() < drain_until:
            await asyncio.sleep(0.1)
        in_flight = sum(b.busy for b in self.boards)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sampler.cancel()
        for b in self.boards:
            b.events_conn.close()
            b.pool.close()
        return {
            "boards": len(self.boards), "late_start_s": round(max(0.0, late), 3),
            "load_wall_s": load_end - self.t0,
            "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
            "max_rss_mb": round(ru1.ru_maxrss / 1024, 1),
            "event_loop": type(asyncio.get_running_loop()).__module__,
            "tally": {k: {"sent": t.sent, "ok": t.ok, "retried": t.retried,
                          "errors": dict(t.errors), "latencies": t.latencies,
                          "starts": t.starts, "failed_at": t.failed_at}
                      for k, t in self.tally.items()},
            "events_with_news": self.events_with_news, "manifest_200": self.manifest_200,
            "manifest_304": self.manifest_304, "records_sent": self.records_sent,
            "bytes_sent": dict(self.bytes_sent), "in_flight_at_stop": in_flight,
            "pool_connections_opened": sum(b.pool.opened for b in self.boards),
            "gidx": [b.gidx for b in self.boards],
            "accepted": [b.accepted for b in self.boards],
            "rejected": [b.rejected for b in self.boards],
            "made": [b.made for b in self.boards],
            "pending": [len(b.outbox) for b in self.boards],
            "push_got": [None if math.isnan(x) else x for x in self.push_got],
            "lag": self.lag, "lag_at": self.lag_at, "samples": self.samples,
            "gc_s": round(self.gc_s, 3), "gc_cpu_s": round(self.gc_cpu_s, 3),
            "gc_max_pause_s": self.gc_max, "gc_max_pause_cpu_s": round(self.gc_cpu_max, 3),
        }


def worker_main(spec_path: Path) -> int:
    """A generator process: reads its spec, says ``ready``, runs until SIGUSR1 (or SIGTERM),
    writes its results where the spec says."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    raise_nofile(200_000)
    use_uvloop()
    opts = FleetOptions(**spec["options"])

    async def go() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        w = Worker(opts, [tuple(b) for b in spec["boards"]], spec["total"], spec["heartbeat"],
                   spec["initial_version"], spec["push_version"], spec["t0"])
        print("ready", flush=True)
        return await w.run(stop)

    profile = os.environ.get("FLEET_PROFILE")  # a folder: each worker's cProfile stats
    if profile:
        import cProfile

        prof = cProfile.Profile()
        result = prof.runcall(asyncio.run, go())
        prof.dump_stats(str(Path(profile) / f"{Path(spec['out']).stem}.prof"))
    else:
        result = asyncio.run(go())
    Path(spec["out"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


def merge_tallies(parts: list[dict[str, Any]]) -> Tally:
    t = Tally()
    for p in parts:
        t.sent += p["sent"]
        t.ok += p["ok"]
        t.retried += p["retried"]
        t.errors.update(p["errors"])
        t.latencies.extend(p["latencies"])
        t.starts.extend(p["starts"])
        t.failed_at.extend(p["failed_at"])
    return t


class Fleet:
    """The run: generator processes for the boards, the operator's push and hooks here,
    then what the server stored, and every figure merged."""

    def __init__(self, opts: FleetOptions, boards: list[tuple[str, str]], operator_token: str,
                 heartbeat: dict[str, Any], initial_version: int,
                 push_envelope: Callable[[str, int], bytes] | None = None) -> None:
        self.opts = opts
        u = urlsplit(opts.url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.hostport = f"{self.host}:{self.port}"
        self.boards = boards
        self.operator_token = operator_token
        self.heartbeat = heartbeat
        self.initial_version = initial_version
        self.push_envelope = push_envelope
        self.tally = {"push_put": Tally(), "summary": Tally()}
        self.push_version = 0
        self.push_sent = [math.nan] * len(boards)
        self.push_window: tuple[float, float] | None = None
        self.t0 = time.monotonic()
        self.load_end = self.t0
        self.hook_results: dict[str, Any] = {}

    def operator_head(self, method: str, target: str, extra: bytes = b"",
                      length: int | None = None) -> bytes:
        common = (f"User-Agent: python-requests/2 (bench operator)\r\nAccept: */*\r\n"
                  f"Connection: keep-alive\r\nAuthorization: Bearer {self.operator_token}\r\n"
                  ).encode()
        return request_head(method, target, self.hostport, common, extra, length)

    # --- the operator's push ------------------------------------------------------------

    async def push(self, envelopes: list[bytes]) -> None:
        o = self.opts
        tally = self.tally["push_put"]
        order = deque(range(len(self.boards)))
        deadline = time.monotonic() + o.push_deadline_s
        first = time.monotonic()

        async def worker() -> None:
            conn = Conn(self.host, self.port, OPERATOR_ADDRESS)
            try:
                while order and time.monotonic() < deadline:
                    i = order.popleft()
                    body = envelopes[i]
                    head = self.operator_head("PUT", f"/boards/{self.boards[i][0]}/manifest.json",
                                              b"Content-Type: application/json\r\n", len(body))
                    tally.sent += 1
                    t0 = time.monotonic()
                    self.push_sent[i] = t0
                    try:
                        resp, _ = await conn.request(
                            head, body, budget=min(130.0, max(1.0, deadline - t0)),
                            connect_s=o.connect_timeout)
                    except Exception as e:
                        tally.fail(error_kind(e))
                        continue
                    if resp.status not in (200, 201, 204):
                        tally.fail(f"http_{resp.status}")
                        continue
                    tally.add(t0, time.monotonic() - t0)
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(max(1, o.push_parallel))))
        self.push_window = (first, time.monotonic())

    def push_summary(self, got: list[float]) -> dict[str, Any]:
        if not self.push_version or self.push_window is None:
            return {"done": False}
        lat = [g - s for s, g in zip(self.push_sent, got, strict=True)
               if not math.isnan(s) and not math.isnan(g)]
        n = len(self.boards)
        sent = sum(1 for s in self.push_sent if not math.isnan(s))
        within = sum(1 for x in lat if x <= 3.0)
        w = self.push_window
        return {"done": True, "version": self.push_version, "boards": n, "puts_sent": sent,
                "started_at_s": round(w[0] - self.t0, 2),
                "reached": len(lat), "never_reached": n - len(lat),
                "within_3s": within, "within_3s_pct": round(100.0 * within / n, 2) if n else None,
                "latency_s": percentiles(lat), "puts_wall_s": round(w[1] - w[0], 3),
                "put": self.tally["push_put"].summary()}

    # --- at the end: what the server stored --------------------------------------------

    async def check_plays(self, accepted: list[int], deadline_s: float = 120.0,
                          parallel: int = 8) -> dict[str, Any]:
        tally = self.tally["summary"]
        order = list(range(len(self.boards)))
        stored: list[int | None] = [None] * len(self.boards)
        deadline = time.monotonic() + deadline_s

        async def worker() -> None:
            conn = Conn(self.host, self.port, OPERATOR_ADDRESS)
            try:
                while order and time.monotonic() < deadline:
                    i = order.pop()
                    tally.sent += 1
                    target = f"/boards/{self.boards[i][0]}/plays/summary"
                    try:
                        resp, _ = await conn.request(self.operator_head("GET", target), b"",
                                                     budget=30.0, connect_s=10.0)
                    except Exception as e:
                        tally.fail(error_kind(e))
                        continue
                    if resp.status != 200:
                        tally.fail(f"http_{resp.status}")
                        continue
                    try:
                        stored[i] = int(json.loads(resp.body)["records"])
                    except (ValueError, KeyError, TypeError):
                        tally.fail("bad_answer")
                        continue
                    tally.ok += 1
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(parallel)))
        checked = [(a, s) for a, s in zip(accepted, stored, strict=True) if s is not None]
        return {"boards_checked": len(checked),
                "boards_not_checked": len(self.boards) - len(checked),
                "accepted_on_checked": sum(a for a, _ in checked),
                "stored_on_checked": sum(s for _, s in checked),
                "lost": sum(max(0, a - s) for a, s in checked),
                "stored_not_acknowledged": sum(max(0, s - a) for a, s in checked),
                "requests": tally.summary()}

    # --- the run ------------------------------------------------------------------------

    async def _spawn(self, work: Path, w: int, lo: int, hi: int, push_version: int
                     ) -> tuple[asyncio.subprocess.Process, Path]:
        out = work / f"worker-{w}.json"
        spec = work / f"worker-{w}.spec.json"
        spec.write_text(json.dumps({
            "options": vars(self.opts), "total": len(self.boards),
            "boards": [(g, *self.boards[g]) for g in range(lo, hi)],
            "heartbeat": self.heartbeat, "initial_version": self.initial_version,
            "push_version": push_version, "t0": self.t0, "out": str(out)}), encoding="utf-8")
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": str(root)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.fleet", "--worker", str(spec), cwd=root, env=env,
            stdout=asyncio.subprocess.PIPE)
        return proc, out

    async def run(self, hooks: list[tuple[float, str, Callable[[], Awaitable[Any]]]] | None = None
                  ) -> dict[str, Any]:
        """Run the fleet; ``hooks`` (seconds after the start spread, name, coroutine maker)
        run during the load, their results kept under their names."""
        o = self.opts
        n = len(self.boards)
        spread = o.heartbeat_s / o.compress
        nw = o.workers or max(1, math.ceil(n / o.boards_per_worker))
        push_env: list[bytes] = []
        if o.push_at is not None and self.push_envelope is not None:
            self.push_version = self.initial_version + 10_000_000
            t = time.monotonic()
            push_env = [self.push_envelope(b, self.push_version) for b, _ in self.boards]
            self.hook_results["push_envelopes_signed_s"] = round(time.monotonic() - t, 2)
        with tempfile.TemporaryDirectory(prefix="fleet-workers-") as tmp:
            self.t0 = time.monotonic() + 4.0 + n / 4000
            procs = [await self._spawn(Path(tmp), w, n * w // nw, n * (w + 1) // nw,
                                       self.push_version) for w in range(nw)]
            for proc, _ in procs:  # each says "ready" once its boards are made
                assert proc.stdout is not None
                async with asyncio.timeout(max(5.0, self.t0 - time.monotonic() + 30)):
                    await proc.stdout.readline()
            await asyncio.sleep(max(0.0, self.t0 - time.monotonic()))
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            steady = self.t0 + spread
            end = steady + o.duration_s
            timeline = list(hooks or [])
            if push_env:
                timeline.append((o.duration_s * (o.push_at or 0.5), "push",
                                 lambda: self.push(push_env)))

            async def at(when: float, name: str, make: Callable[[], Awaitable[Any]]) -> None:
                await asyncio.sleep(max(0.0, steady + when - time.monotonic()))
                self.hook_results[f"{name}_at_s"] = round(time.monotonic() - self.t0, 2)
                result = await make()
                if result is not None:
                    self.hook_results[name] = result

            running = [asyncio.create_task(at(*h)) for h in timeline]
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            for task in running:  # a hook still running (the push) ends first
                await task
            if self.push_window is not None:  # not reached within the grace: never reached
                await asyncio.sleep(max(0.0, self.push_window[1] + o.push_grace_s
                                        - time.monotonic()))
            self.load_end = time.monotonic()
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            for proc, _ in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGUSR1)
            parts: list[dict[str, Any]] = []
            failed_workers = 0
            for proc, out in procs:
                try:
                    async with asyncio.timeout(o.drain_s + 60):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                if proc.returncode == 0 and out.is_file():
                    parts.append(json.loads(out.read_text(encoding="utf-8")))
                else:
                    failed_workers += 1
        return await self._merge(parts, failed_workers, nw, ru0, ru1)

    async def _merge(self, parts: list[dict[str, Any]], failed_workers: int, nw: int,
                     ru0: resource.struct_rusage, ru1: resource.struct_rusage
                     ) -> dict[str, Any]:
        o = self.opts
        n = len(self.boards)
        got = [math.nan] * n
        accepted = [0] * n
        for p in parts:
            for g, t, a in zip(p["gidx"], p["push_got"], p["accepted"], strict=True):
                got[g] = math.nan if t is None else t
                accepted[g] = a
        tallies = {k: merge_tallies([p["tally"][k] for p in parts])
                   for k in ("events", "status", "plays", "manifest", "screenshot")}
        plays_check = await self.check_plays(accepted) if o.check_plays else None
        wall = self.load_end - self.t0
        own = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        cpu = own + sum(p["cpu_s"] for p in parts)
        per_k = cpu / wall / (n / 1000) if n and wall else 0.0
        for p in parts:  # the event loops' lag while the load ran (not in the drain)
            kept = [(t, x) for t, x in zip(p["lag_at"], p["lag"], strict=True)
                    if t <= self.load_end]
            p["lag_at"], p["lag"] = [t for t, _ in kept], [x for _, x in kept]
        lag = [x for p in parts for x in p["lag"]]
        window = None
        if self.push_window is not None:  # the push and its aftermath: first PUT to last + 10 s
            window = (self.push_window[0], self.push_window[1] + 10.0)
            lag_push = [x for p in parts for t, x in zip(p["lag_at"], p["lag"], strict=True)
                        if window[0] <= t <= window[1]]
            lag_rest = [x for p in parts for t, x in zip(p["lag_at"], p["lag"], strict=True)
                        if not window[0] <= t <= window[1]]
        else:
            lag_push, lag_rest = [], lag
        bytes_sent: Counter[str] = Counter()
        for p in parts:
            bytes_sent.update(p["bytes_sent"])
        return {
            "boards": n, "compress": o.compress, "spread_s": round(o.heartbeat_s / o.compress, 2),
            "duration_s": o.duration_s, "load_wall_s": round(wall, 2),
            "options": dict(vars(o)),
            "push": self.push_summary(got),
            "status": tallies["status"].summary(window),
            "events": {**tallies["events"].summary(window),
                       "answers_with_events": sum(p["events_with_news"] for p in parts)},
            "manifest": {**tallies["manifest"].summary(window),
                         "answered_200": sum(p["manifest_200"] for p in parts),
                         "answered_304": sum(p["manifest_304"] for p in parts)},
            "plays": {**tallies["plays"].summary(window),
                      "records_made": sum(sum(p["made"]) for p in parts),
                      "records_sent_incl_resends": sum(p["records_sent"] for p in parts),
                      "accepted": sum(accepted),
                      "rejected": sum(sum(p["rejected"]) for p in parts),
                      "unacknowledged_at_end": sum(sum(p["pending"]) for p in parts),
                      "check": plays_check},
            "screenshot": tallies["screenshot"].summary(),
            "bytes_sent": dict(bytes_sent),
            "requests_in_flight_at_stop": sum(p["in_flight_at_stop"] for p in parts),
            "pool_connections_opened": sum(p["pool_connections_opened"] for p in parts),
            "generator": {"processes": nw, "failed_processes": failed_workers,
                          "cpu_s": round(cpu, 2), "coordinator_cpu_s": round(own, 2),
                          "cpu_pct_of_core": round(100 * cpu / wall, 1) if wall else None,
                          "cpu_pct_core_per_1000_boards": round(100 * per_k, 2),
                          "cpu_pct_core_per_1000_boards_real_cadence":
                              round(100 * per_k / o.compress, 2),
                          "max_rss_mb": max((p["max_rss_mb"] for p in parts), default=None),
                          "late_start_s": max((p["late_start_s"] for p in parts), default=None),
                          "loop_lag_s": percentiles(lag),
                          "loop_lag_s_during_push": percentiles(lag_push),
                          "loop_lag_s_outside_push": percentiles(lag_rest),
                          "loop_lag_worst": sorted(
                              ((round(t - self.t0, 2), round(x, 3)) for p in parts
                               for t, x in zip(p["lag_at"], p["lag"], strict=True)),
                              key=lambda tx: -tx[1])[:8],
                          "gc_s": round(sum(p["gc_s"] for p in parts), 2),
                          "gc_cpu_s": round(sum(p["gc_cpu_s"] for p in parts), 2),
                          "gc_max_pause_cpu_s": max((p["gc_max_pause_cpu_s"] for p in parts),
                                                    default=None),
                          "gc_max_pause_s": max((max(p["gc_max_pause_s"].values(), default=0)
                                                 for p in parts), default=None),
                          "event_loop": parts[0]["event_loop"] if parts else None},
            "latency_by_10s": {k: series(tallies[k], self.t0)
                               for k in ("status", "plays", "manifest")},
            "samples": [p["samples"] for p in parts],
            "hooks": self.hook_results,
        }


# --- helpers for a run --------------------------------------------------------------------


def raise_nofile(want: int) -> tuple[int, int]:
    """Soft RLIMIT_NOFILE to the hard limit; as root (with CAP_SYS_RESOURCE) the hard one
    too, to ``want``. Children (the server under test) inherit it. Returns the limits now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard != resource.RLIM_INFINITY and hard < want:
        try:
            nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            nr_open = want
        with contextlib.suppress(ValueError, OSError):  # no CAP_SYS_RESOURCE: keep the hard
            top = min(want, nr_open)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, top))
            return resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def use_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    uvloop.install()
    return True


def envelope_maker(manifest: dict[str, Any], key: Any) -> Callable[[str, int], bytes]:
    """A signer of ``manifest`` for any board and version, as ``publish.prepare`` writes
    it (JSON with indent=1, DSSE with Ed25519)."""
    from content_sync.protocol import dsse

    def make(board: str, version: int) -> bytes:
        body = json.dumps({**manifest, "board": board, "version": version},
                          ensure_ascii=False, indent=1).encode("utf-8")
        return dsse.sign(body, key)
    return make


def load_board_tokens(path: Path) -> tuple[str, list[tuple[str, str]]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    boards = sorted((str(k), str(v)) for k, v in dict(data.get("boards", {})).items())
    return str(data.get("operator", "")), boards


def print_summary(r: dict[str, Any], out: Any = sys.stdout) -> None:
    def lat(d: dict[str, Any]) -> str:
        q = d["latency_s"]
        if not q["n"]:
            return "-"
        return f"p50 {q['p50']:.3f} p99 {q['p99']:.3f} max {q['max']:.3f} s"
    print(f"{r['boards']} boards, compress {r['compress']}, {r['load_wall_s']} s of load", file=out)
    p = r["push"]
    if p.get("done"):
        q = p["latency_s"]
        print(f"push: {p['within_3s_pct']} % within 3 s; p50 {q['p50']} p90 {q['p90']} "
              f"p99 {q['p99']} max {q['max']} s; never reached {p['never_reached']}; "
              f"PUTs {p['put']['ok']}/{p['puts_sent']} in {p['puts_wall_s']} s", file=out)
    for k in ("status", "events", "manifest", "plays"):
        d = r[k]
        print(f"{k}: sent {d['sent']} ok {d['ok']} failed {d['failed']} {d['errors'] or ''}; "
              f"{lat(d)}", file=out)
    pl, chk = r["plays"], r["plays"]["check"] or {}
    print(f"plays: made {pl['records_made']} accepted {pl['accepted']} unacknowledged "
          f"{pl['unacknowledged_at_end']}; lost {chk.get('lost')} (boards checked "
          f"{chk.get('boards_checked')})", file=out)
    g = r["generator"]
    print(f"generator: {g['processes']} processes, {g['cpu_s']} CPU s ({g['cpu_pct_of_core']} "
          f"% of a core), {g['cpu_pct_core_per_1000_boards_real_cadence']} % of a core per "
          f"1,000 boards at the real cadence; loop lag p99 {g['loop_lag_s']['p99']} s; "
          f"{g['event_loop']}", file=out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker_main(Path(argv[1]))
    ap = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="the source server, e.g. http://127.0.0.1:8765/")
    ap.add_argument("--tokens", type=Path, required=True,
                    help="the server's tokens.toml (operator and [boards])")
    ap.add_argument("--boards", type=int, default=0, help="how many boards (default: all)")
    ap.add_argument("--compress", type=float, default=1.0, help="divide every period by K")
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of load after the "
                    "start spread (default 300)")
    ap.add_argument("--plays-per-batch", type=int, default=5)
    ap.add_argument("--screenshot-every", type=float, default=0.0)
    ap.add_argument("--no-push", action="store_true")
    ap.add_argument("--push-parallel", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0, help="generator processes (0: one per "
                    "4,000 boards)")
    ap.add_argument("--no-plays-check", action="store_true")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)
    raise_nofile(200_000)
    use_uvloop()
    operator, boards = load_board_tokens(args.tokens)
    if args.boards:
        boards = boards[:args.boards]
    from content_sync.protocol import generate_keys, load_private_key
    from content_sync.publish.build import build_manifest

    with tempfile.TemporaryDirectory() as d:
        version = int(time.time() * 1000)
        heartbeat = real_heartbeat(Path(d) / "box", args.url, version)
        key_path, _ = generate_keys(Path(d) / "keys")
        demo = Path(__file__).resolve().parents[1] / "assets" / "demo" / "playlist.toml"
        manifest, _, _ = build_manifest(demo, "x", version=version)
        opts = FleetOptions(url=args.url, compress=args.compress, duration_s=args.duration,
                            plays_per_batch=args.plays_per_batch,
                            screenshot_s=args.screenshot_every,
                            push_at=None if args.no_push else 0.5,
                            push_parallel=args.push_parallel, workers=args.workers,
                            check_plays=not args.no_plays_check)
        fleet = Fleet(opts, boards, operator, heartbeat, version,
                      envelope_maker(manifest, load_private_key(key_path)))
        result = asyncio.run(fleet.run())
    print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


__all__ = ["Fleet", "FleetOptions", "Worker", "main", "percentiles", "raise_nofile",
           "real_heartbeat"]

if __name__ == "__main__":
    sys.exit(main())
