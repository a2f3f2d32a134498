"""The shared database's schema, declared once, and the migrations that bring a file to it.

Both processes open the database through ``store.connect``, which calls :func:`ensure`:

- the usual case, a file at :data:`SCHEMA_VERSION`, costs one read of ``meta.schema``
  and no DDL (the player opens the database often);
- a new file gets :data:`SCHEMA`, the current schema, in one transaction;
- a file of an older release is brought forward by :data:`MIGRATIONS`, in order, in one
  transaction: all of them are on disk, or none of them;
- a file of a newer release is refused (:class:`SchemaTooNew`): the processes stop with
  what to do rather than run old code on a layout it does not know (never downgraded).

Version 1 is the first release (v0.1.0): the eight tables of ``store`` made by
sqlite-utils, and the others made lazily by whichever function first needed them, so on
an old box some of them may be missing. Migration 1 → 2 makes what is missing, with the
very statements the old code used, so a migrated file and a new one are the same schema
(``tests/test_db_migrations.py`` compares their ``sqlite_master``).

To change the schema: write the new statements into :data:`SCHEMA` (what a new file
gets), raise :data:`SCHEMA_VERSION`, and append a :class:`Migration` to that version
(``ALTER TABLE``, ``CREATE ... IF NOT EXISTS``, data moves) that takes a file of the
previous version to exactly the new :data:`SCHEMA`. A released migration never changes:
if :data:`SCHEMA` changes a table that an older migration creates, that migration keeps
its own copy of the statement as it was (:data:`VERSION_2` is frozen for this reason).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

SCHEMA_VERSION = 2
VERSION_KEY = "schema"  # the row of ``meta`` that holds the version (since v0.1.0)

# --- version 2, as released ---------------------------------------------------------------
# The eight tables of the first release, with the text sqlite-utils gave them then (SQLite
# keeps a table's statement as written, so these match the files made by v0.1.0).
_STORE = (
    'CREATE TABLE IF NOT EXISTS "meta" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)',
    # every manifest the box holds: active, pending, superseded, dropped, refused
    'CREATE TABLE IF NOT EXISTS "manifests" (\n   "version" INTEGER PRIMARY KEY,\n'
    '   "board" TEXT,\n   "state" TEXT,\n   "issued_at" TEXT,\n   "received_at" TEXT,\n'
    '   "keyid" TEXT,\n   "body" BLOB,\n   "reason" TEXT\n)',
    # media present in the cache and verified by SHA-256
    'CREATE TABLE IF NOT EXISTS "media" (\n   "sha256" TEXT PRIMARY KEY,\n'
    '   "size" INTEGER,\n   "type" TEXT,\n   "verified_at" TEXT,\n   "last_used" TEXT\n)',
    'CREATE TABLE IF NOT EXISTS "refusals" (\n   "id" INTEGER PRIMARY KEY,\n   "at" TEXT,\n'
    '   "subject" TEXT,\n   "reason" TEXT\n)',
    # one row per component (player, sync, cap ...): JSON
    'CREATE TABLE IF NOT EXISTS "status" (\n   "component" TEXT PRIMARY KEY,\n'
    '   "updated_at" TEXT,\n   "data" TEXT\n)',
    # the proof-of-play outbox
    'CREATE TABLE IF NOT EXISTS "plays" (\n   "id" TEXT PRIMARY KEY,\n   "item_id" TEXT,\n'
    '   "playlist_id" TEXT,\n   "manifest_version" INTEGER,\n   "started_at" TEXT,\n'
    '   "ended_at" TEXT,\n   "duration_s" REAL,\n   "outcome" TEXT,\n   "detail" TEXT\n)',
    # playlists from a trusted local source (CAP), beside the manifest's
    'CREATE TABLE IF NOT EXISTS "overlays" (\n   "id" TEXT PRIMARY KEY,\n   "source" TEXT,\n'
    '   "updated_at" TEXT,\n   "body" TEXT\n)',
    # verified bytes that must never be shown (so they are not fetched again)
    'CREATE TABLE IF NOT EXISTS "refused_media" (\n   "sha256" TEXT PRIMARY KEY,\n'
    '   "at" TEXT,\n   "reason" TEXT\n)',
)

# The status side (issue 5), made lazily by v0.1.0.
_STATUS = (
    # outbox records folded into per-item counts for their local day when the outbox
    # would pass status.outbox_max_records; each row has its own UUID and is uploaded
    # like a record, then deleted on acknowledgement
    """CREATE TABLE IF NOT EXISTS play_counts(
    id TEXT PRIMARY KEY, day TEXT NOT NULL, playlist_id TEXT NOT NULL,
    item_id TEXT NOT NULL, outcome TEXT NOT NULL, plays INTEGER NOT NULL,
    seconds REAL NOT NULL, first_started TEXT, last_ended TEXT, folded_at TEXT NOT NULL)""",
    # per day, playlist, item and outcome, every play that has left the outbox
    # (acknowledged or folded); with plays it feeds `eboard report`
    """CREATE TABLE IF NOT EXISTS play_history(
    day TEXT NOT NULL, playlist_id TEXT NOT NULL, item_id TEXT NOT NULL,
    outcome TEXT NOT NULL, plays INTEGER NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY(day, playlist_id, item_id, outcome))""",
    # ids sent in a batch whose answer has not been read yet: re-sent first and never
    # folded, so a kill mid-upload cannot make the server count a play twice
    "CREATE TABLE IF NOT EXISTS outbox_inflight(id TEXT PRIMARY KEY, sent_at TEXT NOT NULL)",
    # records the server refused (with its reason), kept for a human
    """CREATE TABLE IF NOT EXISTS plays_rejected(
    id TEXT PRIMARY KEY, record TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL)""",
    # every remote command seen, by id (executed at most once), with its result until a
    # heartbeat has carried it to the server
    """CREATE TABLE IF NOT EXISTS command_results(
    id TEXT PRIMARY KEY, command TEXT NOT NULL, received_at TEXT NOT NULL,
    state TEXT NOT NULL, ok INTEGER, detail TEXT NOT NULL DEFAULT '',
    finished_at TEXT, reported_at TEXT)""",
    # what the sync side asks the player to do (content_sync/db/player_requests.py)
    """CREATE TABLE IF NOT EXISTS player_requests(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, args TEXT NOT NULL DEFAULT '{}',
    origin TEXT NOT NULL DEFAULT 'command', created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', ok INTEGER, detail TEXT NOT NULL DEFAULT '',
    done_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS player_requests_state ON player_requests(state, created_at)",
    # batches and folding read the oldest records without sorting the whole outbox
    "CREATE INDEX IF NOT EXISTS plays_started ON plays(started_at, id)",
)

