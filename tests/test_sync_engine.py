"""The sync pipeline against real servers on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from content_sync.board.engine import Engine, SyncResult, SyncState
from content_sync.db import store
from kiosk_config import Config
from tests.kit.sync import (
    BOARD,
    Publisher,
    Served,
    StaticApp,
    big_bmp,
    make_keys,
    png,
    serve_wsgi,
    sha256,
    write_config,
)


@dataclass
class Env:
    tmp: Path
    pub: Publisher
    pubkey: Path
    app: StaticApp
    served: Served
    config: Config
    conn: sqlite3.Connection

    def sync(self) -> SyncResult:
        return Engine(self.config, self.conn).sync_once()

    def reconfigure(self, **source: Any) -> None:
        self.config = write_config(self.tmp, self.served.url, [self.pubkey], **source)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    (tmp_path / "src").mkdir()
    app = StaticApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        yield Env(tmp_path, pub, pubkey, app, served, config, conn)
        conn.close()


def active_media_complete(conn: sqlite3.Connection, cache_dir: Path) -> bool:
    m = store.active_manifest(conn)
    if m is None:
        return True
    media = json.loads(m.body)["media"]
    return all(store.media_path(cache_dir, h).is_file() and
               sha256(store.media_path(cache_dir, h).read_bytes()) == h for h in media)


def test_first_sync_activates_verified_media(env: Env) -> None:
    body = env.pub.publish(1, {"a": (png(1), "image/png"), "b": (png(2), "image/png")})
    r = env.sync()
    assert r.state == SyncState.UP_TO_DATE, r.reason
    assert r.ok and r.active_version == 1 and r.downloaded_files == 2
    assert store.active_version(env.conn) == 1
    assert active_media_complete(env.conn, env.config.cache_dir)
    active = store.active_manifest(env.conn)
    assert active and set(json.loads(active.body)["media"]) == set(body["media"])
    status = store.get_status(env.conn, "sync")
    assert status and status["state"] == "up_to_date" and status["last_success"]


def test_no_change_poll_is_one_conditional_request_answered_304(env: Env) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    env.app.log.clear()
    r = env.sync()
    assert r.ok and r.state == SyncState.UP_TO_DATE
    hits = env.app.log.hits
    assert [(h.path, h.status) for h in hits] == [(f"/boards/{BOARD}/manifest.json", 304)]
    assert "If-None-Match" in hits[0].headers or "If-Modified-Since" in hits[0].headers


def test_new_version_downloads_only_new_media(env: Env) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    env.app.log.clear()
    env.pub.publish(2, {"a": (png(1), "image/png"), "b": (png(2), "image/png")})
    r = env.sync()
    assert r.ok and r.active_version == 2
    assert env.app.log.paths("/media/") == [f"/media/{sha256(png(2))}"]


def test_forged_signature_is_refused_and_old_content_stays(env: Env, tmp_path: Path) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    stranger, _ = make_keys(tmp_path / "stranger")
    env.pub.write(env.pub.manifest(2, {"b": (png(2), "image/png")}), key=stranger)
    r = env.sync()
    assert r.state == SyncState.REFUSED and not r.ok
    assert "no valid signature by a trusted key" in r.reason
    assert store.active_version(env.conn) == 1
    assert env.app.log.paths("/media/") == [f"/media/{sha256(png(1))}"]  # nothing fetched
    refusals = store.recent_refusals(env.conn)
    assert len(refusals) == 1 and "signature" in refusals[0]["reason"]
    status = store.get_status(env.conn, "sync")  # what the heartbeat reports
    assert status and "signature" in status["errors"][0] and "signature" in status["last_error"]
    env.sync()  # the same refusal again: recorded (and logged) once
    assert len(store.recent_refusals(env.conn)) == 1


def test_rollback_is_refused(env: Env) -> None:
    env.pub.publish(5, {"a": (png(1), "image/png")})
    assert env.sync().ok
    env.pub.publish(4, {"b": (png(2), "image/png")})
    r = env.sync()
    assert r.state == SyncState.REFUSED and "rollback" in r.reason
    assert store.active_version(env.conn) == 5


def test_manifest_for_another_board_is_refused(env: Env) -> None:
    env.pub.write(env.pub.manifest(1, board="other.board-02"))
    r = env.sync()
    assert r.state == SyncState.REFUSED and "other.board-02" in r.reason
    assert store.active_version(env.conn) == 0


@pytest.mark.parametrize("payload, words", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"format": "eboard.manifest/1", "board": BOARD}).encode(), "version"),
    (json.dumps({"format": "eboard.manifest/1", "board": BOARD, "version": "x",
                 "issued_at": "2026-11-24T08:00:00+07:00"}).encode(), "version"),
    (json.dumps({"format": "eboard.manifest/1", "board": BOARD, "version": 3,
                 "issued_at": "2026-11-24T08:00:00+07:00",
                 "media": {"../../etc/passwd": {"size": 1, "type": "image/png"}}}).encode(),
     "64 lowercase hex"),
])
def test_malformed_manifest_is_refused_with_one_line(env: Env, payload: bytes, words: str
                                                     ) -> None:
    env.pub.write(payload)
    r = env.sync()
    assert r.state == SyncState.REFUSED and words in r.reason
    assert "\n" not in r.reason and "Traceback" not in r.reason
    assert env.app.log.paths("/media/") == []


def test_traversal_request_never_leaves_media_dir(env: Env) -> None:
    # The server would happily serve a traversal; the manifest parser refuses the name first.
    env.pub.write(json.dumps({
        "format": "eboard.manifest/1", "board": BOARD, "version": 1, "issued_at":
        "2026-11-24T08:00:00+07:00", "media": {"..%2f..%2fkeys": {"size": 1,
                                                                 "type": "image/png"}}}).encode())
    r = env.sync()
    assert r.state == SyncState.REFUSED and "64 lowercase hex" in r.reason
    assert env.app.log.paths("/media/") == []


def test_hash_mismatch_keeps_old_manifest_and_retries(env: Env) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    body = env.pub.publish(2, {"b": (png(2), "image/png")})
    h = next(iter(body["media"]))
    (env.pub.root / "media" / h).write_bytes(png(3)[: len(png(2))].ljust(len(png(2)), b"\0"))
    r = env.sync()
    assert r.state == SyncState.INCOMPLETE and "hash mismatch" in r.reason
    assert "hash mismatch" in store.recent_refusals(env.conn, 1)[0]["reason"]
    assert store.active_version(env.conn) == 1 and store.pending_version(env.conn) == 2
    assert not store.partial_dir(env.config.cache_dir).joinpath(h).exists()
    env.app.log.clear()
    r = env.sync()  # one wrong answer is not believed: fetched again, unconditionally
    assert r.state == SyncState.INCOMPLETE and "hash mismatch" in r.reason
    assert [(x.path, x.status) for x in env.app.log.hits if x.path.startswith("/media/")] == \
        [(f"/media/{h}", 200)]
    env.app.log.clear()
    r = env.sync()  # wrong twice: a conditional request, the wrong bytes not fetched again
    assert r.state == SyncState.INCOMPLETE and "same wrong bytes" in r.reason
    assert [(x.path, x.status) for x in env.app.log.hits if x.path.startswith("/media/")] == \
        [(f"/media/{h}", 304)]
    fixed = env.pub.root / "media" / h
    fixed.write_bytes(png(2))  # the publisher fixes the file: new mtime, new ETag
    os.utime(fixed, (time.time() + 10, time.time() + 10))
    assert env.sync().ok and store.active_version(env.conn) == 2


def test_size_mismatch_is_caught(env: Env) -> None:
    body = env.pub.manifest(1, {"a": (png(1), "image/png")})
    h = next(iter(body["media"]))
    body["media"][h]["size"] -= 10
    env.pub.write(body)
    r = env.sync()
    assert r.state == SyncState.INCOMPLETE and "size mismatch" in r.reason
    assert store.active_version(env.conn) == 0


def test_file_above_size_limit_is_refused_without_download(env: Env) -> None:
    env.reconfigure(max_media_mb=1)
    env.pub.publish(1, {"big": (png(1, (1200, 1200)) + b"\0" * (1 << 20), "image/png")})
    r = env.sync()
    assert r.state == SyncState.REFUSED and "max_media_mb" in r.reason
    assert env.app.log.paths("/media/") == []


def test_pending_manifest_overtaken_by_newer_is_dropped(env: Env) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    body2 = env.pub.publish(2, {"b": (png(2), "image/png")})
    missing = next(iter(body2["media"]))
    (env.pub.root / "media" / missing).unlink()  # v2 cannot complete
    assert env.sync().state == SyncState.INCOMPLETE
    assert store.pending_version(env.conn) == 2
    env.pub.publish(3, {"c": (png(3), "image/png")})
    r = env.sync()
    assert r.ok and r.active_version == 3
    assert store.manifest_state(env.conn, 2) == ("dropped", "overtaken by version 3")
    assert store.pending_version(env.conn) is None


def test_source_down_is_offline_and_keeps_active(env: Env, tmp_path: Path) -> None:
    env.pub.publish(1, {"a": (png(1), "image/png")})
    assert env.sync().ok
    config = write_config(tmp_path, "http://127.0.0.1:9/", [env.pubkey])
    r = Engine(config, env.conn).sync_once()
    assert r.state == SyncState.OFFLINE and "cannot reach" in r.reason
    assert store.active_version(env.conn) == 1
    assert active_media_complete(env.conn, env.config.cache_dir)
    status = store.get_status(env.conn, "sync")
    assert status and status["last_error"] and status["last_success"]


def test_clock_skew_from_date_header(env: Env, tmp_path: Path) -> None:
    env.pub.publish(1)
    with serve_wsgi(env.app, date="Tue, 24 Nov 2026 00:00:00 GMT") as served:
        config = write_config(tmp_path, served.url, [env.pubkey])
        r = Engine(config, env.conn).sync_once()
    expected = (datetime(2026, 11, 24, tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    assert r.clock_skew_s is not None and abs(r.clock_skew_s - expected) < 5
    status = store.get_status(env.conn, "sync")
    assert status and status["clock_skew_s"] == r.clock_skew_s
    assert ("NTP" in (status["clock_warning"] or "")) == (abs(expected) > 300)
    env.sync()  # the real server's Date: the skew is small
    status = store.get_status(env.conn, "sync")
    assert status and abs(status["clock_skew_s"]) < 5 and status["clock_warning"] is None


def test_file_source_same_layout_and_checks(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "usb", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    config = write_config(tmp_path, (tmp_path / "usb").as_uri() + "/", [pubkey])
    conn = store.connect(config.db_path)
    assert Engine(config, conn).sync_once().ok
    assert Engine(config, conn).sync_once().state == SyncState.UP_TO_DATE  # unchanged
    stranger, _ = make_keys(tmp_path / "stranger")
    pub.write(pub.manifest(2), key=stranger)
    assert Engine(config, conn).sync_once().state == SyncState.REFUSED
    (tmp_path / "usb").rename(tmp_path / "unplugged")
    r = Engine(config, conn).sync_once()
    assert r.state == SyncState.OFFLINE and "unplugged" in r.reason
    assert store.active_version(conn) == 1


def test_quota_evicts_least_recently_used_unreferenced_media(env: Env) -> None:
    env.reconfigure(quota_mb=16)
    blobs = [big_bmp(i, 1290) for i in range(4)]  # about 5 MB each
    for i in range(4):  # each version holds one image: 4 × 5 MB > 16 MB only with eviction
        env.pub.publish(i + 1, {f"img{i}": (blobs[i], "image/bmp")})
        assert env.sync().ok, i
    cached = {p.name for p in store.media_dir(env.config.cache_dir).iterdir()}
    assert sha256(blobs[3]) in cached
    assert store.media_bytes(env.conn) <= 16 * 1024 * 1024
    assert sha256(blobs[0]) not in cached  # the oldest, unreferenced, went first


def test_files_left_without_rows_are_adopted_by_hash_or_replaced(env: Env) -> None:
    """A crash between rename and record leaves files in media/ without rows."""
    good, bad = png(1), png(2)
    env.pub.publish(1, {"good": (good, "image/png"), "bad": (bad, "image/png")})
    mdir = store.media_dir(env.config.cache_dir)
    mdir.mkdir(parents=True)
    (mdir / sha256(good)).write_bytes(good)
    (mdir / sha256(bad)).write_bytes(bad[:-1] + b"\0")  # damaged by a power cut
    (mdir / ("0" * 64)).write_bytes(b"stray")  # an orphan nobody wants
    r = env.sync()
    assert r.ok, r.reason
    assert env.app.log.paths("/media/") == [f"/media/{sha256(bad)}"]  # good one not refetched
    assert active_media_complete(env.conn, env.config.cache_dir)
    assert not (mdir / ("0" * 64)).exists()


def test_oversized_manifest_is_not_read_into_memory(env: Env, tmp_path: Path) -> None:
    path = env.pub.root / "boards" / BOARD / "manifest.json"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        f.truncate(33 * 1024 * 1024)  # sparse: a 33 MB "manifest"
    r = env.sync()
    assert r.state == SyncState.SOURCE_ERROR and "larger than 32 MB" in r.reason
    config = write_config(tmp_path, env.pub.root.as_uri() + "/", [env.pubkey])
    r = Engine(config, env.conn).sync_once()
    assert r.state == SyncState.SOURCE_ERROR and "larger than 32 MB" in r.reason
