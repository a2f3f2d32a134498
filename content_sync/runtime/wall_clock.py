"""Noticing that the wall clock jumped: an NTP step after weeks on a drifting RTC, an
RTC reset to its factory date, a technician setting the date by hand.

Both processes keep time on the monotonic clock where they can, but schedules (the
player's playlists, the sync daemon's APScheduler jobs) are planned on the wall
clock, so each process must notice a jump and plan again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

log = logging.getLogger(__name__)

JUMP_S = 2.0  # wall and monotonic clocks disagreeing by more than this is a jump


class ClockWatch:
    """Compares how far the wall clock and the monotonic clock moved between calls."""

    def __init__(self, wall: datetime, what: str = "schedules re-checked") -> None:
        self._last = (wall.timestamp(), time.monotonic())
        self._what = what
        self.jumps = 0

    def drift(self, wall: datetime) -> float:
        """Seconds the wall clock jumped since the last call (0.0 when it did not)."""
        now = (wall.timestamp(), time.monotonic())
        drift = (now[0] - self._last[0]) - (now[1] - self._last[1])
        self._last = now
        if abs(drift) > JUMP_S:
            self.jumps += 1
            log.warning("the wall clock jumped by %+.0f s; %s", drift, self._what)
            return drift
        return 0.0

    def jumped(self, wall: datetime) -> bool:
        """True when the wall clock jumped since the last call."""
        return self.drift(wall) != 0.0
