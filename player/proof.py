"""Proof of play, exactly once: the record of the item on screen and of the one
leaving it.

An item's record opens when its first picture is on screen and closes when the next
picture has replaced it (at once for a still, at the first frame for a clip), so
the record covers what the public saw. Every record is closed once: played or
skipped, with a detail (e.g. "preempted by emergency", "screen off").
"""

from __future__ import annotations

from content_sync.db import PlayOutcome
from player.records import PlayRecord, Writer
from player.schedule import Choice


class ProofOfPlay:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._open: PlayRecord | None = None
        self._outgoing: tuple[PlayRecord, str] | None = None
        self.count = 0  # records written by this player

    @property
    def on_screen(self) -> PlayRecord | None:
        """The open record of the item on screen (None while a clip is still opening)."""
        return self._open

    def open(self, choice: Choice, version: int) -> None:
        self._open = PlayRecord(choice.item.id, choice.playlist.id, version)

    def hand_over(self, detail: str) -> None:
        """The item on screen is being replaced: its record closes when the next
        picture is up (``release``), with ``detail``."""
        if self._open is not None:
            self.release()
            self._outgoing = (self._open, detail)
            self._open = None

    def release(self) -> None:
        """The picture that was leaving the screen has left it: close its record."""
        if self._outgoing is not None:
            record, detail = self._outgoing
            self._outgoing = None
            self._write(record.close(PlayOutcome.PLAYED, detail))

    def close(self, outcome: PlayOutcome, detail: str = "") -> None:
        """Close the record of the item on screen now."""
        if self._open is not None:
            self._write(self._open.close(outcome, detail))
        self._open = None

    def skipped(self, choice: Choice, version: int, reason: str) -> None:
        """An item that never reached the screen."""
        record = PlayRecord(choice.item.id, choice.playlist.id, version)
        self._write(record.close(PlayOutcome.SKIPPED, reason))

    def _write(self, row: dict[str, object]) -> None:
        self._writer.play(row)
        self.count += 1
