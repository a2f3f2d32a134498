"""content_sync/board/cache.py on real files and a real SQLite database: the byte quota,
least-recently-used eviction that spares what a manifest references, partial and orphan
clean-up, adoption of files left without their row, and reconciliation."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_sync.board import cache
from content_sync.db import store
from content_sync.protocol.manifest import MediaInfo
from tests.kit.sync import noise, sha256

KB = 1024


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "eboard.db")
    yield c
    c.close()


def _put(conn: sqlite3.Connection, cache_dir: Path, data: bytes, last_used: str,
         row: bool = True) -> str:
    """A media file in media/, recorded (with ``last_used``) unless ``row`` is False."""
    sha = sha256(data)
    path = store.media_path(cache_dir, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if row:
        with store.transaction(conn):
            store.record_media(conn, sha, len(data), "image/png")
            conn.execute("UPDATE media SET last_used=? WHERE sha256=?", (last_used, sha))
    return sha


def _activate(conn: sqlite3.Connection, version: int, media: list[str]) -> None:
    body = json.dumps({"version": version, "media": {s: {} for s in media}}).encode()
    store.activate(conn, version, "b", "2026-11-24T08:00:00+07:00", body, "k", media)


def _three(conn: sqlite3.Connection, cache_dir: Path) -> list[str]:
    """Three media of 10 KiB, the first the least recently used."""
    return [_put(conn, cache_dir, noise(10 * KB, seed=i), f"2026-11-2{i}T00:00:00+00:00")
            for i in range(3)]


def test_within_the_quota_nothing_is_evicted(conn: sqlite3.Connection, tmp_path: Path) -> None:
    a, b, c = _three(conn, tmp_path)
    assert cache.make_room(conn, tmp_path, 10 * KB, 40 * KB, set())
    assert store.known_media(conn) == {a, b, c}


def test_over_the_quota_the_least_recently_used_go_first_rows_and_files(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    a, b, c = _three(conn, tmp_path)
    assert cache.make_room(conn, tmp_path, 20 * KB, 40 * KB, set())
    assert store.known_media(conn) == {b, c}
    assert not store.media_path(tmp_path, a).exists()
    assert store.media_path(tmp_path, b).exists() and store.media_path(tmp_path, c).exists()


def test_media_of_the_active_manifest_and_of_keep_are_never_evicted(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    a, b, c = _three(conn, tmp_path)
    _activate(conn, 1, [a])
    assert not cache.make_room(conn, tmp_path, 30 * KB, 40 * KB, keep={b})
    assert store.known_media(conn) == {a, b}  # c went, and still it does not fit
    assert store.media_path(tmp_path, a).exists() and store.media_path(tmp_path, b).exists()


def test_partial_downloads_count_in_the_quota(conn: sqlite3.Connection, tmp_path: Path) -> None:
    a, b, c = _three(conn, tmp_path)
    partial = store.partial_dir(tmp_path)
    partial.mkdir()
    (partial / ("d" * 64)).write_bytes(noise(10 * KB, seed=9))
    assert cache.partial_bytes(tmp_path) == 10 * KB
    assert cache.make_room(conn, tmp_path, 10 * KB, 40 * KB, set())  # 30 + 10 + 10 > 40
    assert store.known_media(conn) == {b, c}


def test_partials_of_media_not_kept_go_with_their_sidecars(tmp_path: Path) -> None:
    partial = store.partial_dir(tmp_path)
    partial.mkdir()
    keep, drop = "a" * 64, "b" * 64
    for name in (keep, f"{keep}.json", drop, f"{drop}.json", f"{drop}.bad"):
        (partial / name).write_bytes(b"x")
    assert cache.clean_partials(tmp_path, keep={keep}) == 3
    assert sorted(p.name for p in partial.iterdir()) == [keep, f"{keep}.json"]


def test_orphan_files_in_media_are_removed_known_ones_stay(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    known = _put(conn, tmp_path, noise(100, seed=1), "2026-11-21T00:00:00+00:00")
    orphan = _put(conn, tmp_path, noise(100, seed=2), "", row=False)
    (store.media_dir(tmp_path) / "notes.txt").write_text("not a media")
    assert cache.clean_orphans(conn, tmp_path) == 2
    assert [p.name for p in store.media_dir(tmp_path).iterdir()] == [known]
    assert not store.media_path(tmp_path, orphan).exists()


def test_a_file_without_its_row_is_adopted_only_if_it_verifies(tmp_path: Path) -> None:
    good, bad, short = noise(500, seed=1), noise(500, seed=2), noise(500, seed=3)
    d = store.media_dir(tmp_path)
    d.mkdir()
    (d / sha256(good)).write_bytes(good)
    (d / sha256(bad)).write_bytes(noise(500, seed=4))  # the right size, the wrong bytes
    (d / sha256(short)).write_bytes(short[:-1])
    need = {sha256(x): MediaInfo(size=500, type="image/png") for x in (good, bad, short)}
    need["f" * 64] = MediaInfo(size=500, type="image/png")  # not there at all
    assert cache.adopt(tmp_path, need) == {sha256(good)}
    assert [p.name for p in d.iterdir()] == [sha256(good)]  # the others deleted


def test_rows_whose_file_is_gone_are_dropped(conn: sqlite3.Connection, tmp_path: Path) -> None:
    a, b, c = _three(conn, tmp_path)
    store.media_path(tmp_path, b).unlink()
    assert cache.missing_files(conn, tmp_path, {a, b}) == {b}
    assert store.known_media(conn) == {a, c}


def test_reconcile_makes_the_cache_and_its_rows_agree(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    kept = _put(conn, tmp_path, noise(100, seed=1), "2026-11-21T00:00:00+00:00")
    gone = _put(conn, tmp_path, noise(100, seed=2), "2026-11-21T00:00:00+00:00")
    store.media_path(tmp_path, gone).unlink()
    adopted = _put(conn, tmp_path, noise(100, seed=3), "", row=False)
    orphan = _put(conn, tmp_path, noise(100, seed=4), "", row=False)
    partial = store.partial_dir(tmp_path)
    partial.mkdir()
    for name in (gone, "9" * 64):  # a partial of a missing media, and of one not wanted
        (partial / name).write_bytes(b"x")
    media = {s: MediaInfo(size=100, type="image/png") for s in (kept, gone, adopted)}
    assert cache.reconcile(conn, tmp_path, media) == {kept, adopted}
    assert store.known_media(conn) == {kept, adopted}
    assert not store.media_path(tmp_path, orphan).exists()
    assert [p.name for p in partial.iterdir()] == [gone]  # still to resume
