"""The player's side of content_sync/runtime/decoder_guard.py: the clips it must pass over
because it died with them open, and one skip record for each item they keep off the
screen, so that proof of play says why the item was not shown."""

from __future__ import annotations

import logging

from content_sync.db import PlayOutcome
from content_sync.protocol import HeldClip
from content_sync.runtime import CLIP_NOTE, DecoderGuard
from kiosk_config import Config
from player.content import Content
from player.records import PlayRecord, Writer

log = logging.getLogger(__name__)


class HeldClips:
    def __init__(self, config: Config, writer: Writer) -> None:
        self.guard = DecoderGuard(config.db_path.parent / CLIP_NOTE, "player", "clip")
        self.guard.start()  # counts the deaths the last player left in the note
        self._writer = writer
        self._recorded: set[str] = set()  # "playlist/item" recorded in this generation
        self._generation = -1
        self.recorded = 0  # skip records written, for the player's play count

    def playable(self, content: Content) -> frozenset[str]:
        """The content's media minus the held clips (recording the skips they cause)."""
        held = self.guard.held()
        if held & content.available:
            self._record(content, held)
        return content.available - held

    def report(self) -> list[HeldClip]:
        return [HeldClip.read(clip) for clip in self.guard.report()]

    def stop(self) -> None:
        self.guard.stop()

    def _record(self, content: Content, held: frozenset[str]) -> None:
        if content.generation != self._generation:
            self._generation, self._recorded = content.generation, set()
        for pl in content.playlists:
            for item in pl.items:
                key = f"{pl.id}/{item.id}"
                if item.media is None or item.media not in held or key in self._recorded:
                    continue
                self._recorded.add(key)
                reason = self.guard.reason(item.media)
                log.warning("skipped %s: %s", key, reason)
                self._writer.play(PlayRecord(item.id, pl.id, content.version)
                                  .close(PlayOutcome.SKIPPED, reason))
                self.recorded += 1
