"""The next item, made ready while this one is on screen: its picture drawn in the
background (player/stage.py's prefetcher) and, for a clip, the clip opened and held on
its first frame ``PREROLL_S`` before its turn (player/video.py), so that the switch shows
no empty frame. What comes next is the scheduler's answer (player/schedule.py); the
controller (player/controller.py) asks it and hands it here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QTimer

from player.composer import Composer
from player.content import Content
from player.schedule import Choice
from player.stage import Stage, Surface, surface_of
from player.video import VideoPlayer

PREROLL_S = 1.5  # a clip is opened and held on its first frame this long before its turn


class Lookahead:
    def __init__(self, composer: Composer, stage: Stage, video: VideoPlayer) -> None:
        self._composer, self._stage, self._video = composer, stage, video

    def prepare(self, nxt: Choice, content: Content, when: datetime, in_s: float,
                still: Callable[[], bool]) -> None:
        """``nxt`` goes on screen at ``when``, ``in_s`` seconds from now, unless ``still()``
        says by then that the item on screen has changed (then its clip is not opened)."""
        zones = self._composer.scene_of(nxt, content, when).zones
        self._stage.prefetch(nxt, zones)
        if surface_of(nxt.item.type) is Surface.CLIP and nxt.item.media:
            path = self._stage.media_path(nxt.item.media)
            _, _, w, h = zones.main

            def preroll() -> None:
                if still():
                    self._video.preroll(nxt, path, w, h)

            QTimer.singleShot(max(0, round((in_s - PREROLL_S) * 1000)), preroll)
