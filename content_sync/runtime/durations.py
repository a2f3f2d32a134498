"""A length of time as a technician or an operator reads it: "45 s", "12 min", "3.5 h",
"2.1 days" (the status command, the doctor and the status page say it the same way), and
how long ago a stored ISO time was."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def human(seconds: float) -> str:
    """``seconds`` (its absolute value) in the largest unit that keeps it readable."""
    s = abs(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def age_s(iso: Any, now: datetime | None = None) -> float | None:
    """Seconds from ``iso`` (an ISO 8601 time; naive means UTC) to ``now``; None for junk.

    Negative when ``iso`` is in the future (a clock that was wrong when it was written)."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - t).total_seconds()
