"""Media damaged on disk after activation (content_sync/board/repair.py): found by the next sync
run and fetched again while the active manifest stays active. Real servers on 127.0.0.1,
real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from content_sync.board import repair
from content_sync.board.engine import Engine, SyncState
from content_sync.db import damaged, store
from kiosk_config import Config
from player import content
from player.records import Writer
from tests.kit.sync import (
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
    src: Path
    pub: Publisher
    served: Served
    config: Config
    conn: sqlite3.Connection

    def path(self, data: bytes) -> Path:
        return store.media_path(self.config.cache_dir, sha256(data))

    def intact(self, data: bytes) -> bool:
        p = self.path(data)
        return p.is_file() and sha256(p.read_bytes()) == sha256(data)

    def media_hits(self) -> int:
        return sum(1 for h in self.served.log.hits if h.path.startswith("/media/"))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    (tmp_path / "src").mkdir()
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        yield Env(tmp_path / "src", pub, served, config, conn)
        conn.close()


A, B, C = big_bmp(1, 60), png(2), png(3)


def test_stat_check_each_run_fetches_truncated_and_deleted_media_again(env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp"), "b": (B, "image/png"), "c": (C, "image/png")})
    engine = Engine(env.config, env.conn)  # one engine, as in the daemon
    assert engine.sync_once().state == SyncState.UP_TO_DATE
    with open(env.path(A), "r+b") as f:
        f.truncate(100)
    env.path(B).unlink()
    gen, hits = store.generation(env.conn), env.media_hits()

    r = engine.sync_once()  # not the first run: the cheap stat check, no full hash
    assert r.state == SyncState.UP_TO_DATE, r.reason
    assert "fetched again" in r.reason and r.downloaded_files == 2, r
    assert env.intact(A) and env.intact(B) and env.intact(C)
    assert env.media_hits() == hits + 2  # only the damaged two
    assert store.active_version(env.conn) == 1
    assert store.generation(env.conn) > gen  # the player reloads and shows them again
    notes = [n for n in store.recent_refusals(env.conn) if "fetching it again" in n["reason"]]
    assert len(notes) == 2 and any("bytes, not the" in n["reason"] for n in notes), notes

    r = engine.sync_once()  # nothing damaged now: an ordinary up-to-date run
    assert r.state == SyncState.UP_TO_DATE and "newest the source offers" in r.reason
    assert env.media_hits() == hits + 2


def test_same_size_corruption_found_by_the_full_check_at_start_and_daily(env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp"), "b": (B, "image/png")})
    engine = Engine(env.config, env.conn)
    assert engine.sync_once().state == SyncState.UP_TO_DATE
    assert not repair.full_due(env.conn)

    def flip() -> None:
        data = bytearray(env.path(A).read_bytes())
        data[len(data) // 2] ^= 0xFF
        env.path(A).write_bytes(bytes(data))

    flip()
    engine.sync_once()  # same size, full check not due: not seen yet
    assert not env.intact(A)
    # A day later the full re-verification runs again and finds it.
    day_ago = (datetime.now(UTC) - timedelta(hours=25)).isoformat(timespec="seconds")
    with store.transaction(env.conn):
        store.set_meta(env.conn, repair.VERIFIED_AT, day_ago)
    r = engine.sync_once()
    assert r.state == SyncState.UP_TO_DATE and r.downloaded_files == 1, r
    assert env.intact(A) and env.intact(B)
    assert not repair.full_due(env.conn)

    # A restart (a new engine) verifies in full at its first run.
    flip()
    r = Engine(env.config, env.conn).sync_once()
    assert r.downloaded_files == 1 and env.intact(A), r


def test_damaged_media_the_source_no_longer_has_waits_and_its_item_is_skipped(
        env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp"), "b": (B, "image/png")})
    engine = Engine(env.config, env.conn)
    assert engine.sync_once().state == SyncState.UP_TO_DATE
    env.path(A).unlink()
    hidden = env.src / "media" / sha256(A)
    hidden.rename(hidden.with_suffix(".away"))

    r = engine.sync_once()
    assert r.state == SyncState.INCOMPLETE, r
    assert "wait to be fetched again" in r.reason and "skipped" in r.reason, r.reason
    assert store.active_version(env.conn) == 1  # still active: the rest plays
    shown = content.load(env.conn, env.config.cache_dir)
    assert sha256(A) not in shown.available and sha256(B) in shown.available
    assert sha256(A) not in store.known_media(env.conn)

    hidden.with_suffix(".away").rename(hidden)
    r = engine.sync_once()
    assert r.state == SyncState.UP_TO_DATE and env.intact(A), r
    assert sha256(A) in content.load(env.conn, env.config.cache_dir).available


def test_damaged_media_kept_by_a_new_version_is_fetched_with_it(env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp"), "b": (B, "image/png")})
    engine = Engine(env.config, env.conn)
    assert engine.sync_once().state == SyncState.UP_TO_DATE
    with open(env.path(A), "r+b") as f:
        f.truncate(10)
    env.pub.publish(2, {"a": (A, "image/bmp"), "c": (C, "image/png")})
    r = engine.sync_once()
    assert r.state == SyncState.UP_TO_DATE and store.active_version(env.conn) == 2, r
    assert env.intact(A) and env.intact(C)


def test_check_leaves_unrecorded_and_intact_media_alone(env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp")})
    assert Engine(env.config, env.conn).sync_once().state == SyncState.UP_TO_DATE
    assert repair.check(env.conn, env.config.cache_dir, {sha256(A), "0" * 64}, True) == {}
    assert env.intact(A)


def test_media_the_player_reports_is_verified_at_once_and_fetched_again(env: Env) -> None:
    env.pub.publish(1, {"a": (A, "image/bmp"), "b": (B, "image/png")})
    engine = Engine(env.config, env.conn)
    assert engine.sync_once().state == SyncState.UP_TO_DATE
    data = bytearray(env.path(A).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only a hash finds it
    env.path(A).write_bytes(bytes(data))
    # The player's own writer thread reports both; only A is really damaged.
    w = Writer(env.config.db_path)
    w.damaged(sha256(A), "cannot decode image")
    w.damaged(sha256(B), "cannot decode image")
    w.close()

    r = engine.sync_once()  # full check not due: the report makes it hash A and B
    assert r.state == SyncState.UP_TO_DATE and r.downloaded_files == 1, r
    assert env.intact(A) and env.intact(B)
    assert damaged.take(env.conn) == {}  # the reports were taken
