"""From a scheduling choice to a finished main-area picture, with caches.

The mode decides the zones: ``normal`` content has the header band, ``emergency``
and ``idle`` use the whole screen above the ticker.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from content_sync.db import store
from kiosk_config import Config
from player import look, slides
from player.images import ImageCache, ImageError, Prefetcher
from player.schedule import Choice


def mode_of(choice: Choice | None) -> str:
    if choice is None:
        return "idle"
    return "emergency" if choice.priority == "emergency" else "normal"


class Stage:
    def __init__(self, config: Config, max_slides: int = 6) -> None:
        self.config = config
        self.images = ImageCache()
        self.prefetcher = Prefetcher(self.images)
        self._slides: OrderedDict[Any, list[tuple[QImage, float]]] = OrderedDict()
        self._max = max_slides

    def zones(self, mode: str, width: int, height: int, ticker: bool) -> look.Zones:
        header = self.config.display.header and mode == "normal"
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
        if item.type == "image":
            assert item.media is not None
            d = self.config.display
            pages = [(self.images.get(self.media_path(item.media), item.media, w, h,
                                      d.image_fit, d.smooth_scaling), 0.0)]
        elif item.type == "text":
            if choice.priority == "emergency":
                pages = slides.emergency_pages(item, choice.playlist, w, h)
            else:
                pages = [(slides.text_notice(item, choice.priority, w, h), 0.0)]
        else:
            raise ImageError(f"{item.type} items have no still picture")
        self._slides[key] = pages
        while len(self._slides) > self._max:
            self._slides.popitem(last=False)
        return pages

    def prefetch(self, choice: Choice, zones: look.Zones) -> None:
        """Get the picture of a likely next item ready before its switch."""
        item = choice.item
        if item.type == "text":
            self.render(choice, zones)  # a few ms, now rather than at the switch
        elif item.type == "image" and item.media:
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
