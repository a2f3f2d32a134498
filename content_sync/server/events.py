"""The events channel: long-poll waiters and the watcher that notices new manifests.

A manifest written into the folder by ``eboard publish --to DIR`` (or uploaded
with PUT) becomes a ``manifest`` event for its board, so boards that long-poll
learn of it within a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from content_sync.publish import manifest_version_in
from content_sync.server.db import ServerDB

log = logging.getLogger(__name__)


class EventHub:
    def __init__(self, db: ServerDB, data_dir: Path, scan_interval: float = 0.2) -> None:
        self.db = db
        self.data_dir = data_dir
        self.scan_interval = scan_interval
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._seen: dict[str, tuple[float, int]] = {}
        self._versions = self._last_manifest_events()
        self._thread = threading.Thread(target=self._watch, name="manifest-watcher", daemon=True)

    def start(self) -> None:
        self.scan()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def publish(self, board: str, etype: str, data: dict[str, Any]) -> int:
        event_id = self.db.add_event(board, etype, data)
        with self._cond:
            self._cond.notify_all()
        return event_id

    def wait(self, board: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """Events for ``board`` with id > after; waits up to ``timeout`` for the first."""
        deadline = timeout
        with self._cond:
            while True:
                events = self.db.events_after(board, after)
                if events or deadline <= 0 or self._stop.is_set():
                    return events
                step = min(deadline, 1.0)
                self._cond.wait(step)
                deadline -= step

    def _last_manifest_events(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT board, data FROM events WHERE type='manifest' AND id IN "
            "(SELECT max(id) FROM events WHERE type='manifest' GROUP BY board)"
        )
        return {r["board"]: int(json.loads(r["data"]).get("version", 0)) for r in rows}

    def scan(self) -> None:
        boards = self.data_dir / "boards"
        if not boards.is_dir():
            return
        for path in boards.glob("*/manifest.json"):
            board = path.parent.name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            key = (st.st_mtime, st.st_size)
            if self._seen.get(board) == key:
                continue
            self._seen[board] = key
            try:
                version = manifest_version_in(path.read_bytes())
            except OSError:
                continue
            if version and version != self._versions.get(board):
                self._versions[board] = version
                log.info("board %s: manifest version %d is now offered", board, version)
                self.publish(board, "manifest", {"version": version})

    def _watch(self) -> None:
        while not self._stop.wait(self.scan_interval):
            try:
                self.scan()
            except Exception:  # keep watching whatever one scan met
                log.exception("manifest scan failed")
