"""The events channel: a waiter per long-poll, woken only by its own board's events.

The hub knows each board's newest event id (read once at start, then kept up by the
writes of this process and, on PostgreSQL, by the ``NOTIFY`` of every process), so a
long-poll with nothing new costs no query at all: it parks a future and returns when
its board's id passes the board's cursor or its wait is over. No thread is held.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from content_sync.server.store import AsyncStore, ops

log = logging.getLogger(__name__)
MAX_WAITERS_PER_BOARD = 2  # a board restarting may leave one behind; more is a misuse


class EventHub:
    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.latest: dict[str, int] = {}
        # per board, its parked long-polls oldest first (a dict as an ordered set)
        self._waiters: defaultdict[str, dict[asyncio.Future[None], None]] = defaultdict(dict)
        self._closed = False

    async def start(self) -> None:
        self.latest = await self.store.read(ops.latest_events)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def bump(self, board: str, event_id: int) -> None:
        """``board`` has an event ``event_id``: wake its waiters (and no one else's)."""
        if event_id <= self.latest.get(board, 0):
            return
        self.latest[board] = event_id
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
            self.bump(board, event_id)
        return event_id

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
        return await self.store.read(ops.events_after, board, after)

    def close(self) -> None:
        """Answer every waiter now (the server is stopping)."""
        self._closed = True
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()
