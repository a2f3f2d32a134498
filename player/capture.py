"""Screenshots of what is really on screen, and the player's side of player requests.

:func:`capture_screen_jpeg` grabs the X root window (``QScreen.grabWindow(0)``) over
the player's rectangle, so a clip drawn by libVLC into its own X window is in the
picture, not a black hole; where the platform cannot grab the screen (offscreen
tests) it grabs the widget instead. The sync side asks for screenshots and screen
changes through the ``player_requests`` table (content_sync.db.player_requests);
:func:`poll_player_requests` answers them and is cheap enough to call from a
QTimer every second (:func:`install_request_poller`). Call it on the GUI thread.

What the player can do on command is given explicitly, as :class:`PlayerActions`:
``set_forced_off`` switches the screen off/on (None: this player cannot, and says so
in the answer), ``restart`` restarts it (by default the application exits with status
75 and systemd, Restart=always, starts it again).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from content_sync.db import player_requests, screenshot_path

log = logging.getLogger(__name__)
RESTART_EXIT_STATUS = 75
JPEG_QUALITY = 80


def exit_to_restart() -> None:
    """Leave the event loop with the status that makes systemd start the player again."""
    QApplication.exit(RESTART_EXIT_STATUS)


@dataclass(frozen=True)
class PlayerActions:
    """What the player does when a request asks it to."""

    set_forced_off: Callable[[bool], None] | None = None  # None: cannot switch the screen
    restart: Callable[[], None] = exit_to_restart


def grab_screen(widget: QWidget) -> QPixmap:
    """The real screen over the widget's rectangle; the widget itself where that fails."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    pix = QPixmap()
    if screen is not None and QGuiApplication.platformName() not in ("offscreen", "minimal"):
        top_left = widget.mapToGlobal(widget.rect().topLeft())
        origin = screen.geometry().topLeft()
        pix = screen.grabWindow(0, top_left.x() - origin.x(), top_left.y() - origin.y(),
                                widget.width(), widget.height())
    if pix.isNull():
        pix = widget.grab()
    return pix


def capture_screen_jpeg(widget: QWidget, width: int, quality: int = JPEG_QUALITY) -> bytes:
    """A JPEG of what is on screen where ``widget`` is, scaled to ``width`` pixels wide."""
    pix = grab_screen(widget)
    if pix.isNull():
        raise RuntimeError("the screen could not be grabbed (no screen and no widget image)")
    if pix.width() != width:
        pix = pix.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pix.save(buf, "JPEG", quality):
        raise RuntimeError("Qt could not encode the screenshot as JPEG (imageformats plugin?)")
    buf.close()
    return bytes(data.data())


def write_screenshot(widget: QWidget, cache_dir: Path, width: int) -> Path:
    """Capture and write ``<cache>/screenshot.jpg`` atomically (temp file, fsync, rename)."""
    dest = screenshot_path(cache_dir)
    body = capture_screen_jpeg(widget, width)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return dest


def poll_player_requests(conn: sqlite3.Connection, window: QWidget, cache_dir: Path,
                         width: int, actions: PlayerActions = PlayerActions()) -> list[str]:
    """Do what pending requests ask (a screenshot of ``window``, the rest by ``actions``);
    write each answer. Returns the ids answered."""
    done: list[str] = []
    for req in player_requests.pending(conn):
        rid, kind = str(req["id"]), str(req["kind"])
        restart = False
        try:
            if kind == "screenshot":
                path = write_screenshot(window, cache_dir, width)
                ok, detail = True, f"screenshot {path.stat().st_size} bytes, {width} px wide"
            elif kind in ("screen_on", "screen_off"):
                if actions.set_forced_off is None:
                    ok, detail = False, "this player cannot switch the screen by command"
                else:
                    actions.set_forced_off(kind == "screen_off")
                    ok, detail = True, "screen off" if kind == "screen_off" else "screen on"
            elif kind == "restart_player":
                ok, detail, restart = True, "player restarting", True
            else:
                ok, detail = False, f"unknown player request {kind!r}"
        except Exception as e:  # an answer is always written, whatever happened
            log.exception("player request %s (%s) failed", rid, kind)
            ok, detail = False, f"{type(e).__name__}: {e}"
        player_requests.finish(conn, rid, ok, detail)
        done.append(rid)
        if restart:
            log.warning("restarting the player on remote command %s", rid)
            actions.restart()
            break
    return done


def apply_forced_off_at_start(conn: sqlite3.Connection, actions: PlayerActions) -> bool:
    """After a restart: keep the screen off if an operator switched it off."""
    off = player_requests.screen_forced_off(conn)
    if off and actions.set_forced_off is not None:
        actions.set_forced_off(True)
    return off


def install_request_poller(window: QWidget, conn: sqlite3.Connection, cache_dir: Path,
                           width: int, actions: PlayerActions, interval_ms: int = 1000,
                           parent: QObject | None = None) -> QTimer:
    """A QTimer on the GUI thread that answers player requests every ``interval_ms``."""
    timer = QTimer(parent or window)
    timer.setInterval(interval_ms)

    def tick() -> None:
        try:
            poll_player_requests(conn, window, cache_dir, width, actions)
        except sqlite3.Error as e:  # a locked or full database must not stop the screen
            log.warning("could not read player requests: %s", e)

    timer.timeout.connect(tick)
    timer.start()
    return timer
