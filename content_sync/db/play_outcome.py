"""How a proof-of-play record ends: what the player writes, the outbox sends and the
reports count.

A :class:`PlayOutcome` is a ``StrEnum``: the ``outcome`` column of ``plays``,
``play_counts`` and ``play_history`` and the wire hold its value, the same string as
before the enum.
"""

from __future__ import annotations

from enum import StrEnum


class PlayOutcome(StrEnum):
    PLAYED = "played"  # on screen for the record's duration (then replaced, or stopped)
    SKIPPED = "skipped"  # never reached the screen, or broke while on it
    ERROR = "error"  # accepted from older writers; counted as not played
