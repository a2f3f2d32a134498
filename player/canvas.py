"""The board's surface: header band, main area, ticker band, rotation, blanking.

One widget paints everything with one QPainter, rotated for boards mounted at
90/180/270 degrees. The main area shows a finished picture (or the latest video
frame); the ticker repaints only its band, once per display frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QTransform,
)
from PySide6.QtWidgets import QWidget

from kiosk_config import Config
from player import look
from player.bands import Header, Ticker
from player.scene import Scene, ScreenMode
from player.vietnamese import format_datetime

log = logging.getLogger(__name__)


class Canvas(QWidget):
    """Paints the scene it was last given; ``painted`` after each paint, ``resized``
    when its size changes (the zones depend on it)."""

    painted = Signal()
    resized = Signal()

    def __init__(self, config: Config, video_frame: Callable[[], QImage | None],
                 clock: Callable[[], datetime], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self._video_frame = video_frame  # the latest frame of the clip on screen, if any
        self._clock = clock  # the header's date and time
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._header = Header()
        self.ticker = Ticker(config.display.ticker_speed)
        self._zones = look.zones(1, 1, False, False)
        self._slide: QImage | None = None
        self._blanked = False
        self._frame = QTimer(self)
        self._frame.timeout.connect(self.update_ticker)
        self._frame.setTimerType(Qt.TimerType.PreciseTimer)

    def logical_size(self) -> tuple[int, int]:
        return look.logical_size(self.width(), self.height(), self.config.display.rotation)

    def _transform(self) -> QTransform:
        t = QTransform()
        w, h = self.width(), self.height()
        rot = self.config.display.rotation
        if rot == 90:
            t.translate(w, 0)
        elif rot == 180:
            t.translate(w, h)
        elif rot == 270:
            t.translate(0, h)
        t.rotate(rot)
        return t

    def _device_rect(self, r: look.Rect) -> QRect:
        # Exact: the zones are whole pixels and the rotations quarter turns, so a
        # band's repaint never spills into its neighbour's pixels.
        return self._transform().mapRect(QRect(*r))

    # ---- scene ----------------------------------------------------------------------
    @property
    def picture(self) -> QImage | None:
        """The finished picture in the main area (None: video or black)."""
        return self._slide

    def show_scene(self, scene: Scene) -> None:
        """Paint ``scene`` from the next frame on. A blank scene keeps the zones and the
        ticker of the one before, for the screen that comes back on."""
        self._slide = scene.picture
        if scene.mode is ScreenMode.BLANKED:
            self.set_blanked(True)
            return
        self._zones = scene.zones
        if scene.zones.ticker is not None:
            th = scene.zones.ticker[3]
            if scene.mode is ScreenMode.EMERGENCY:
                bg, fg = look.emergency_colours(scene.risk_level)
                self.ticker.set_text(scene.ticker_text, th, bg, "#000000")
            else:
                self.ticker.set_text(scene.ticker_text, th, look.TICKER.text,
                                     look.TICKER.background)
        self._blanked = False
        self._update_frame_timer()
        self.update()

    def repaint_video(self) -> None:
        """A new video frame: repaint the main area when the video draws it."""
        if self._slide is None and not self._blanked:
            self.update(self._device_rect(self._zones.main))

    def repaint_header(self) -> None:
        """A new minute: the header's clock."""
        if self._zones.header is not None and not self._blanked:
            self.update(self._device_rect(self._zones.header))

    def set_blanked(self, blanked: bool) -> None:
        if blanked != self._blanked:
            self._blanked = blanked
            self._update_frame_timer()
            self.update()

    def _update_frame_timer(self) -> None:
        if self._zones.ticker is not None and self.ticker.text and not self._blanked:
            if not self._frame.isActive():
                screen = self.screen() or QGuiApplication.primaryScreen()
                hz = screen.refreshRate() if screen is not None else 60.0
                self._frame.setInterval(max(4, int(1000 / (hz if hz >= 20 else 60.0))))
                self.ticker.reset_stats()
                self._frame.start()
        else:
            self._frame.stop()

    def stop(self) -> None:
        """No more frames of the ticker (the player is stopping)."""
        self._frame.stop()

    def update_ticker(self) -> None:
        if self._zones.ticker is not None:
            self.update(self._device_rect(self._zones.ticker))

    # ---- painting -------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        if self._blanked:
            p.fillRect(self.rect(), QColor(look.BLACK))
            p.end()
            return
        p.setTransform(self._transform())
        z = self._zones
        if z.header is not None:
            r = QRect(*z.header)
            now = self._clock()
            img = self._header.image(self.config.board.name, format_datetime(now), r.width(),
                                     r.height(), look.HEADER.title, look.HEADER.text,
                                     look.HEADER.background)
            p.drawImage(r.topLeft(), img)
        main = QRect(*z.main)
        picture = self._slide if self._slide is not None else self._video_frame()
        if picture is None:
            p.fillRect(main, QColor(look.BLACK))
        elif picture.width() == main.width() and picture.height() == main.height():
            p.drawImage(main.topLeft(), picture)
        else:  # a video frame letterboxed in the main area, or a resize in progress
            p.fillRect(main, QColor(look.BLACK))
            scaled = picture.size().scaled(main.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(QPoint(0, 0), scaled)
            target.moveCenter(main.center())
            p.drawImage(target, picture)
        if z.ticker is not None:
            band = QRect(*z.ticker)
            device = self._device_rect(z.ticker)
            if event.region().intersects(device):
                # A frame of the scroll only when the whole band is repainted.
                self.ticker.paint(p, band, whole=event.region().contains(device))
        p.end()
        self.painted.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()
