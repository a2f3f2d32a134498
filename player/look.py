"""Zones and colours: where things go on the board and how each class looks.

Pure values (no widgets), so tests and the window share them.
"""

from __future__ import annotations

from dataclasses import dataclass

Rect = tuple[int, int, int, int]  # x, y, width, height in logical (unrotated) pixels

# Disaster risk levels of QĐ 18/2021/QĐ-TTg: background and text colour.
RISK_COLOURS: dict[int, tuple[str, str]] = {
    1: ("#7ec8f5", "#000000"),  # light blue
    2: ("#fff176", "#000000"),  # light yellow
    3: ("#ff8c00", "#000000"),  # orange
    4: ("#e00000", "#ffffff"),  # red
    5: ("#7b1fa2", "#ffffff"),  # purple
}
EMERGENCY_DEFAULT = ("#c00000", "#ffffff")


@dataclass(frozen=True)
class Palette:
    background: str
    title: str
    text: str


PALETTES = {
    "normal": Palette("#0b2545", "#ffd166", "#ffffff"),
    "priority": Palette("#4a1202", "#ffc300", "#ffffff"),
    "idle": Palette("#102a43", "#ffffff", "#bcccdc"),
}
HEADER = Palette("#13315c", "#ffffff", "#ffd166")
TICKER = Palette("#001b2e", "#ffe08a", "#ffe08a")
BLACK = "#000000"


def emergency_colours(risk_level: int | None) -> tuple[str, str]:
    """(background, text) for an emergency banner."""
    return RISK_COLOURS.get(risk_level or 0, EMERGENCY_DEFAULT)


@dataclass(frozen=True)
class Zones:
    width: int
    height: int
    main: Rect
    header: Rect | None = None
    ticker: Rect | None = None


def band_heights(height: int) -> tuple[int, int]:
    header = min(120, max(28, round(height * 0.08)))
    ticker = min(140, max(28, round(height * 0.10)))
    return header, ticker


def zones(width: int, height: int, header: bool, ticker: bool) -> Zones:
    """Split a logical screen into header band, main area and ticker band.

    A board shorter than 200 px gets no header, shorter than 120 px no ticker, so
    that the main area keeps most of a small LED board.
    """
    hh, th = band_heights(height)
    use_header = header and height >= 200
    use_ticker = ticker and height >= 120
    top = hh if use_header else 0
    bottom = th if use_ticker else 0
    return Zones(
        width, height,
        main=(0, top, width, height - top - bottom),
        header=(0, 0, width, hh) if use_header else None,
        ticker=(0, height - th, width, th) if use_ticker else None,
    )


def logical_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The size content is laid out in, for a screen of width x height rotated."""
    return (height, width) if rotation in (90, 270) else (width, height)
