"""No one board starves the others: a budget of requests per board token.

A board at the usual cadence sends a heartbeat a minute, a few play batches and a
screenshot now and then; after a week offline its outbox drains in batches. The
budget — a token bucket per board, refilled continuously — is far above that and far
below what would slow the server for everyone: past it, the board is answered 429
with ``Retry-After`` before its body is read or anything is queried. Long-polls are
bounded by count instead: a board's newest long-poll replaces its oldest (hub).

Why not the ``limits`` library: its in-memory storage starts a timer thread 10 ms
after every hit that walks every key, which with 10,000 boards costs the server a
good part of a core doing nothing; a bucket is two numbers per board and O(1) a hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from content_sync.server.http import refuse

BOARD_REQUESTS_PER_MINUTE = 600


class BoardBudget:
    """``per_minute`` requests a minute per board, in bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int = BOARD_REQUESTS_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # board -> (tokens, at)
        self.refused = 0

    def spend(self, board: str) -> None:
        """Count one request of ``board``; HTTPException 429 when its budget is spent."""
        now = self.clock()
        tokens, at = self._buckets.get(board, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[board] = (tokens - 1.0, now)
            return
        self._buckets[board] = (tokens, now)
        self.refused += 1
        wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        raise refuse(429, f"board {board} sent more than {self.per_minute} requests a minute; "
                          f"retry in {wait} s", {"Retry-After": str(wait)})
