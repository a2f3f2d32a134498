"""How a decision looks: the scene of a choice or of the idle screen, for the board's
size (its zones, its ticker text and colours), and the pictures of stills.

The controller decides what plays; this says what that puts on the board.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from PySide6.QtGui import QImage

from kiosk_config import Config
from player import content, look, slides
from player.content import Content
from player.scene import Scene, ScreenMode, mode_of
from player.schedule import Choice
from player.stage import Stage


class Composer:
    def __init__(self, config: Config, stage: Stage) -> None:
        self.config = config
        self.stage = stage
        self._size = (1, 1)  # the board's logical (unrotated) size

    def resize(self, width: int, height: int) -> None:
        self._size = (width, height)

    def ticker_text(self, mode: ScreenMode, choice: Choice | None, shown: Content,
                    now: datetime) -> str:
        if mode is ScreenMode.EMERGENCY and choice is not None:
            return f"CẢNH BÁO: {slides.headline(choice.item, choice.playlist)}"
        return content.ticker_text(shown, now)

    def zones(self, mode: ScreenMode, ticker_text: str) -> look.Zones:
        return self.stage.zones(mode, *self._size, bool(ticker_text))

    def scene_of(self, choice: Choice, shown: Content, now: datetime) -> Scene:
        """The scene of ``choice`` without its picture (the zones, the ticker)."""
        mode = mode_of(choice)
        text = self.ticker_text(mode, choice, shown, now)
        return Scene(mode, self.zones(mode, text), None, text, choice.playlist.risk_level)

    def pages(self, choice: Choice, scene: Scene) -> list[tuple[QImage, float]]:
        """The still pictures of ``choice`` in ``scene`` (raises ImageError)."""
        return self.stage.pages(choice, scene.zones)

    def idle(self, shown: Content, now: datetime) -> Scene:
        text = self.ticker_text(ScreenMode.IDLE, None, shown, now)
        zones = self.zones(ScreenMode.IDLE, text)
        scene = Scene(ScreenMode.IDLE, zones, None, text)
        return replace(scene, picture=self.stage.idle(self.config.board.name, now, zones))
