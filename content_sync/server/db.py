"""The reference server's own SQLite store: events, heartbeats, commands."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ServerDB:
    """Thread-safe access to the server database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS events(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, board TEXT NOT NULL,
                    type TEXT NOT NULL, data TEXT NOT NULL, at TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS events_board ON events(board, id);
                CREATE TABLE IF NOT EXISTS heartbeats(
                    id INTEGER PRIMARY KEY AUTOINCREMENT, board TEXT NOT NULL,
                    received_at TEXT NOT NULL, data TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS boards(
                    board TEXT PRIMARY KEY, last_seen TEXT, last_status TEXT);
                CREATE TABLE IF NOT EXISTS commands(
                    id TEXT PRIMARY KEY, board TEXT NOT NULL, command TEXT NOT NULL,
                    created_at TEXT NOT NULL, delivered_at TEXT, result TEXT);
                """
            )

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def add_event(self, board: str, etype: str, data: dict[str, Any]) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events(board, type, data, at) VALUES (?,?,?,?)",
                (board, etype, json.dumps(data, ensure_ascii=False), now_iso()),
            )
            return int(cur.lastrowid or 0)

    def events_after(self, board: str, after: int) -> list[dict[str, Any]]:
        rows = self.execute(
            "SELECT id, type, data FROM events WHERE board=? AND id>? ORDER BY id LIMIT 100",
            (board, after),
        )
        return [{"id": r["id"], "type": r["type"], **json.loads(r["data"])} for r in rows]

    def last_event_id(self) -> int:
        rows = self.execute("SELECT max(id) FROM events")
        return int(rows[0][0] or 0)

    def store_heartbeat(self, board: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        now = now_iso()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO heartbeats(board, received_at, data) VALUES (?,?,?)",
                (board, now, text),
            )
            self._conn.execute(
                "INSERT INTO boards(board, last_seen, last_status) VALUES (?,?,?) "
                "ON CONFLICT(board) DO UPDATE SET last_seen=excluded.last_seen, "
                "last_status=excluded.last_status",
                (board, now, text),
            )
            self._conn.execute("COMMIT")

    def boards(self) -> list[dict[str, Any]]:
        rows = self.execute("SELECT board, last_seen, last_status FROM boards ORDER BY board")
        return [
            {"board": r["board"], "last_seen": r["last_seen"],
             "status": json.loads(r["last_status"] or "{}")}
            for r in rows
        ]
