"""What the board shows, as a value: the controller decides it, the canvas paints it.

A ``Scene`` is complete: the canvas keeps nothing of the previous one, so the
controller can be driven and checked without a window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from PySide6.QtGui import QImage

from player import look
from player.schedule import Choice


class ScreenMode(StrEnum):
    """What kind of screen is up; decides the zones and the ticker's colours."""

    NORMAL = "normal"  # scheduled content, with the header band
    EMERGENCY = "emergency"  # full screen above the ticker, in the risk level's colours
    IDLE = "idle"  # nothing scheduled: the board's name and the time
    BLANKED = "blanked"  # screen off: outside the on-hours or by command


def mode_of(choice: Choice | None) -> ScreenMode:
    if choice is None:
        return ScreenMode.IDLE
    return ScreenMode.EMERGENCY if choice.priority == "emergency" else ScreenMode.NORMAL


@dataclass(frozen=True)
class Scene:
    mode: ScreenMode
    zones: look.Zones
    picture: QImage | None  # the main area; None: the video surface (or black) draws it
    ticker_text: str = ""
    risk_level: int | None = None  # an emergency's disaster risk level (its colours)


def blank(zones: look.Zones) -> Scene:
    return Scene(ScreenMode.BLANKED, zones, None)


@dataclass(frozen=True)
class ViewReport:
    """What the view knows for the status: where the window is, how the ticker runs."""

    width: int
    height: int
    x: int = 0
    y: int = 0
    frames: dict[str, Any] = field(default_factory=dict)
