"""Downloads against real servers on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from content_sync.board import download
from content_sync.board.download import MediaError, RateLimiter
from content_sync.board.engine import Engine, SyncState
from content_sync.board.source import HttpSource, SourceError
from content_sync.db import store
from content_sync.net.http import EboardSession, RedirectRefused, make_session
from tests.kit.sync import (
    BOARD,
    Plan,
    Publisher,
    make_keys,
    misbehaving,
    noise,
    png,
    sha256,
    write_config,
)

SIZE = 300_000


@pytest.fixture
def blob() -> tuple[bytes, str]:
    data = noise(SIZE, seed=3)
    return data, sha256(data)


def _session(tmp_path: Path, url: str, **source: Any) -> EboardSession:
    return make_session(write_config(tmp_path, url, [], **source))


def test_cut_mid_body_resumes_with_range_and_if_range_after_restart(
        tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["cut:0.5", "ok"]})
    cache = tmp_path / "cache"
    with misbehaving(plan) as url:
        with pytest.raises(MediaError, match="transfer cut"):
            download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
        partial = store.partial_dir(cache) / h
        assert partial.stat().st_size == SIZE // 2
        # A new session stands for a restarted process: only the partial file remains.
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
    assert path.read_bytes() == data and not partial.exists()
    second = plan.requests[1]
    assert second.headers["Range"] == f"bytes={SIZE // 2}-"
    assert second.headers["If-Range"] == '"v1"'
    assert plan.sent() == SIZE  # not one byte fetched twice


def test_changed_validator_restarts_from_zero(tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["cut:0.5", "ok"]})
    cache = tmp_path / "cache"
    with misbehaving(plan) as url:
        with pytest.raises(MediaError):
            download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
        plan.etags[f"/media/{h}"] = '"v2"'  # the server's file changed: If-Range fails
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
    assert sha256(path.read_bytes()) == h
    assert plan.requests[1].headers.get("If-Range") == '"v1"'
    assert plan.requests[1].sent == SIZE  # a full 200, written from the start


def test_server_without_range_support_still_completes(tmp_path: Path,
                                                      blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["cut:0.3", "norange"]})
    with misbehaving(plan) as url:
        with pytest.raises(MediaError):
            download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                   tmp_path / "c", h, SIZE)
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                      tmp_path / "c", h, SIZE)
    assert sha256(path.read_bytes()) == h


def test_wrong_content_length_is_a_cut_not_a_file(tmp_path: Path,
                                                  blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["short_cl"]})
    with misbehaving(plan) as url, pytest.raises(MediaError, match="transfer cut"):
        download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                               tmp_path / "c", h, SIZE)
    assert not store.media_path(tmp_path / "c", h).exists()


def test_500s_are_retried_by_the_session(tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data},
                plans={f"/media/{h}": ["status:500", "status:503", "ok"]})
    with misbehaving(plan) as url:
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                      tmp_path / "c", h, SIZE)
    assert sha256(path.read_bytes()) == h and len(plan.requests) == 3


def test_slow_drip_is_abandoned_and_keeps_what_came(tmp_path: Path,
                                                    blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["drip:20"]})
    with misbehaving(plan) as url, pytest.raises(MediaError, match="stalled"):
        download.download_http(_session(tmp_path, url, read_timeout=1.0), f"{url}media/{h}",
                               tmp_path / "c", h, SIZE, stall_window=1.0)
    assert 0 < (store.partial_dir(tmp_path / "c") / h).stat().st_size < SIZE


def test_redirects_followed_within_the_scheme_only(tmp_path: Path,
                                                   blob: tuple[bytes, str]) -> None:
    data, h = blob
    target = Plan(files={f"/media/{h}": data})
    with misbehaving(target) as real:
        hop = Plan(plans={f"/media/{h}": [f"redirect:{real}"]})
        with misbehaving(hop) as url:
            path = download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                          tmp_path / "c", h, SIZE)
            assert sha256(path.read_bytes()) == h
        https = real.replace("http://", "https://")
        hop = Plan(plans={f"/boards/{BOARD}/manifest.json": [f"redirect:{https}"]})
        with misbehaving(hop) as url:
            src = HttpSource(write_config(tmp_path, url, []))
            with pytest.raises(SourceError, match="changes the scheme"):
                src.fetch_manifest(BOARD, {})
            with pytest.raises(RedirectRefused):
                src.session.get(f"{url}boards/{BOARD}/manifest.json")


def test_engine_survives_cuts_and_500s_in_one_run(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    body = pub.manifest(1, {"a": (png(1), "image/png"), "b": (noise(SIZE, 9), "video/mp4")})
    del body["media"][sha256(noise(SIZE, 9))]  # keep the manifest valid: images only
    body["playlists"][0]["items"] = body["playlists"][0]["items"][:2]
    pub.write(body)
    files = {f"/{p.relative_to(pub.root)}": p.read_bytes()
             for p in pub.root.rglob("*") if p.is_file()}
    h = sha256(png(1))
    plan = Plan(files=files, plans={f"/media/{h}": ["cut:0.5", "status:500", "cut:0.9", "ok"]})
    with misbehaving(plan) as url:
        config = write_config(tmp_path, url, [pubkey])
        conn = store.connect(config.db_path)
        r = Engine(config, conn).sync_once()
    assert r.ok, r.reason
    assert store.active_version(conn) == 1


def test_disk_full_stops_cleans_and_keeps_playing(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    config = write_config(tmp_path, (tmp_path / "src").as_uri() + "/", [pubkey])
    conn = store.connect(config.db_path)
    assert Engine(config, conn).sync_once().ok
    big = noise(SIZE, 5)
    pub.publish(2, {"b": (png(2), "image/png"), "c": (big, "image/png")})
    # The kernel's /dev/full answers every write with ENOSPC: a real disk-full error.
    pdir = store.partial_dir(config.cache_dir)
    pdir.mkdir(parents=True, exist_ok=True)
    for h in (sha256(png(2)), sha256(big)):
        os.symlink("/dev/full", pdir / h)
    r = Engine(config, conn).sync_once()
    assert r.state == SyncState.NO_SPACE and "disk full" in r.reason
    assert store.active_version(conn) == 1
    assert list(pdir.iterdir()) == []
    assert store.media_path(config.cache_dir, sha256(png(1))).is_file()


def test_rate_limiter_with_a_simulated_clock() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    lim = RateLimiter(1000, burst=1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        lim.consume(500)
    assert now[0] == pytest.approx(4.0)  # 5000 bytes at 1000 B/s after a 1000-byte burst
    now[0] += 10  # idle: the bucket refills only up to the burst
    slept = sum(lim.consume(500) for _ in range(2))
    assert slept == 0.0 and lim.consume(500) == pytest.approx(0.5)


def test_bandwidth_cap_applies_to_a_real_download(tmp_path: Path,
                                                  blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data})
    slept: list[float] = []
    lim = RateLimiter(100_000, burst=65536, sleep=slept.append)
    with misbehaving(plan) as url:
        download.download_http(_session(tmp_path, url), f"{url}media/{h}", tmp_path / "c",
                               h, SIZE, limiter=lim)
    # Sleeps were requested for what exceeded the burst (the sleep itself is skipped here).
    assert sum(slept) >= (SIZE - 65536) / 100_000 * 0.9
    eight_kbps = download.limiter_for(8)
    assert download.limiter_for(0) is None and eight_kbps and eight_kbps.rate == 1000


def test_content_length_below_the_body_is_completed_by_a_range(
        tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["small_cl", "ok"]})
    with misbehaving(plan) as url:
        with pytest.raises(MediaError, match=f"got {SIZE - 100} of {SIZE}"):
            download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                   tmp_path / "c", h, SIZE)
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}",
                                      tmp_path / "c", h, SIZE)
    assert sha256(path.read_bytes()) == h
    assert plan.requests[1].headers["Range"] == f"bytes={SIZE - 100}-"


def test_one_corrupted_answer_never_blocks_the_file_for_good(
        tmp_path: Path, blob: tuple[bytes, str]) -> None:
    """Wrong bytes once, then the right ones under the same ETag (a proxy or CDN edge
    that corrupted one answer): the next attempt is a fresh, unconditional download and
    gets the file, instead of a 304 that blames the publisher forever."""
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["wrong", "ok"]})
    cache = tmp_path / "cache"
    with misbehaving(plan) as url:
        with pytest.raises(MediaError, match="hash mismatch") as e:
            download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
        assert e.value.permanent  # not retried in this run
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
    assert path.read_bytes() == data
    assert "If-None-Match" not in plan.requests[1].headers
    assert not (store.partial_dir(cache) / f"{h}.bad").exists()  # forgotten with the file


def test_wrong_bytes_twice_are_believed_for_a_day_then_asked_again(
        tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data}, plans={f"/media/{h}": ["wrong"]})
    cache = tmp_path / "cache"
    marker = store.partial_dir(cache) / f"{h}.bad"

    def attempt(match: str) -> None:
        with pytest.raises(MediaError, match=match) as e:
            download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
        assert e.value.permanent

    with misbehaving(plan) as url:
        attempt("hash mismatch")
        attempt("hash mismatch")  # fresh again: one wrong answer is not believed
        attempt("same wrong bytes")  # twice: a 304, not a byte fetched
        assert plan.requests[2].headers["If-None-Match"] == '"v1"'
        assert plan.sent() == 2 * SIZE
        # A day later (or the clock stepped back) the memory has expired: fresh again.
        for at in (time.time() - 25 * 3600, time.time() + 3600):
            old = json.loads(marker.read_text())
            marker.write_text(json.dumps({**old, "at": at}))
            attempt("hash mismatch")
            assert "If-None-Match" not in plan.requests[-1].headers
        attempt("same wrong bytes")  # and confirmed again by it
        plan.plans[f"/media/{h}"] = ["ok"]
        plan.etags[f"/media/{h}"] = '"v2"'  # the publisher uploads the right file
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
    assert path.read_bytes() == data


def test_a_marker_of_the_older_release_is_not_believed(
        tmp_path: Path, blob: tuple[bytes, str]) -> None:
    data, h = blob
    plan = Plan(files={f"/media/{h}": data})
    cache = tmp_path / "cache"
    store.partial_dir(cache).mkdir(parents=True)
    (store.partial_dir(cache) / f"{h}.bad").write_text('"v1"')  # the bare ETag it wrote
    with misbehaving(plan) as url:
        path = download.download_http(_session(tmp_path, url), f"{url}media/{h}", cache, h, SIZE)
    assert path.read_bytes() == data


def test_the_engine_gets_a_file_one_corrupted_answer_spoiled(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    files = {f"/{p.relative_to(pub.root)}": p.read_bytes()
             for p in pub.root.rglob("*") if p.is_file()}
    h = sha256(png(1))
    plan = Plan(files=files, plans={f"/media/{h}": ["wrong", "ok"]})
    with misbehaving(plan) as url:
        config = write_config(tmp_path, url, [pubkey])
        conn = store.connect(config.db_path)
        first = Engine(config, conn).sync_once()
        assert first.state is SyncState.INCOMPLETE and "hash mismatch" in first.reason
        r = Engine(config, conn).sync_once()  # the next poll
    assert r.ok, r.reason
    assert store.active_version(conn) == 1


def test_wrong_bytes_are_gone_before_the_answer_is_remembered(tmp_path: Path) -> None:
    """A cut between the two steps (here: the marker cannot be written) must not leave the
    wrong partial behind: found again at the next start, it would "confirm" the bad answer
    without a second download and block the file for a day."""
    partial = tmp_path / "partial" / ("ab" * 32)
    partial.parent.mkdir()
    partial.write_bytes(b"wrong bytes")
    download._write_sidecar(partial, {"url": "http://127.0.0.1:9/media/x", "etag": '"e1"',
                                      "last_modified": ""})
    marker_tmp = partial.with_name(partial.name + ".bad.tmp")
    marker_tmp.mkdir()  # the marker's write fails, as a power cut would stop it
    with pytest.raises(OSError):
        download.reject_partial(partial)
    assert not partial.exists()
    assert not partial.with_name(partial.name + ".json").exists()
