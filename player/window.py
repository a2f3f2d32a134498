"""The board's window: a frameless top-level widget that holds the canvas.

It puts the window where the board is (player/placement.py), wires the controller
(player/controller.py: what plays, when, and its proof of play) to the canvas
(player/canvas.py: paints the scene it is given), and reports where it is for the
status. It decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QImage, QResizeEvent
from PySide6.QtWidgets import QWidget

from content_sync.db import PlayerStatus
from kiosk_config import Config
from player import fonts
from player.bands import Ticker
from player.canvas import Canvas
from player.controller import Controller
from player.placement import Placement
from player.scene import ScreenMode, ViewReport
from player.schedule import Choice


class PlayerWindow(QWidget):
    """The board. ``check_now()`` forces an immediate reload check."""

    item_started = Signal(str, str)  # playlist id, item id
    idle_shown = Signal()
    content_painted = Signal(float)  # monotonic time of the first frame with content
    first_frame = Signal()  # the first frame of anything (idle screen included)

    def __init__(self, config: Config, parent: QWidget | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        fonts.family()
        super().__init__(parent)
        self.config = config
        self.setWindowTitle(f"eboard — {config.board.name}")
        self.setWindowFlags(Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint
                            | Qt.WindowType.WindowStaysOnTopHint)
        self.setCursor(Qt.CursorShape.BlankCursor)
        # The canvas covers every pixel: nothing is painted under it.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.controller = Controller(config, clock, self._view_report, self)
        now = clock or (lambda: datetime.now(config.tz))
        self.canvas = Canvas(config, self.controller.video_frame, now, self)
        self._placement = Placement(config, self)
        rect = config.display.rect()
        self.resize(rect[0], rect[1]) if rect else self.resize(1280, 720)
        self.canvas.setGeometry(self.rect())
        c = self.controller
        c.scene.connect(self.canvas.show_scene)
        c.minute.connect(self.canvas.repaint_header)
        c.video_repaint.connect(self.canvas.repaint_video)
        c.item_started.connect(self.item_started)
        c.idle_shown.connect(self.idle_shown)
        c.content_painted.connect(self.content_painted)
        c.first_frame.connect(self.first_frame)
        self.canvas.painted.connect(c.note_painted)
        self.canvas.resized.connect(self._canvas_resized)
        self._placement.placed.connect(c.status_soon)
        c.set_size(*self.canvas.logical_size())
        c.start()

    # ---- public ---------------------------------------------------------------------
    def show_on_screen(self) -> None:
        """Show on the exact rectangle of ``display.geometry``, or full screen, and
        place it again when the screens change."""
        self._placement.show_on_screen()

    def check_now(self) -> None:
        """Re-read the database and re-decide at once."""
        self.controller.check_now()

    def set_forced_off(self, off: bool) -> None:
        """Screen off (or back on) by an operator's command; an emergency still shows."""
        self.controller.set_forced_off(off)

    @property
    def current(self) -> Choice | None:
        return self.controller.current

    @property
    def mode(self) -> ScreenMode:
        """Normal, emergency, idle or blanked (compares equal to those strings)."""
        return self.controller.mode

    @property
    def ticker(self) -> Ticker:
        return self.canvas.ticker

    def video_frame(self) -> QImage | None:
        return self.controller.video_frame()

    def status(self) -> PlayerStatus:
        return self.controller.status()

    def shutdown(self) -> None:
        """Close the current record, write the last status, stop the writer."""
        self.canvas.stop()
        self.controller.shutdown()

    # ---- Qt -------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.canvas.setGeometry(self.rect())

    def _canvas_resized(self) -> None:
        self.controller.set_size(*self.canvas.logical_size())

    def _view_report(self) -> ViewReport:
        return ViewReport(self.width(), self.height(), self.x(), self.y(),
                          self.canvas.ticker.frame_stats())
