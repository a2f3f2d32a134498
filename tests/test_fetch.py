"""content_sync/board/fetch.py against real HTTP servers on 127.0.0.1: bounded parallelism,
retries, content checks, held-back files, a stop, and what the outcome says."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from content_sync.board import fetch
from content_sync.board.fetch import ATTEMPTS, BACKOFF_CAP_S, Outcome, backoff, fetch_all
from content_sync.board.source import HttpSource
from content_sync.db import store
from content_sync.protocol.manifest import MediaInfo
from kiosk_config import Config
from tests.kit.sync import (
    Plan,
    StaticApp,
    misbehaving,
    noise,
    png,
    serve_wsgi,
    sha256,
    wait_until,
    write_config,
)


def _config(tmp_path: Path, url: str, **source: Any) -> Config:
    return write_config(tmp_path, url, [], **source)


def _pngs(n: int) -> dict[str, bytes]:
    return {sha256(data): data for data in (png(seed) for seed in range(n))}


def _need(files: dict[str, bytes], mtype: str = "image/png") -> dict[str, MediaInfo]:
    return {sha: MediaInfo(size=len(data), type=mtype) for sha, data in sorted(files.items())}


class Reporter:
    """Records what fetch_all reports (a plain implementation of fetch.Reporter)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.begun: tuple[int, int] | None = None
        self.done: dict[str, str | None] = {}
        self.ended = False

    def begin(self, files: int, total_bytes: int) -> None:
        self.begun = (files, total_bytes)

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self, sha: str, error: str | None) -> None:
        with self.lock:
            self.done[sha] = error

    def end(self) -> None:
        self.ended = True


class Gate:
    """A WSGI app in front of another that holds every request until ``release`` is set,
    counting the requests being answered at once."""

    def __init__(self, app: StaticApp) -> None:
        self.app, self.log = app, app.log
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.arrived = self.in_flight = self.most = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            self.arrived += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.release.wait(60)
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_no_more_downloads_at_once_than_max_parallel_downloads(tmp_path: Path) -> None:
    files = _pngs(5)
    for sha, data in files.items():
        (tmp_path / "src" / "media").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "media" / sha).write_bytes(data)
    gate = Gate(StaticApp(tmp_path / "src"))
    with serve_wsgi(gate) as srv:
        config = _config(tmp_path, srv.url, max_parallel_downloads=2)
        source = HttpSource(config)
        out: list[Outcome] = []
        t = threading.Thread(target=lambda: out.append(
            fetch_all(config, source, _need(files))))
        t.start()
        try:
            assert wait_until(lambda: gate.arrived >= 2)
            # A third request must not come while two are held (a second's patience for
            # one that would come at once if the bound were broken).
            assert not wait_until(lambda: gate.arrived > 2, timeout=1.0)
        finally:
            gate.release.set()
            t.join(60)
    assert out[0].done == set(files) and out[0].errors == []
    assert gate.most == 2 and gate.arrived == 5
    for sha, data in files.items():
        assert store.media_path(config.cache_dir, sha).read_bytes() == data


def test_a_cut_transfer_is_retried_in_the_same_run_and_resumes(tmp_path: Path) -> None:
    data = png(1, (400, 300))
    sha = sha256(data)
    plan = Plan(files={f"/media/{sha}": data}, plans={f"/media/{sha}": ["cut:0.5", "ok"]})
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need({sha: data}))
    assert out.done == {sha} and out.errors == []
    assert [r.behaviour for r in plan.requests] == ["cut:0.5", "ok"]
    assert plan.requests[1].headers["Range"] == f"bytes={len(data) // 2}-"
    assert out.bytes == len(data)  # not one byte fetched twice


