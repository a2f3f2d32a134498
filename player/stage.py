"""From a scheduling choice to a finished main-area picture, with caches.

The mode decides the zones: ``normal`` content has the header band, ``emergency``
and ``idle`` use the whole screen above the ticker. Each item kind has its renderer
here: a still (pictures made once, swapped in one paint) or a clip (the video
surface); :func:`surface_of` says which, exhaustively.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, assert_never

from PySide6.QtGui import QImage

from content_sync.db import store
from content_sync.protocol import ItemKind
from kiosk_config import Config
from player import look, slides
from player.images import ImageCache, ImageError, Prefetcher
from player.scene import ScreenMode
from player.schedule import Choice


class Surface(Enum):
    """How an item kind reaches the main area."""

    STILL = "still"  # pictures rendered here (pages), swapped in one paint
    CLIP = "clip"  # frames from player/video.py, the last picture held until the first


def surface_of(kind: ItemKind) -> Surface:
    match kind:
        case ItemKind.IMAGE | ItemKind.TEXT:
            return Surface.STILL
        case ItemKind.VIDEO:
            return Surface.CLIP
        case _:
            assert_never(kind)


class Stage:
    def __init__(self, config: Config, max_slides: int = 6) -> None:
        self.config = config
        self.images = ImageCache()
        self.prefetcher = Prefetcher(self.images)
        self._slides: OrderedDict[Any, list[tuple[QImage, float]]] = OrderedDict()
        self._max = max_slides

    def zones(self, mode: ScreenMode, width: int, height: int, ticker: bool) -> look.Zones:
        header = self.config.display.header and mode is ScreenMode.NORMAL
        return look.zones(width, height, header, self.config.display.ticker and ticker)

    def media_path(self, sha: str) -> Path:
        return store.media_path(self.config.cache_dir, sha)

    def render(self, choice: Choice, zones: look.Zones, page: int = 0) -> QImage:
        """The main-area picture for an image or text item (video has its own surface);
        ``page`` of an emergency on a strip board (see :meth:`pages`)."""
        pages = self.pages(choice, zones)
        return pages[min(max(0, page), len(pages) - 1)][0]

    def pages(self, choice: Choice, zones: look.Zones) -> list[tuple[QImage, float]]:
        """The item's pictures in turn with their seconds on screen: one picture
        (0 s: for the whole item) except an emergency text on a strip board."""
        _, _, w, h = zones.main
        key = (choice.playlist.id, choice.item, choice.priority, choice.playlist.risk_level,
               w, h)
        pages = self._slides.get(key)
        if pages is not None:
            self._slides.move_to_end(key)
            return pages
        item = choice.item
        match item.type:
            case ItemKind.IMAGE:
                assert item.media is not None
                d = self.config.display
                pages = [(self.images.get(self.media_path(item.media), item.media, w, h,
                                          d.image_fit, d.smooth_scaling), 0.0)]
            case ItemKind.TEXT if choice.priority == "emergency":
                pages = slides.emergency_pages(item, choice.playlist, w, h)
            case ItemKind.TEXT:
                pages = [(slides.text_notice(item, choice.priority, w, h), 0.0)]
            case ItemKind.VIDEO:
                raise ImageError(f"{item.type} items have no still picture")
            case _:
                assert_never(item.type)
        self._slides[key] = pages
        while len(self._slides) > self._max:
            self._slides.popitem(last=False)
        return pages

    def prefetch(self, choice: Choice, zones: look.Zones) -> None:
        """Get the picture of a likely next item ready before its switch."""
        item = choice.item
        if item.type is ItemKind.TEXT:
            self.render(choice, zones)  # a few ms, now rather than at the switch
        elif item.type is ItemKind.IMAGE and item.media:
            _, _, w, h = zones.main
            d = self.config.display
            self.prefetcher.prefetch(self.media_path(item.media), item.media, w, h,
                                     d.image_fit, d.smooth_scaling)

    def idle(self, name: str, now: datetime, zones: look.Zones) -> QImage:
        _, _, w, h = zones.main
        key = ("__idle__", name, f"{now:%Y%m%d%H%M}", w, h)
        cached = self._slides.get(key)
        if cached is None:
            cached = [(slides.idle(name, now, w, h), 0.0)]
            self._slides[key] = cached
            while len(self._slides) > self._max:
                self._slides.popitem(last=False)
        return cached[0][0]
