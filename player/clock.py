"""The wall clock as the player sees it: jumps (NTP step, RTC reset, an operator) and
whether it can be trusted at all (a box without a time source says 1970 or 2000)."""

from __future__ import annotations

from datetime import datetime, timedelta

from content_sync.runtime import ClockWatch

__all__ = ["ClockWatch", "clock_ok"]


def clock_ok(now: datetime, issued: datetime | None) -> tuple[bool, str]:
    """Whether the clock is believable, and why not: before 2024, or well behind the
    issue time of the active manifest."""
    if now.year < 2024:
        return False, (f"the clock says {now:%Y-%m-%d}: the box has no time source "
                       "(RTC battery, NTP over the SIM?)")
    if issued is not None and now < issued - timedelta(minutes=10):
        return False, f"the clock is behind the active manifest's issue time {issued}"
    return True, ""
