"""Proof of play and the player's status, written to SQLite off the GUI thread.

Each record is one transaction in the outbox table (``store.add_play``); a writer
thread with its own connection does the fsync so the screen never waits on disk.
Nothing from here touches a widget.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from content_sync import store

log = logging.getLogger(__name__)

OUTCOMES = ("played", "skipped", "error")


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

    def close(self, outcome: str, detail: str = "") -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        return {
            "id": self.id,
            "item_id": self.item_id,
            "playlist_id": self.playlist_id,
            "manifest_version": self.manifest_version,
            "started_at": self.started_at,
            "ended_at": wall_iso(),
            "duration_s": round(time.monotonic() - self.started_mono, 3),
            "outcome": outcome,
            "detail": detail,
        }


class Writer:
    """A thread that owns a connection and writes plays and status in order."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._q: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="player-records", daemon=True)
        self._thread.start()

    def play(self, record: dict[str, Any]) -> None:
        self._q.put(("play", record))

    def status(self, data: dict[str, Any]) -> None:
        self._q.put(("status", data))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        conn = store.connect(self._db_path)
        try:
            while True:
                job = self._q.get()
                if job is None:
                    return
                kind, data = job
                try:
                    if kind == "play":
                        store.add_play(conn, data)
                    else:
                        store.set_status(conn, "player", data)
                except Exception:  # a full disk must not stop the screen
                    log.exception("could not write the player's %s record", kind)
        finally:
            conn.close()
