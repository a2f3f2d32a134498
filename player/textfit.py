"""Vietnamese text laid out in a rectangle at the largest size that fits.

Lines are placed by hand with QTextLayout so that the line pitch is the font's full
ascent + descent times ``LINE_SPACING``: the ink of stacked accents (Ề, Ặ, Ỗ) on a
line never reaches the dot below (ạ, ọ, ỵ) of the line above. A test measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QTextLayout, QTextOption

from player import fonts
from player.vietnamese import nfc

LINE_SPACING = 1.08  # times (ascent + descent) of the font
BLOCK_GAP = 0.45  # blank space between blocks, in lines


@dataclass(frozen=True)
class Block:
    text: str
    scale: float = 1.0  # size relative to the fitted base size
    bold: bool = False
    color: QColor = field(default_factory=lambda: QColor("white"))
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft


def line_pitch(pixel_size: int, bold: bool = False) -> float:
    fm = QFontMetricsF(fonts.font(pixel_size, bold))
    return (fm.ascent() + fm.descent()) * LINE_SPACING


@dataclass
class _Laid:
    layout: QTextLayout
    block: Block
    y: float
    height: float


def _layout(blocks: Sequence[Block], width: float, base: int) -> tuple[list[_Laid], float, bool]:
    """Lay out every block; return the layouts, their total height and whether
    every line fits the width (a single word wider than the zone does not)."""
    laid: list[_Laid] = []
    y = 0.0
    fits = True
    first = True
    for b in blocks:
        if not b.text.strip():
            continue
        size = max(1, round(base * b.scale))
        font = fonts.font(size, b.bold)
        fm = QFontMetricsF(font)
        pitch = (fm.ascent() + fm.descent()) * LINE_SPACING
        if not first:
            y += pitch * BLOCK_GAP
        first = False
        for para in nfc(b.text).splitlines() or [""]:
            tl = QTextLayout(para, font)
            opt = QTextOption(b.align)
            opt.setWrapMode(QTextOption.WrapMode.WordWrap)
            tl.setTextOption(opt)
            top = y
            tl.beginLayout()
            while True:
                line = tl.createLine()
                if not line.isValid():
                    break
                line.setLineWidth(width)
                if line.naturalTextWidth() > width + 0.5:
                    fits = False
                # Centre the font's own line box in the taller pitch.
                line.setPosition(QPointF(0, y - top + (pitch - fm.height()) / 2))
                y += pitch
            tl.endLayout()
            laid.append(_Laid(tl, b, top, y - top))
    return laid, y, fits


def fit_size(blocks: Sequence[Block], width: float, height: float,
             max_px: int = 400, min_px: int = 8) -> int:
    """The largest base pixel size at which the blocks fit in width x height."""
    lo, hi = min_px, max(min_px, max_px)
    best = min_px
    while lo <= hi:
        mid = (lo + hi) // 2
        _, h, fits = _layout(blocks, width, mid)
        if fits and h <= height:
            best = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def draw(painter: QPainter, rect: QRectF, blocks: Sequence[Block], base: int,
         valign: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignVCenter) -> float:
    """Draw the blocks in ``rect`` at ``base`` size; return the height used."""
    laid, total, _ = _layout(blocks, rect.width(), base)
    top = rect.top()
    if valign == Qt.AlignmentFlag.AlignVCenter:
        top += max(0.0, (rect.height() - total) / 2)
    for item in laid:
        painter.setPen(item.block.color)
        item.layout.draw(painter, QPointF(rect.left(), top + item.y))
    return total


def draw_fitted(painter: QPainter, rect: QRectF, blocks: Sequence[Block],
                max_px: int = 400, min_px: int = 8) -> int:
    base = fit_size(blocks, rect.width(), rect.height(), max_px, min_px)
    draw(painter, rect, blocks, base)
    return base
