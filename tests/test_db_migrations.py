"""The shared database's schema versions: a box of the previous release upgrades in place.

tests/fixtures/v0.1.0-box.db was written by eboard v0.1.0's own code
(tests/fixtures/make_v010_db.py): an active and a pending manifest, refusals, proof of
play acknowledged, refused, folded and in flight, status rows, remote commands and player
requests, a damaged media, a CAP alert. Each test opens a copy with the current code.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from content_sync.db import damaged, player_requests, schema, store
from content_sync.protocol import Playlist, parse_manifest
from content_sync.report import Executor, outbox
from eboard.commands.status import collect
from tests.kit.status import make_config, reference_server

FIXTURE = Path(__file__).parent / "fixtures" / "v0.1.0-box.db"
ROOT = Path(__file__).resolve().parents[1]
# What v0.1.0 made lazily, so that a box of that release may lack any of it.
LAZY = ("play_counts", "play_history", "outbox_inflight", "plays_rejected", "command_results",
        "player_requests", "damaged_media", "cap_alerts")


def old_box(tmp_path: Path) -> Path:
    """A copy of the v0.1.0 box database in a box's cache directory."""
    db = tmp_path / "box" / "cache" / "eboard.db"
    db.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE, db)
    return db


def raw(db: Path) -> sqlite3.Connection:
    """A plain connection: reads the file as it is, changes nothing by opening it."""
    return sqlite3.connect(db, isolation_level=None)


