"""Main-area pictures: text notices, emergency banners, the idle screen.

Each is rendered once into a QImage of the zone's size before it goes on screen,
so a switch is the swap of one finished picture for another.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from content_sync.protocol import Item, Playlist
from player import look, textfit
from player.textfit import Block
from player.vietnamese import format_date, format_time

CENTER = Qt.AlignmentFlag.AlignHCenter
LEFT = Qt.AlignmentFlag.AlignLeft


def _canvas(width: int, height: int, colour: str) -> tuple[QImage, QPainter]:
    img = QImage(max(1, width), max(1, height), QImage.Format.Format_RGB32)
    img.fill(QColor(colour))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    return img, p


def _margin(width: int, height: int) -> float:
    return max(4.0, min(width, height) * 0.05)


def solid(width: int, height: int, colour: str = look.BLACK) -> QImage:
    img = QImage(max(1, width), max(1, height), QImage.Format.Format_RGB32)
    img.fill(QColor(colour))
    return img


def text_notice(item: Item, priority: str, width: int, height: int) -> QImage:
    """Title and body (and instructions) at the largest size that fits."""
    pal = look.PALETTES.get(priority, look.PALETTES["normal"])
    img, p = _canvas(width, height, pal.background)
    m = _margin(width, height)
    blocks = [
        Block(item.title, 1.3, True, QColor(pal.title), CENTER),
        Block(item.body, 1.0, False, QColor(pal.text), LEFT if len(item.body) > 60 else CENTER),
        Block(item.instructions, 1.0, True, QColor(pal.title), LEFT),
    ]
    if priority == "priority":
        p.fillRect(QRectF(0, 0, width, max(3.0, m / 3)), QColor(pal.title))
    textfit.draw_fitted(p, QRectF(m, m, width - 2 * m, height - 2 * m), blocks,
                        max_px=max(8, height // 3))
    p.end()
    return img


def emergency_banner(item: Item, playlist: Playlist, width: int, height: int) -> QImage:
    """Full-screen banner in the risk-level colour: label, headline, body, instructions."""
    bg, fg = look.emergency_colours(playlist.risk_level)
    img, p = _canvas(width, height, bg)
    m = _margin(width, height)
    colour = QColor(fg)
    label = "CẢNH BÁO KHẨN CẤP"
    if playlist.risk_level:
        label += f" · RỦI RO THIÊN TAI CẤP {playlist.risk_level}"
    # A frame in the text colour makes the banner unmistakable even on a small board.
    pen_w = max(2.0, m / 3)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    for r in (QRectF(0, 0, width, pen_w), QRectF(0, height - pen_w, width, pen_w),
              QRectF(0, 0, pen_w, height), QRectF(width - pen_w, 0, pen_w, height)):
        p.drawRect(r)
    headline = item.title or playlist.title
    instructions = f"Hướng dẫn: {item.instructions}" if item.instructions else ""
    blocks = [
        Block(label, 0.6, True, colour, CENTER),
        Block(headline, 1.4, True, colour, CENTER),
        Block(item.body, 1.0, False, colour, LEFT if len(item.body) > 60 else CENTER),
        Block(instructions, 0.95, True, colour, LEFT),
    ]
    inner = m + pen_w
    textfit.draw_fitted(p, QRectF(inner, inner, width - 2 * inner, height - 2 * inner),
                        blocks, max_px=max(8, height // 3))
    p.end()
    return img


def is_strip(width: int, height: int) -> bool:
    """An LED strip board (e.g. 1920×96, 768×128): too short to stack a headline,
    body and instructions readably in one picture."""
    return height < 200 and width >= 4 * height


def page_seconds(text: str) -> float:
    """How long a strip page stays: a glance plus about three words a second."""
    return min(PAGE_MAX_S, max(PAGE_MIN_S, 2.0 + len(text.split()) / 3.0))


PAGE_MIN_S, PAGE_MAX_S = 4.0, 12.0


def emergency_pages(item: Item, playlist: Playlist, width: int, height: int
                    ) -> list[tuple[QImage, float]]:
    """The emergency as pictures shown in turn, each with its time on screen (s).

    On a usual board that is one banner. On a strip board stacked blocks would come
    out a dozen pixels tall, so the headline, the body and the instructions each get
    a page of their own at the largest size the strip allows, behind the same
    "KHẨN CẤP" badge; the window turns the pages while the item is on screen.
    """
    if not is_strip(width, height):
        return [(emergency_banner(item, playlist, width, height), 0.0)]
    texts = [headline(item, playlist), item.body,
             f"Hướng dẫn: {item.instructions}" if item.instructions else ""]
    texts = [t for t in texts if t.strip()] or ["CẢNH BÁO KHẨN CẤP"]
    return [(_strip_page(t, playlist, width, height, first=i == 0), page_seconds(t))
            for i, t in enumerate(texts)]


def _strip_page(text: str, playlist: Playlist, width: int, height: int,
                first: bool) -> QImage:
    """One strip page: the badge at the left, ``text`` fitted in the rest."""
    bg, fg = look.emergency_colours(playlist.risk_level)
    img, p = _canvas(width, height, bg)
    colour = QColor(fg)
    pen_w = max(2.0, height / 32)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    for r in (QRectF(0, 0, width, pen_w), QRectF(0, height - pen_w, width, pen_w),
              QRectF(0, 0, pen_w, height), QRectF(width - pen_w, 0, pen_w, height)):
        p.drawRect(r)
    # The badge: text-coloured block with the label in the background colour.
    badge_w = min(width * 0.22, height * 2.2)
    badge = QRectF(0, 0, badge_w, height)
    p.drawRect(badge)
    label = [Block("KHẨN CẤP", 1.0, True, QColor(bg), CENTER)]
    if playlist.risk_level:
        label.append(Block(f"CẤP {playlist.risk_level}", 1.0, True, QColor(bg), CENTER))
    pad = height * 0.1
    textfit.draw_fitted(p, badge.adjusted(pad, pad, -pad, -pad), label,
                        max_px=max(8, int(height * 0.3)))
    # The headline on one line as tall as it can be; body and instructions may wrap.
    inner = pen_w + height * 0.04
    area = QRectF(badge_w + inner * 2, inner, width - badge_w - inner * 3, height - 2 * inner)
    block = Block(text, 1.0, first, colour, CENTER)
    textfit.draw_fitted(p, area, [block], max_px=max(8, int(area.height() / 1.5)))
    p.end()
    return img


def headline(item: Item, playlist: Playlist) -> str:
    return item.title or playlist.title or item.body.split("\n")[0]


def idle(board_name: str, now: datetime, width: int, height: int) -> QImage:
    """The neutral screen: the board's name, the date and the time, in Vietnamese."""
    pal = look.PALETTES["idle"]
    img, p = _canvas(width, height, pal.background)
    m = _margin(width, height)
    blocks = [
        Block(board_name, 1.0, True, QColor(pal.title), CENTER),
        Block(format_date(now), 0.8, False, QColor(pal.text), CENTER),
        Block(format_time(now), 1.6, True, QColor(pal.title), CENTER),
    ]
    textfit.draw_fitted(p, QRectF(m, m, width - 2 * m, height - 2 * m), blocks,
                        max_px=max(8, height // 5))
    p.end()
    return img
