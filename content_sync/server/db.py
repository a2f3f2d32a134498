"""The reference server's own SQLite store: events, heartbeats, plays, commands."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KEEP_HEARTBEATS = 10_000  # per board: a week at one a minute


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
                CREATE INDEX IF NOT EXISTS commands_board ON commands(board, created_at);
                CREATE INDEX IF NOT EXISTS heartbeats_board ON heartbeats(board, id);
                CREATE TABLE IF NOT EXISTS plays(
                    id TEXT PRIMARY KEY, board TEXT NOT NULL, item_id TEXT, playlist_id TEXT,
                    manifest_version INTEGER, started_at TEXT, ended_at TEXT,
                    duration_s REAL, outcome TEXT, detail TEXT, received_at TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS plays_board ON plays(board, started_at);
                CREATE TABLE IF NOT EXISTS play_counts(
                    id TEXT PRIMARY KEY, board TEXT NOT NULL, day TEXT, playlist_id TEXT,
                    item_id TEXT, outcome TEXT, plays INTEGER, seconds REAL,
                    first_started TEXT, last_ended TEXT, received_at TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS screenshots(
                    board TEXT PRIMARY KEY, received_at TEXT NOT NULL, size INTEGER);
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
            self._conn.execute(  # keep the newest KEEP_HEARTBEATS per board
                "DELETE FROM heartbeats WHERE board=? AND id <= coalesce((SELECT id FROM "
                "heartbeats WHERE board=? ORDER BY id DESC LIMIT 1 OFFSET ?), -1)",
                (board, board, KEEP_HEARTBEATS))
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

    # --- proof of play -------------------------------------------------------------------

    def store_plays(self, board: str, records: list[dict[str, Any]],
                    counts: list[dict[str, Any]]) -> None:
        """Insert records and folded counts; an id already stored is left as it is."""
        now = now_iso()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO plays(id, board, item_id, playlist_id, "
                    "manifest_version, started_at, ended_at, duration_s, outcome, detail, "
                    "received_at) VALUES (:id, :board, :item_id, :playlist_id, "
                    ":manifest_version, :started_at, :ended_at, :duration_s, :outcome, "
                    ":detail, :received_at)",
                    [{**r, "board": board, "received_at": now} for r in records])
                self._conn.executemany(
                    "INSERT OR IGNORE INTO play_counts(id, board, day, playlist_id, item_id, "
                    "outcome, plays, seconds, first_started, last_ended, received_at) VALUES "
                    "(:id, :board, :day, :playlist_id, :item_id, :outcome, :plays, :seconds, "
                    ":first_started, :last_ended, :received_at)",
                    [{**c, "board": board, "received_at": now} for c in counts])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def play_totals(self, board: str) -> dict[str, Any]:
        rows = self.execute(
            "SELECT count(*), coalesce(sum(duration_s), 0) FROM plays WHERE board=?", (board,))
        counted = self.execute(
            "SELECT coalesce(sum(plays), 0), coalesce(sum(seconds), 0) FROM play_counts "
            "WHERE board=?", (board,))
        return {"records": int(rows[0][0]), "seconds": float(rows[0][1]),
                "folded_plays": int(counted[0][0]), "folded_seconds": float(counted[0][1])}

    # --- screenshots ---------------------------------------------------------------------

    def record_screenshot(self, board: str, size: int) -> None:
        self.execute(
            "INSERT INTO screenshots(board, received_at, size) VALUES (?,?,?) ON CONFLICT(board)"
            " DO UPDATE SET received_at=excluded.received_at, size=excluded.size",
            (board, now_iso(), size))

    def screenshot_at(self, board: str) -> str | None:
        rows = self.execute("SELECT received_at FROM screenshots WHERE board=?", (board,))
        return str(rows[0][0]) if rows else None

    # --- remote commands -----------------------------------------------------------------

    def add_command(self, board: str, command: dict[str, Any]) -> None:
        self.execute(
            "INSERT INTO commands(id, board, command, created_at) VALUES (?,?,?,?)",
            (command["id"], board, json.dumps(command, ensure_ascii=False),
             command["created_at"]))

    def open_commands(self, board: str, now: str) -> list[dict[str, Any]]:
        """Commands without a result that have not expired, oldest first; marks delivery."""
        rows = self.execute(
            "SELECT id, command FROM commands WHERE board=? AND result IS NULL "
            "ORDER BY created_at LIMIT 50", (board,))
        out = [json.loads(r["command"]) for r in rows]
        out = [c for c in out if str(c.get("expires_at") or "9999") > now]
        if out:
            self.execute(
                f"UPDATE commands SET delivered_at=coalesce(delivered_at, ?) WHERE id IN "
                f"({','.join('?' * len(out))})", (now, *[c["id"] for c in out]))
        return out

    def record_results(self, board: str, results: list[dict[str, Any]]) -> int:
        """Store each result once per command of this board; returns how many were new."""
        n = 0
        for res in results:
            rows = self.execute(
                "UPDATE commands SET result=? WHERE id=? AND board=? AND result IS NULL "
                "RETURNING id", (json.dumps(res, ensure_ascii=False), str(res.get("id")), board))
            n += len(rows)
        return n

    def commands(self, board: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.execute(
            "SELECT command, created_at, delivered_at, result FROM commands WHERE board=? "
            "ORDER BY created_at DESC LIMIT ?", (board, limit))
        now = now_iso()
        out = []
        for r in rows:
            cmd = json.loads(r["command"])
            result = json.loads(r["result"]) if r["result"] else None
            if result is not None:
                state = "answered"
            elif str(cmd.get("expires_at") or "9999") <= now:
                state = "expired" if r["delivered_at"] is None else "expired_unanswered"
            else:
                state = "delivered" if r["delivered_at"] else "queued"
            out.append({**cmd, "state": state, "delivered_at": r["delivered_at"],
                        "result": result})
        return out
