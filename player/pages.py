"""The pages of the still on screen when it has more than one (an emergency on a strip
board): which page is up, and the timer of the next one.

The composer (player/composer.py) gives the pages with how long each stays; the
controller (player/controller.py) turns the page when the timer says so and draws it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QImage

Page = tuple[QImage, float]  # the picture and how many seconds it stays


class Pages:
    """``on_due`` is called on the GUI thread when the page on screen has stayed its time."""

    def __init__(self, parent: QObject, on_due: Callable[[], None]) -> None:
        self.index = 0  # the page on screen
        self.count = 1
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(on_due)

    def reset(self) -> None:
        """The item on screen has left it: the next one starts at its first page."""
        self._timer.stop()
        self.index, self.count = 0, 1

    def up(self, pages: list[Page]) -> QImage:
        """The picture of the page on screen, among ``pages`` (drawn again: the same
        page, or the last if there are fewer now)."""
        self.index = min(self.index, len(pages) - 1)
        return pages[self.index][0]

    def turn_later(self, pages: list[Page]) -> None:
        """Set the timer of the next page when the item has several."""
        self.count = len(pages)
        self._timer.stop()
        if len(pages) > 1:
            self._timer.start(max(500, round(pages[self.index][1] * 1000)))

    def turn(self) -> None:
        """The next page is up (the first after the last)."""
        self.index = (self.index + 1) % self.count