def test_a_transfer_cut_every_time_gives_up_after_the_attempts(tmp_path: Path) -> None:
    data = noise(200_000, seed=4)
    sha = sha256(data)
    plan = Plan(files={f"/media/{sha}": data}, plans={f"/media/{sha}": ["cut:0.3"]})
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need({sha: data}, "video/mp4"))
    assert len(plan.requests) == ATTEMPTS
    assert out.done == set() and out.rejected == [] and out.refused == []
    assert len(out.errors) == 1 and "transfer cut" in out.errors[0]
    assert not out.offline and not out.disk_full
    assert (store.partial_dir(config.cache_dir) / sha).stat().st_size > 0  # kept to resume


def test_wrong_bytes_are_rejected_at_once_and_not_kept(tmp_path: Path) -> None:
    data, wrong = noise(50_000, seed=5), noise(50_000, seed=6)
    sha = sha256(data)
    plan = Plan(files={f"/media/{sha}": wrong})
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need({sha: data}, "video/mp4"))
    assert len(plan.requests) == 1  # no retry can help: the source holds wrong bytes
    assert [s for s, _ in out.rejected] == [sha] and "hash mismatch" in out.rejected[0][1]
    assert out.errors == [out.rejected[0][1]] and out.done == set()
    assert not store.media_path(config.cache_dir, sha).exists()


def test_verified_bytes_that_cannot_be_shown_are_refused_and_never_reach_media(
        tmp_path: Path) -> None:
    good, junk = png(7), noise(20_000, seed=7)  # junk: the right hash, but no image
    files = {sha256(good): good, sha256(junk): junk}
    plan = Plan(files={f"/media/{s}": d for s, d in files.items()})
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need(files))
    assert out.done == {sha256(good)}
    assert [s for s, _ in out.refused] == [sha256(junk)]
    assert out.refused[0][1].startswith("(image/png) ")
    assert out.errors == []  # a refusal is not a transport error
    assert len([r for r in plan.requests if r.path.endswith(sha256(junk))]) == 1
    assert not store.media_path(config.cache_dir, sha256(junk)).exists()


def test_held_back_files_are_held_with_their_reason_without_a_request(
        tmp_path: Path) -> None:
    files = _pngs(2)
    kept, held = sorted(files)
    plan = Plan(files={f"/media/{s}": d for s, d in files.items()})
    reporter = Reporter()
    why = "(image/png) held back: the sync died 2 times while decoding this file"
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need(files), reporter, held={held: why})
    # held, not refused: a refusal is remembered for good, a hold ends
    assert out.done == {kept} and out.held == [(held, why)] and out.refused == []
    assert [r.path for r in plan.requests] == [f"/media/{kept}"]
    assert reporter.begun == (2, sum(len(d) for d in files.values()))
    assert reporter.done == {kept: None, held: why} and reporter.ended


def test_a_stop_before_the_start_fetches_nothing_and_reports_no_error(tmp_path: Path) -> None:
    files = _pngs(3)
    plan = Plan(files={f"/media/{s}": d for s, d in files.items()})
    stopping = threading.Event()
    stopping.set()
    with misbehaving(plan) as url:
        config = _config(tmp_path, url)
        out = fetch_all(config, HttpSource(config), _need(files), stopping=stopping)
    assert plan.requests == []
    assert out.done == set() and out.errors == [] and out.refused == []


def test_merged_outcomes_add_up() -> None:
    a = Outcome({"a"}, [("r", "bad")], [], ["e1"], False, True, 10, [("h", "held")])
    b = Outcome({"b"}, [], [("x", "wrong")], ["e2"], True, False, 5)
    assert a.merge(b) == Outcome({"a", "b"}, [("r", "bad")], [("x", "wrong")], ["e1", "e2"],
                                 True, True, 15, [("h", "held")])


def test_backoff_is_jittered_and_capped() -> None:
    for attempt in range(12):
        top = min(BACKOFF_CAP_S, fetch.BACKOFF_BASE_S * 2 ** attempt)
        waits = [backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= top for w in waits)
        assert len(set(waits)) > 1  # full jitter: boards that failed together spread out
    assert max(backoff(20) for _ in range(200)) <= BACKOFF_CAP_S
