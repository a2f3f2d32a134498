"""Proof of play and the player's status, written to SQLite off the GUI thread.

Each record is one transaction in the outbox table (``store.add_play``); a writer
thread with its own connection does the fsync so the screen never waits on disk.
Nothing from here touches a widget.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from content_sync.db import PlayerStatus, PlayOutcome, damaged, rows, store

log = logging.getLogger(__name__)

def wall_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class PlayRecord:
    """One item shown: opened at start, closed at the end with its outcome."""

    item_id: str
    playlist_id: str
    manifest_version: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: str = field(default_factory=wall_iso)
    started_mono: float = field(default_factory=time.monotonic)

    def close(self, outcome: PlayOutcome, detail: str = "") -> dict[str, Any]:
        if outcome not in tuple(PlayOutcome):
            raise ValueError(f"outcome {outcome!r} is not one of {tuple(PlayOutcome)}")
        return {
            "id": self.id,
            "item_id": self.item_id,
            "playlist_id": self.playlist_id,
            "manifest_version": self.manifest_version,
            "started_at": self.started_at,
            "ended_at": wall_iso(),
            "duration_s": round(time.monotonic() - self.started_mono, 3),
            "outcome": PlayOutcome(outcome).value,
            "detail": detail,
        }


class Writer:
    """A thread that owns a connection and writes plays and status in order.

    When the database cannot be opened or written (disk full, read-only remount),
    records wait in memory (the newest ``max_pending``) and are written when the
    disk takes them again; the screen never waits for it.
    """

    def __init__(self, db_path: Path, retry_s: float = 30.0, max_pending: int = 20_000) -> None:
        self._db_path = db_path
        self._retry_s = retry_s
        self._pending: deque[dict[str, Any]] = deque(maxlen=max_pending)
        self._q: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="player-records", daemon=True)
        self._thread.start()

    def play(self, record: dict[str, Any]) -> None:
        self._q.put(("play", record))

    def status(self, row: PlayerStatus) -> None:
        """The player's status row (player/status.py builds it), written as it is."""
        self._q.put(("status", row))

    def damaged(self, sha256: str, reason: str) -> None:
        """Tell the sync side a media could not be shown (content_sync/db/damaged.py)."""
        self._q.put(("damaged", {"sha256": sha256, "reason": reason}))

    @property
    def backlog(self) -> int:
        """Proof-of-play records waiting in memory for the disk."""
        return len(self._pending)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        status: PlayerStatus | None = None
        bad: dict[str, str] = {}  # media the screen could not show, for the sync side
        next_try = 0.0
        failing = False
        stop = False
        while not stop:
            waiting = bool(self._pending) or status is not None or bool(bad)
            try:
                job = self._q.get(timeout=self._retry_s if waiting else None)
            except queue.Empty:
                job = ("retry", {})
            if job is None:
                stop = True
            elif job[0] == "play":
                self._pending.append(job[1])
            elif job[0] == "status":
                status = job[1]
            elif job[0] == "damaged" and len(bad) < 1000:
                bad[job[1]["sha256"]] = job[1]["reason"]
            if conn is None and time.monotonic() >= next_try:
                try:
                    conn = store.connect(self._db_path)
                except (sqlite3.Error, OSError) as e:
                    next_try = time.monotonic() + self._retry_s
                    if not failing:
                        log.error("cannot open %s to record proof of play (%s); keeping "
                                  "records in memory and trying again every %g s",
                                  self._db_path, e, self._retry_s)
                    failing = True
                    continue
            if conn is None:
                continue
            try:
                while self._pending:
                    store.add_play(conn, self._pending[0])
                    self._pending.popleft()
                if status is not None:
                    rows.write(conn, status)
                    status = None
                while bad:
                    sha, reason = next(iter(bad.items()))
                    damaged.report(conn, sha, reason)
                    del bad[sha]
                if failing:
                    log.info("proof of play is written to %s again", self._db_path)
                failing = False
            except sqlite3.Error as e:  # a full disk must not stop the screen
                if not failing:
                    log.error("cannot write proof of play to %s (%s); %d record(s) kept in "
                              "memory", self._db_path, e, len(self._pending))
                failing = True
        if self._pending:
            log.error("%d proof-of-play record(s) could not be written to %s",
                      len(self._pending), self._db_path)
        if conn is not None:
            conn.close()
