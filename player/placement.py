"""Where the board's window goes: the exact ``display.geometry`` rectangle of the
desktop (what an LED sending card mirrors), or full screen, placed again when the
screens change (a new resolution, a monitor switched off and on)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QRect, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

from kiosk_config import Config

log = logging.getLogger(__name__)

# How long the screens must have stayed unchanged before the window is placed again.
REPLACE_DELAY_MS = 400


def rect_text(r: QRect) -> str:
    return f"{r.width()}x{r.height()}+{r.x()}+{r.y()}"


class Placement(QObject):
    """Places ``window`` (a top-level widget); ``placed`` after every placement."""

    placed = Signal()

    def __init__(self, config: Config, window: QWidget) -> None:
        super().__init__(window)
        self.config = config
        self._window = window
        self._watching = False
        self._placed_on: tuple[str, str] | None = None  # (screen, window) last placed
        self._replace = QTimer(self)
        self._replace.setSingleShot(True)
        self._replace.setInterval(REPLACE_DELAY_MS)
        self._replace.timeout.connect(self.place)

    def show_on_screen(self) -> None:
        """Show the window and follow the screens from now on."""
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication) and not self._watching:
            self._watching = True
            app.screenAdded.connect(self._watch_screen)
            app.screenAdded.connect(self._screens_changed)
            app.screenRemoved.connect(self._screens_changed)
            app.primaryScreenChanged.connect(self._screens_changed)
            for screen in QGuiApplication.screens():
                self._watch_screen(screen)
        self.place()

    def _watch_screen(self, screen: QScreen) -> None:
        screen.geometryChanged.connect(self._screens_changed)

    def _screens_changed(self, *_args: object) -> None:
        # One change of mode is a burst of signals (geometry, screen added, primary
        # changed, screen removed): the window is placed once, after the last.
        self._replace.start()

    def place(self) -> None:
        w = self._window
        screen = QGuiApplication.primaryScreen()
        before = self._placed_on
        rect = self.config.display.rect()
        handle = w.windowHandle()
        if screen is not None and handle is not None and handle.screen() is not screen:
            handle.setScreen(screen)
        if rect is not None:
            width, height, x, y = rect
            w.setGeometry(x, y, width, height)
            w.show()
        else:
            if screen is not None:
                w.setGeometry(screen.geometry())
            w.showFullScreen()
        if QGuiApplication.platformName() not in ("offscreen", "minimal"):
            w.raise_()
        here = rect_text(w.geometry())
        there = "no screen" if screen is None else rect_text(screen.geometry())
        self._placed_on = (there, here)
        rotation = self.config.display.rotation
        if before is None:
            log.info("window placed at %s on the screen %s, rotation %d", here, there, rotation)
        elif before != self._placed_on:
            log.info("the screen changed from %s to %s: window placed at %s, rotation %d",
                     before[0], there, here, rotation)
        else:
            log.debug("the screens changed; the screen is still %s, window at %s",
                      there, here)
        desktop = None if screen is None else screen.virtualGeometry()
        if rect is not None and desktop is not None and not desktop.contains(w.geometry()):
            log.warning("display.geometry %s is not inside the screen %s: part of the "
                        "board is not shown", self.config.display.geometry,
                        rect_text(desktop))
        self.placed.emit()
