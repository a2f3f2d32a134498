"""A length of time as a technician or an operator reads it: "45 s", "12 min", "3.5 h",
"2.1 days" (the status command, the doctor and the status page say it the same way)."""

from __future__ import annotations


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
