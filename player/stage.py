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

from content_sync import store
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
        self._slides: OrderedDict[Any, QImage] = OrderedDict()
        self._max = max_slides

    def zones(self, mode: str, width: int, height: int, ticker: bool) -> look.Zones:
        header = self.config.display.header and mode == "normal"
        return look.zones(width, height, header, self.config.display.ticker and ticker)

    def media_path(self, sha: str) -> Path:
        return store.media_path(self.config.cache_dir, sha)

    def render(self, choice: Choice, zones: look.Zones) -> QImage:
        """The main-area picture for an image or text item (video has its own surface)."""
        _, _, w, h = zones.main
        key = (choice.playlist.id, choice.item, choice.priority, choice.playlist.risk_level,
               w, h)
        img = self._slides.get(key)
        if img is not None:
            self._slides.move_to_end(key)
            return img
        item = choice.item
        if item.type == "image":
            assert item.media is not None
            d = self.config.display
            img = self.images.get(self.media_path(item.media), item.media, w, h,
                                  d.image_fit, d.smooth_scaling)
        elif item.type == "text":
            if choice.priority == "emergency":
                img = slides.emergency_banner(item, choice.playlist, w, h)
            else:
                img = slides.text_notice(item, choice.priority, w, h)
        else:
            raise ImageError(f"{item.type} items have no still picture")
        self._slides[key] = img
        while len(self._slides) > self._max:
            self._slides.popitem(last=False)
        return img

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
        img = self._slides.get(key)
        if img is None:
            img = slides.idle(name, now, w, h)
            self._slides[key] = img
            while len(self._slides) > self._max:
                self._slides.popitem(last=False)
        return img
