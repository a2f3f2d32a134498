"""Requests from the sync side to the player, through the shared database.

The player never speaks HTTP, so commands meant for the screen (``screenshot``,
``screen_on``, ``screen_off``, ``restart_player``) become rows of
``player_requests``; the player polls for pending rows (a cheap indexed query),
does what they ask and writes the outcome back. Whether the screen is switched off
by command is also kept in ``meta`` (``screen.forced_off``) so that it survives a
restart of the player or of the box.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from content_sync.db import store

PLAYER_KINDS = ("screenshot", "screen_on", "screen_off", "restart_player")
SCREENSHOT_NAME = "screenshot.jpg"
PLAYER_TIMEOUT_S = 300
FORCED_OFF_KEY = "screen.forced_off"


def screenshot_path(cache_dir: Path) -> Path:
    """Where the player writes the latest screenshot (temp file + rename)."""
    return cache_dir / SCREENSHOT_NAME


def add(conn: sqlite3.Connection, request_id: str, kind: str,
        args: dict[str, Any] | None = None, origin: str = "command") -> None:
    """Queue one request (call inside a transaction, or on its own)."""
    if kind not in PLAYER_KINDS:
        raise ValueError(f"{kind!r} is not a player request ({', '.join(PLAYER_KINDS)})")
    conn.execute(
        "INSERT OR IGNORE INTO player_requests(id, kind, args, origin, created_at) "
        "VALUES (?,?,?,?,?)",
        (request_id, kind, json.dumps(args or {}), origin, store.utcnow()))
    if kind in ("screen_on", "screen_off"):
        store.set_meta(conn, FORCED_OFF_KEY, "1" if kind == "screen_off" else "0")


def pending(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Requests the player has not answered yet, oldest first."""
    rows = conn.execute(
        "SELECT id, kind, args, origin, created_at FROM player_requests "
        "WHERE state='pending' ORDER BY rowid")  # as queued: a ms holds several
    return [{**dict(r), "args": json.loads(r["args"] or "{}")} for r in rows]


def has_pending(conn: sqlite3.Connection, kind: str) -> bool:
    row = conn.execute("SELECT 1 FROM player_requests WHERE state='pending' AND kind=? LIMIT 1",
                       (kind,)).fetchone()
    return row is not None


def finish(conn: sqlite3.Connection, request_id: str, ok: bool, detail: str = "") -> None:
    """The player's answer to one request (one transaction)."""
    with store.transaction(conn):
        conn.execute(
            "UPDATE player_requests SET state=?, ok=?, detail=?, done_at=? WHERE id=? "
            "AND state='pending'",
            ("done" if ok else "failed", int(ok), detail, store.utcnow(), request_id))


def expire_unanswered(conn: sqlite3.Connection, timeout_s: float = PLAYER_TIMEOUT_S) -> int:
    """Fail requests the player has not answered within ``timeout_s`` (player down?)."""
    cutoff = (datetime.now(UTC) - timedelta(seconds=timeout_s)).isoformat(
        timespec="milliseconds")
    with store.transaction(conn):
        cur = conn.execute(
            "UPDATE player_requests SET state='failed', ok=0, detail=?, done_at=? "
            "WHERE state='pending' AND created_at<?",
            (f"the player did not answer within {timeout_s:.0f} s; is eboard-player running? "
             "(systemctl status eboard-player; journalctl -u eboard-player)",
             store.utcnow(), cutoff))
    return cur.rowcount


def answered(conn: sqlite3.Connection, origin: str = "command") -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, kind, state, ok, detail, done_at FROM player_requests "
        "WHERE state IN ('done','failed') AND origin=? ORDER BY done_at", (origin,))
    return [dict(r) for r in rows]


def forget(conn: sqlite3.Connection, ids: list[str]) -> None:
    conn.executemany("DELETE FROM player_requests WHERE id=?", [(i,) for i in ids])


def prune(conn: sqlite3.Connection, keep_days: int = 1) -> None:
    """Drop answered automatic requests older than ``keep_days``."""
    cutoff = (datetime.now(UTC) - timedelta(days=keep_days)).isoformat()
    with store.transaction(conn):
        conn.execute("DELETE FROM player_requests WHERE origin!='command' AND state!='pending'"
                     " AND created_at<?", (cutoff,))


def screen_forced_off(conn: sqlite3.Connection) -> bool:
    """Whether an operator switched the screen off (until a ``screen_on``)."""
    return store.get_meta(conn, FORCED_OFF_KEY) == "1"