_OTHERS = (
    # media the player could not show (content_sync/db/damaged.py)
    "CREATE TABLE IF NOT EXISTS damaged_media("
    "sha256 TEXT PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL)",
    # CAP alert state across polls and restarts (content_sync/cap/alerts.py)
    "CREATE TABLE IF NOT EXISTS cap_alerts ("
    " key TEXT PRIMARY KEY, feed TEXT NOT NULL, origin TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL, msg_type TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',"
    " sent TEXT NOT NULL DEFAULT '', ends TEXT NOT NULL DEFAULT '', body TEXT,"
    " first_seen TEXT NOT NULL, updated_at TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS cap_alerts_feed ON cap_alerts(feed, state)",
)

VERSION_2: tuple[str, ...] = _STORE + _STATUS + _OTHERS

# --- the current schema --------------------------------------------------------------------
SCHEMA: tuple[str, ...] = VERSION_2
"""Every table and index of the shared database now: what a new file gets."""


@dataclass(frozen=True)
class Migration:
    """Takes a file from ``to_version - 1`` to ``to_version``."""

    to_version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "one declared schema: make every table v0.1.0 made lazily, if missing",
              VERSION_2),
)


class Opened(Enum):
    """What :func:`ensure` found, and so did."""

    CURRENT = "current"    # at SCHEMA_VERSION already: one read, nothing written
    CREATED = "created"    # a new file: it got SCHEMA
    MIGRATED = "migrated"  # an older file: MIGRATIONS brought it to SCHEMA_VERSION


class SchemaTooNew(Exception):
    """The file was written by a newer release than this code: refuse, never downgrade."""

    def __init__(self, path: str, found: int) -> None:
        self.path, self.found = path, found
        super().__init__(
            f"the database {path} is at schema version {found}, written by a newer eboard; "
            f"this eboard knows versions up to {SCHEMA_VERSION} and will not use it (it "
            "would downgrade it). Reinstall the newer eboard release that wrote it. To go "
            "back to this release instead, stop eboard-sync and eboard-player and move the "
            "file aside (with its -wal and -shm files): the sync fetches the content again, "
            "but proof of play not yet sent from that file is lost.")


@dataclass(frozen=True)
class Plan:
    """What bringing a file from ``found`` to :data:`SCHEMA_VERSION` takes."""

    found: int
    outcome: Opened
    statements: tuple[str, ...]


def plan(found: int, migrations: Sequence[Migration] = MIGRATIONS,
         schema: tuple[str, ...] = SCHEMA, current: int = SCHEMA_VERSION) -> Plan:
    """Pure: the statements that take a file at version ``found`` (0: none recorded) to
    ``current``. Raises :class:`SchemaTooNew` (without a path) for a newer file."""
    if found == current:
        return Plan(found, Opened.CURRENT, ())
    if found > current:
        raise SchemaTooNew("(this file)", found)
    if found <= 0:
        return Plan(found, Opened.CREATED, schema)
    steps = [m for m in migrations if m.to_version > found]
    if [m.to_version for m in steps] != list(range(found + 1, current + 1)):
        raise ValueError(f"no migration path from schema version {found} to {current}")
    return Plan(found, Opened.MIGRATED, tuple(s for m in steps for s in m.statements))


def stored_version(conn: sqlite3.Connection) -> int:
    """The version recorded in ``meta`` (0 for a new file: no ``meta`` yet, or no row)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (VERSION_KEY,)).fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
        return 0
    return 0 if row is None else int(row[0])


def _file_of(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2]) or "(in memory)"
    return "(unknown)"


def ensure(conn: sqlite3.Connection) -> Opened:
    """Bring the database to :data:`SCHEMA_VERSION` (call outside a transaction).

    One read when it is current. Otherwise one IMMEDIATE transaction that reads the
    version again (the other process may have just done it), runs the plan and records
    the version. Raises :class:`SchemaTooNew` for a file of a newer release.
    """
    try:
        if plan(stored_version(conn)).outcome is Opened.CURRENT:
            return Opened.CURRENT
        conn.execute("BEGIN IMMEDIATE")
        try:
            todo = plan(stored_version(conn))
            for statement in todo.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                         "DO UPDATE SET value=excluded.value", (VERSION_KEY, str(SCHEMA_VERSION)))
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except SchemaTooNew as e:
        raise SchemaTooNew(_file_of(conn), e.found) from None
    return todo.outcome