def layout(conn: sqlite3.Connection) -> set[tuple[str, str, str, str | None]]:
    return {tuple(r) for r in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")}


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rows(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, the version row of meta aside."""
    return {t: sorted(tuple(r) for r in conn.execute(
                f'SELECT * FROM "{t}"' + (" WHERE key<>'schema'" if t == "meta" else "")))
            for t in sorted(tables(conn))}


def fresh_layout(tmp_path: Path) -> set[tuple[str, str, str, str | None]]:
    conn = store.connect(tmp_path / "fresh" / "eboard.db")
    try:
        return layout(conn)
    finally:
        conn.close()


def test_a_v010_box_is_migrated_with_nothing_lost(tmp_path: Path) -> None:
    db = old_box(tmp_path)
    before = raw(db)
    assert schema.stored_version(before) == 1
    kept = rows(before)
    before.close()

    conn = store.connect(db)
    assert schema.stored_version(conn) == schema.SCHEMA_VERSION
    assert rows(conn) == kept  # every row of every table, unchanged
    # ... and readable through today's functions
    shown = store.active_manifest(conn)
    assert shown is not None and shown.version == 1001 and shown.keyid == "laichau-2026"
    assert parse_manifest(shown.body).playlists[0].title == "Thông báo tháng 11"
    assert store.pending_version(conn) == 1002
    assert store.generation(conn) == 2
    assert [r["subject"] for r in store.recent_refusals(conn)] == ["manifest.json",
                                                                  "manifest 999"]
    assert list(store.refused_media(conn).values()) == ["image of 40000x40000 pixels"]
    assert store.get_status(conn, "player")["state"] == "playing"  # type: ignore[index]
    assert store.get_status(conn, "sync")["active_version"] == 1001  # type: ignore[index]
    [overlay] = store.overlays(conn)
    assert Playlist.model_validate_json(overlay).priority == "emergency"
    assert store.outbox_size(conn) == 93 and outbox.counts_waiting(conn) == 3
    assert [r["id"] for r in player_requests.pending(conn)] == ["cmd-shot"]
    assert player_requests.screen_forced_off(conn)
    assert list(damaged.take(conn).values()) == ["cannot decode: truncated JPEG"]
    assert [r[0] for r in conn.execute("SELECT state FROM cap_alerts")] == ["active"]
    conn.close()


def test_the_new_code_works_on_a_migrated_box(tmp_path: Path) -> None:
    db = old_box(tmp_path)
    conn = store.connect(db)
    pending = store.pending_version(conn)
    body = conn.execute("SELECT body FROM manifests WHERE version=?", (pending,)).fetchone()[0]
    media = parse_manifest(bytes(body)).media
    with store.transaction(conn):
        for sha, info in media.items():
            store.record_media(conn, sha, info.size, info.type)
    store.activate(conn, 1002, "test.status-01", "2026-11-24T09:00:00+07:00", bytes(body),
                   "laichau-2026", list(media))
    assert store.active_version(conn) == 1002 and store.generation(conn) == 3
    store.add_play(conn, {"id": "2b7e9a52-5f7c-4c55-9a43-9f7f7bbd0001", "item_id": "tb-1",
                          "playlist_id": "thong-bao-t11", "manifest_version": 1002,
                          "started_at": datetime.now(UTC).isoformat(), "ended_at": "",
                          "duration_s": 20.0, "outcome": "played"})
    # the outbox, in flight since v0.1.0, reaches today's reference server exactly once
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        from content_sync.net import make_session

        result = outbox.upload_plays_once(config, conn, make_session(config, retries=0))
    assert result.error is None or result.error == "", result.error
    assert (result.accepted, result.remaining, result.counts_accepted) == (94, 0, 3)
    ex = Executor(config, conn)
    # the screenshot the v0.1.0 player never answered is long past the player's time limit
    # (the fixture's rows keep the time they were written): failed, with the reason
    results = {r["id"]: r for r in ex.results_to_report()}
    assert {k: r["state"] for k, r in results.items()} == {"cmd-off": "done", "cmd-log": "done",
                                                           "cmd-shot": "failed"}
    assert "did not answer" in results["cmd-shot"]["detail"]
    conn.close()


def test_a_v010_box_without_its_lazy_tables_gets_them(tmp_path: Path) -> None:
    """On a box where v0.1.0 never needed them, the status, damage and CAP tables are
    missing; the migration makes them as that release would have."""
    db = old_box(tmp_path)
    conn = raw(db)
    for table in LAZY:
        conn.execute(f"DROP TABLE {table}")
    kept = rows(conn)
    conn.close()
    conn = store.connect(db)
    assert layout(conn) == fresh_layout(tmp_path)
    assert {t: r for t, r in rows(conn).items() if t not in LAZY} == kept
    assert player_requests.pending(conn) == [] and outbox.counts_waiting(conn) == 0
    conn.close()


def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """All of it, or none of it: here the last table cannot be made (its name is taken)."""
    db = old_box(tmp_path)
    conn = raw(db)
    for table in LAZY:
        conn.execute(f"DROP TABLE {table}")
    conn.execute("CREATE INDEX cap_alerts ON plays(outcome)")
    before = layout(conn), rows(conn)
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="already an index named cap_alerts"):
        store.connect(db)
    conn = raw(db)
    assert (layout(conn), rows(conn)) == before and schema.stored_version(conn) == 1
    conn.close()


def test_a_new_file_and_a_migrated_one_have_the_same_schema(tmp_path: Path) -> None:
    conn = store.connect(old_box(tmp_path))
    assert layout(conn) == fresh_layout(tmp_path)
    declared = {m[1] for s in schema.SCHEMA
                if (m := re.match(r'CREATE TABLE IF NOT EXISTS "?(\w+)', s))}
    assert tables(conn) == declared and len(declared) == 16
    conn.close()


def test_reopening_a_current_file_is_one_read(tmp_path: Path) -> None:
    db = old_box(tmp_path)
    store.connect(db).close()
    conn = raw(db)
    before = layout(conn), rows(conn)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert schema.ensure(conn) is schema.Opened.CURRENT
    assert statements == ["SELECT value FROM meta WHERE key='schema'"]
    assert conn.total_changes == 0
    conn.set_trace_callback(None)
    assert (layout(conn), rows(conn)) == before
    conn.close()


def test_opening_needs_no_sqlite_utils(tmp_path: Path) -> None:
    """Its import costs the player ~140 ms and ~17 MB; plain SQL does the job."""
    db = old_box(tmp_path)
    code = ("import sys; from pathlib import Path; from content_sync.db import store; "
            f"store.connect(Path({str(tmp_path / 'new.db')!r})).close(); "
            f"store.connect(Path({str(db)!r})).close(); "
            "print('sqlite_utils' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_a_file_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    db = config.db_path
    db.parent.mkdir(parents=True)
    conn = raw(db)
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(schema.SCHEMA_VERSION + 1),))
    before = layout(conn), rows(conn)
    conn.close()
    with pytest.raises(schema.SchemaTooNew) as e:
        store.connect(db)
    text = str(e.value)
    assert str(db) in text and f"schema version {schema.SCHEMA_VERSION + 1}" in text
    assert f"up to {schema.SCHEMA_VERSION}" in text and "Reinstall" in text
    conn = raw(db)
    assert (layout(conn), rows(conn)) == before  # not downgraded, nothing added
    conn.close()
    assert collect(config).error == text  # `eboard status` says it too


def test_the_plan() -> None:
    assert schema.plan(schema.SCHEMA_VERSION).outcome is schema.Opened.CURRENT
    assert schema.plan(0).statements == schema.SCHEMA
    assert schema.plan(1).outcome is schema.Opened.MIGRATED
    with pytest.raises(schema.SchemaTooNew):
        schema.plan(schema.SCHEMA_VERSION + 1)
    gap = [schema.Migration(3, "three", ("SELECT 3",))]
    with pytest.raises(ValueError, match="no migration path from schema version 1 to 3"):
        schema.plan(1, gap, current=3)
    steps = [schema.Migration(2, "two", ("SELECT 2",)), *gap]
    assert schema.plan(1, steps, current=3).statements == ("SELECT 2", "SELECT 3")
    assert schema.plan(2, steps, current=3).statements == ("SELECT 3",)
