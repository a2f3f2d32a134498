"""The header band (board name, date and time) and the ticker band (a scroll).

Both are pre-rendered strips; painting them is one blit. The ticker's offset is
``speed x elapsed monotonic time``, so it moves at a constant pixels-per-second
whatever the frame rate, and the window repaints it once per display frame.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPainter

from player import fonts
from player.vietnamese import nfc


def _text_strip(text: str, height: int, px: int, fg: str, bg: str, bold: bool) -> QImage:
    font = fonts.font(px, bold)
    fm = QFontMetricsF(font)
    width = max(1, int(fm.horizontalAdvance(text)) + 2)
    img = QImage(width, max(1, height), QImage.Format.Format_RGB32)
    img.fill(QColor(bg))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    p.setFont(font)
    p.setPen(QColor(fg))
    baseline = (height - (fm.ascent() + fm.descent())) / 2 + fm.ascent()
    p.drawText(QPointF(1, baseline), text)
    p.end()
    return img


class Header:
    """Board name on the left, 'Thứ Hai, 24/11/2026 08:30' on the right."""

    def __init__(self) -> None:
        self._key: tuple[str, str, int, int] | None = None
        self._img: QImage | None = None

    def image(self, name: str, when: str, width: int, height: int, fg: str, accent: str,
              bg: str) -> QImage:
        key = (name, when, width, height)
        if self._key != key or self._img is None:
            img = QImage(max(1, width), max(1, height), QImage.Format.Format_RGB32)
            img.fill(QColor(bg))
            p = QPainter(img)
            p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            px = max(8, round(height * 0.55))
            pad = max(4, height // 4)
            font_b = fonts.font(px, True)
            font_r = fonts.font(px, False)
            when_w = QFontMetricsF(font_r).horizontalAdvance(when)
            p.setFont(font_r)
            p.setPen(QColor(accent))
            right = QRectF(width - pad - when_w, 0, when_w, height)
            p.drawText(right, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, when)
            p.setFont(font_b)
            p.setPen(QColor(fg))
            left = QRectF(pad, 0, max(0.0, width - 3 * pad - when_w), height)
            elided = QFontMetricsF(font_b).elidedText(
                nfc(name), Qt.TextElideMode.ElideRight, left.width())
            p.drawText(left, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, elided)
            p.end()
            self._key, self._img = key, img
        return self._img


class Ticker:
    """A continuous right-to-left scroll of one line of text."""

    def __init__(self, speed: float) -> None:
        self.speed = float(speed)
        self.text = ""
        self._strip: QImage | None = None
        self._key: tuple[str, int, str, str] | None = None
        self._t0 = time.monotonic()
        self.frame_intervals: deque[float] = deque(maxlen=600)
        self._last_frame: float | None = None

    def set_text(self, text: str, height: int, fg: str, bg: str) -> bool:
        """Set what scrolls; return True when it changed (the scroll restarts)."""
        text = nfc(" ".join(text.split()))
        key = (text, height, fg, bg)
        if key == self._key:
            return False
        self._key = key
        self.text = text
        self._bg = bg
        self._strip = (
            _text_strip(text, height, max(8, round(height * 0.6)), fg, bg, True) if text else None
        )
        self._t0 = time.monotonic()
        return True

    def offset(self, band_width: int, now: float) -> tuple[int, int]:
        """(x of the first copy, cycle length) at monotonic time ``now``."""
        if self._strip is None:
            return 0, 1
        gap = max(band_width // 3, self._strip.height() * 3)
        cycle = self._strip.width() + gap
        return -int(self.speed * (now - self._t0)) % cycle - cycle, cycle

    def paint(self, p: QPainter, rect: QRect, now: float | None = None,
              whole: bool = True) -> None:
        """Draw the band at ``now``; ``whole`` = the band's frame (counted in the
        statistics), not a part of it repainted for a neighbour."""
        now = time.monotonic() if now is None else now
        if whole:
            if self._last_frame is not None:
                self.frame_intervals.append(now - self._last_frame)
            self._last_frame = now
        p.fillRect(rect, QColor(self._bg if self._key else "#000000"))
        if self._strip is None:
            return
        x, cycle = self.offset(rect.width(), now)
        p.save()
        p.setClipRect(rect, Qt.ClipOperation.IntersectClip)
        while x < rect.width():
            if x + self._strip.width() > 0:
                p.drawImage(QPoint(rect.x() + x, rect.y()), self._strip)
            x += cycle
        p.restore()

    def reset_stats(self) -> None:
        self.frame_intervals.clear()
        self._last_frame = None

    def frame_stats(self) -> dict[str, float]:
        """p50, p99 and max of recent frame intervals, in milliseconds."""
        xs = sorted(self.frame_intervals)
        if not xs:
            return {}

        def q(f: float) -> float:
            return round(xs[min(len(xs) - 1, int(f * len(xs)))] * 1000, 2)

        return {"p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": round(xs[-1] * 1000, 2),
                "frames": float(len(xs))}
