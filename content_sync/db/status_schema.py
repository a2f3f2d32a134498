"""Tables of the status side (docs/STATUS.md) in the shared database, created if missing.

- ``play_counts``: outbox records folded into per-item counts for their local day
  when the outbox would pass ``status.outbox_max_records``; each row has its own
  UUID and is uploaded like a record, then deleted on acknowledgement.
- ``play_history``: per day, playlist, item and outcome, every play that has left
  the outbox (acknowledged or folded); with ``plays`` it feeds ``eboard report``.
- ``outbox_inflight``: ids sent in a batch whose answer has not been read yet.
  They are re-sent first and never folded, so a kill mid-upload cannot make the
  server count a play twice.
- ``plays_rejected``: records the server refused (with its reason), kept for a human.
- ``command_results``: every remote command seen, by id (executed at most once),
  with its result until a heartbeat has carried it to the server.
- ``player_requests``: what the sync side asks the player to do (screenshot,
  screen on/off, restart); the player polls it and writes the result back.
- the index ``plays_started`` on the outbox, so batches and folding read the
  oldest records without sorting the whole outbox.

Every function that uses these tables calls :func:`ensure` first; it is cheap.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS play_counts(
    id TEXT PRIMARY KEY, day TEXT NOT NULL, playlist_id TEXT NOT NULL,
    item_id TEXT NOT NULL, outcome TEXT NOT NULL, plays INTEGER NOT NULL,
    seconds REAL NOT NULL, first_started TEXT, last_ended TEXT, folded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS play_history(
    day TEXT NOT NULL, playlist_id TEXT NOT NULL, item_id TEXT NOT NULL,
    outcome TEXT NOT NULL, plays INTEGER NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY(day, playlist_id, item_id, outcome));
CREATE TABLE IF NOT EXISTS outbox_inflight(id TEXT PRIMARY KEY, sent_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plays_rejected(
    id TEXT PRIMARY KEY, record TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS command_results(
    id TEXT PRIMARY KEY, command TEXT NOT NULL, received_at TEXT NOT NULL,
    state TEXT NOT NULL, ok INTEGER, detail TEXT NOT NULL DEFAULT '',
    finished_at TEXT, reported_at TEXT);
CREATE TABLE IF NOT EXISTS player_requests(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, args TEXT NOT NULL DEFAULT '{}',
    origin TEXT NOT NULL DEFAULT 'command', created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', ok INTEGER, detail TEXT NOT NULL DEFAULT '',
    done_at TEXT);
CREATE INDEX IF NOT EXISTS player_requests_state ON player_requests(state, created_at);
CREATE INDEX IF NOT EXISTS plays_started ON plays(started_at, id);
"""


NAMES = ("play_counts", "play_history", "outbox_inflight", "plays_rejected",
         "command_results", "player_requests", "player_requests_state", "plays_started")


def ensure(conn: sqlite3.Connection) -> None:
    """Create the status tables if any is missing (a read when all exist).

    Call outside a transaction: the creation is its own.
    """
    found = conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE name IN ({','.join('?' * len(NAMES))})",
        NAMES).fetchone()[0]
    if found != len(NAMES):
        conn.executescript(SCHEMA)
