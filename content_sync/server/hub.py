"""The events channel: a waiter per long-poll, woken only by its own board's events.

The hub knows each board's newest event id (read once at start, then kept up by the
writes of this process and, on PostgreSQL, by the ``NOTIFY`` of every process), so a
long-poll with nothing new costs no query at all: it parks a future and returns when
its board's id passes the board's cursor or its wait is over. No thread is held.

The newest few events of each board that this process saw committed (its own writes,
or another process's whose notification carried the event) are kept, so the waiters
woken by a publish are answered from memory; a board whose events are not all known
here (a notification without the event, a cursor older than the kept ones) is
answered from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from typing import Any

from content_sync.server.store import AsyncStore, ops

log = logging.getLogger(__name__)
MAX_WAITERS_PER_BOARD = 2  # a board restarting may leave one behind; more is a misuse
KEEP_RECENT = 8  # events kept in memory per board


class EventHub:
    def __init__(self, store: AsyncStore, notified: bool = False) -> None:
        """``notified``: the store notifies every process of each event (PostgreSQL), in
        commit order; only those notifications fill the kept events."""
        self.store = store
        self.notified = notified
        self.latest: dict[str, int] = {}
        # per board, its parked long-polls oldest first (a dict as an ordered set)
        self._waiters: defaultdict[str, dict[asyncio.Future[None], None]] = defaultdict(dict)
        self._closed = False
        # per board, its newest events in id order, contiguous up to latest[board]
        self._recent: dict[str, deque[dict[str, Any]]] = {}
        self.answered_from_memory = 0

    async def start(self) -> None:
        self.latest = await self.store.read(ops.latest_events)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def bump(self, board: str, event_id: int, event: dict[str, Any] | None = None) -> None:
        """``board`` has an event ``event_id`` (its content when known): wake its
        waiters, and no one else's."""
        previous = self.latest.get(board, 0)
        if event_id <= previous:
            return
        self.latest[board] = event_id
        recent = self._recent.get(board)
        if event is None:
            self._recent.pop(board, None)  # the events here are no longer all of them
        elif recent is not None and recent and recent[-1]["id"] == previous:
            recent.append(event)
        else:
            self._recent[board] = deque([event], maxlen=KEEP_RECENT)
            self._recent[board].appendleft({"id": previous, "floor": True})
        for fut in self._waiters.pop(board, ()):
            if not fut.done():
                fut.set_result(None)

    def bump_all(self, latest: dict[str, int]) -> None:
        for board, event_id in latest.items():
            self.bump(board, event_id)

    async def publish(self, board: str, etype: str, data: dict[str, Any],
                      dedup: str | None = None) -> int | None:
        """Store an event and wake the board's waiters once it is committed."""
        event_id = await self.store.write(ops.add_event, board, etype, data, dedup)
        if event_id is not None:
            # Notified (PostgreSQL): another process's earlier event may still be on its
            # way here, so this one cannot be kept as the next after the last known;
            # the board reads its events from the store (they commit in id order).
            self.bump(board, event_id, None if self.notified
                      else {"id": event_id, "type": str(etype), **data})
        return event_id

    def _from_memory(self, board: str, after: int) -> list[dict[str, Any]] | None:
        """The events after ``after`` when all of them are kept here, else None."""
        recent = self._recent.get(board)
        if not recent or recent[-1]["id"] != self.latest.get(board) or recent[0]["id"] > after:
            return None
        return [e for e in recent if e["id"] > after and not e.get("floor")]

    async def wait(self, board: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """Events of ``board`` with id > ``after``; waits up to ``timeout`` for the first."""
        if self.latest.get(board, 0) <= after and timeout > 0 and not self._closed:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._waiters[board]
            while len(waiters) >= MAX_WAITERS_PER_BOARD:  # the newest long-poll wins
                oldest = next(iter(waiters))
                del waiters[oldest]
                if not oldest.done():
                    oldest.set_result(None)
            waiters[fut] = None
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                pass
            finally:
                waiters.pop(fut, None)
                if not waiters and self._waiters.get(board) is waiters:
                    del self._waiters[board]
        if self.latest.get(board, 0) <= after:
            return []
        kept = self._from_memory(board, after)
        if kept is not None:
            self.answered_from_memory += 1
            return kept
        return await self.store.read(ops.events_after, board, after)

    def close(self) -> None:
        """Answer every waiter now (the server is stopping)."""
        self._closed = True
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()
