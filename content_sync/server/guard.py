"""No one board starves the others: a budget of requests per board token.

A board at the usual cadence sends a heartbeat a minute, a few play batches and a
screenshot now and then; after a week offline its outbox drains in batches. The
budget (sliding window, from the ``limits`` library) is far above that and far below
what would slow the server for everyone: past it, the board is answered 429 with
``Retry-After`` before its body is read or anything is queried. Long-polls are
bounded by count instead: a board's newest long-poll replaces its oldest (hub).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute, storage, strategies
from starlette.exceptions import HTTPException

from content_sync.server.http import refuse

BOARD_REQUESTS_PER_MINUTE = 600


class BoardBudget:
    def __init__(self, per_minute: int = BOARD_REQUESTS_PER_MINUTE) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self._limiter = strategies.SlidingWindowCounterRateLimiter(storage.MemoryStorage())
        self.refused = 0

    def spend(self, board: str) -> None:
        """Count one request of ``board``; HTTPException 429 when its budget is spent."""
        if self._limiter.hit(self.item, "board", board):
            return
        self.refused += 1
        reset = self._limiter.get_window_stats(self.item, "board", board).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise_it: HTTPException = refuse(
            429, f"board {board} sent more than {self.item.amount} requests a minute; "
                 f"retry in {wait} s", {"Retry-After": str(wait)})
        raise raise_it
