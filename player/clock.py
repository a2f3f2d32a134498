"""The wall clock as the player sees it: jumps (NTP step, RTC reset, an operator) and
whether it can be trusted at all (a box without a time source says 1970 or 2000)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

JUMP_S = 2.0  # wall and monotonic clocks disagreeing by more than this is a jump


class ClockWatch:
    def __init__(self, wall: datetime) -> None:
        self._last = (wall.timestamp(), time.monotonic())
        self.jumps = 0

    def jumped(self, wall: datetime) -> bool:
        """True when the wall clock jumped since the last call."""
        now = (wall.timestamp(), time.monotonic())
        drift = (now[0] - self._last[0]) - (now[1] - self._last[1])
        self._last = now
        if abs(drift) > JUMP_S:
            self.jumps += 1
            log.warning("the wall clock jumped by %+.0f s; schedules re-checked", drift)
            return True
        return False


def clock_ok(now: datetime, issued: datetime | None) -> tuple[bool, str]:
    """Whether the clock is believable, and why not: before 2024, or well behind the
    issue time of the active manifest."""
    if now.year < 2024:
        return False, (f"the clock says {now:%Y-%m-%d}: the box has no time source "
                       "(RTC battery, NTP over the SIM?)")
    if issued is not None and now < issued - timedelta(minutes=10):
        return False, f"the clock is behind the active manifest's issue time {issued}"
    return True, ""
