"""The board's surface: header band, main area, ticker band, rotation, blanking.

One widget paints everything with one QPainter, rotated for boards mounted at
90/180/270 degrees. The main area shows a finished picture (or the latest video
frame); the ticker repaints only its band, once per display frame.
"""

from __future__ import annotations

import logging
from datetime import datetime

from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QScreen,
    QTransform,
)
from PySide6.QtWidgets import QWidget

from kiosk_config import Config
from player import look
from player.bands import Header, Ticker
from player.vietnamese import format_datetime

log = logging.getLogger(__name__)

# How long the screens must have stayed unchanged before the window is placed again.
REPLACE_DELAY_MS = 400


def _rect_text(r: QRect) -> str:
    return f"{r.width()}x{r.height()}+{r.x()}+{r.y()}"


class Canvas(QWidget):
    def __init__(self, config: Config, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.setWindowTitle(f"eboard — {config.board.name}")
        self.setWindowFlags(Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint
                            | Qt.WindowType.WindowStaysOnTopHint)
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._header = Header()
        self._ticker = Ticker(config.display.ticker_speed)
        self._mode = "idle"
        self._zones = look.zones(1, 1, False, False)
        self._slide: QImage | None = None
        self._blanked = False
        self._frame = QTimer(self)
        self._frame.timeout.connect(self.update_ticker)
        self._frame.setTimerType(Qt.TimerType.PreciseTimer)
        self._watching = False
        self._placed_on: tuple[str, str] | None = None  # (screen, window) last placed
        self._replace = QTimer(self)
        self._replace.setSingleShot(True)
        self._replace.setInterval(REPLACE_DELAY_MS)
        self._replace.timeout.connect(self._place)
        rect = config.display.rect()
        self.resize(rect[0], rect[1]) if rect else self.resize(1280, 720)

    # ---- geometry -------------------------------------------------------------------
    def show_on_screen(self) -> None:
        """Show on the exact rectangle of ``display.geometry``, or full screen, and
        place it again when the screens change: a new resolution (xrandr, a sending
        card's EDID), a monitor switched off and on (its screen removed and added)."""
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication) and not self._watching:
            self._watching = True
            app.screenAdded.connect(self._watch_screen)
            app.screenAdded.connect(self._screens_changed)
            app.screenRemoved.connect(self._screens_changed)
            app.primaryScreenChanged.connect(self._screens_changed)
            for screen in QGuiApplication.screens():
                self._watch_screen(screen)
        self._place()

    def _watch_screen(self, screen: QScreen) -> None:
        screen.geometryChanged.connect(self._screens_changed)

    def _screens_changed(self, *_args: object) -> None:
        # One change of mode is a burst of signals (geometry, screen added, primary
        # changed, screen removed): the window is placed once, after the last.
        self._replace.start()

    def _screen_for_window(self) -> QScreen | None:
        return QGuiApplication.primaryScreen()

    def _place(self) -> None:
        screen = self._screen_for_window()
        before = self._placed_on
        rect = self.config.display.rect()
        handle = self.windowHandle()
        if screen is not None and handle is not None and handle.screen() is not screen:
            handle.setScreen(screen)
        if rect is not None:
            w, h, x, y = rect
            self.setGeometry(x, y, w, h)
            self.show()
        else:
            if screen is not None:
                self.setGeometry(screen.geometry())
            self.showFullScreen()
        if QGuiApplication.platformName() not in ("offscreen", "minimal"):
            self.raise_()
        here = _rect_text(self.geometry())
        there = "no screen" if screen is None else _rect_text(screen.geometry())
        self._placed_on = (there, here)
        if before is None:
            log.info("window placed at %s on the screen %s, rotation %d", here, there,
                     self.config.display.rotation)
        elif before != self._placed_on:
            log.info("the screen changed from %s to %s: window placed at %s, rotation %d",
                     before[0], there, here, self.config.display.rotation)
        else:
            log.debug("the screens changed; the screen is still %s, window at %s",
                      there, here)
        desktop = None if screen is None else screen.virtualGeometry()
        if rect is not None and desktop is not None and not desktop.contains(self.geometry()):
            log.warning("display.geometry %s is not inside the screen %s: part of the "
                        "board is not shown", self.config.display.geometry,
                        _rect_text(desktop))
        self._placed()

    def _placed(self) -> None:
        """Hook: the window has been placed (at start, or again after a screen change)."""

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

    def zones_for(self, mode: str, ticker_text: str) -> look.Zones:
        w, h = self.logical_size()
        header = self.config.display.header and mode == "normal"
        return look.zones(w, h, header, self.config.display.ticker and bool(ticker_text))

    # ---- scene ----------------------------------------------------------------------
    def set_scene(self, mode: str, zones: look.Zones, slide: QImage | None,
                  ticker_text: str) -> None:
        """Put a finished picture on screen (None: the video surface draws the main area)."""
        self._mode, self._zones, self._slide = mode, zones, slide
        if zones.ticker is not None:
            th = zones.ticker[3]
            if mode == "emergency":
                bg, fg = look.emergency_colours(self._emergency_level())
                self._ticker.set_text(ticker_text, th, bg, "#000000")
            else:
                self._ticker.set_text(ticker_text, th, look.TICKER.text, look.TICKER.background)
        self._update_frame_timer()
        self.update()

    def _emergency_level(self) -> int | None:
        return None

    def set_blanked(self, blanked: bool) -> None:
        if blanked != self._blanked:
            self._blanked = blanked
            self._update_frame_timer()
            self.update()

    def _update_frame_timer(self) -> None:
        if self._zones.ticker is not None and self._ticker.text and not self._blanked:
            if not self._frame.isActive():
                screen = self.screen() or QGuiApplication.primaryScreen()
                hz = screen.refreshRate() if screen is not None else 60.0
                self._frame.setInterval(max(4, int(1000 / (hz if hz >= 20 else 60.0))))
                self._ticker.reset_stats()
                self._frame.start()
        else:
            self._frame.stop()

    def update_ticker(self) -> None:
        if self._zones.ticker is not None:
            self.update(self._device_rect(self._zones.ticker))

    def video_frame(self) -> QImage | None:
        return None

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
            now = self._now()
            img = self._header.image(self.config.board.name, format_datetime(now), r.width(),
                                     r.height(), look.HEADER.title, look.HEADER.text,
                                     look.HEADER.background)
            p.drawImage(r.topLeft(), img)
        main = QRect(*z.main)
        picture = self._slide if self._slide is not None else self.video_frame()
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
                self._ticker.paint(p, band, whole=event.region().contains(device))
        p.end()
        self._painted()

    def _painted(self) -> None:
        pass

    def _now(self) -> datetime:
        return datetime.now(self.config.tz)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescene()

    def _rescene(self) -> None:
        pass
