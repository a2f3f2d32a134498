"""Running the player as a program: the QApplication, signals, screenshots, duration."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import QApplication

from content_sync.db import store
from kiosk_config import Config
from player import capture, watchdog
from player.window import PlayerWindow

log = logging.getLogger(__name__)


def grab_screen(window: PlayerWindow) -> QPixmap:
    """What is on the real screen (the X root window); the window itself where the
    platform cannot grab the screen (offscreen)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    pix = screen.grabWindow(0) if screen is not None else QPixmap()
    if pix.isNull() or QGuiApplication.platformName() in ("offscreen", "minimal"):
        pix = window.grab()
    return pix


class _Screenshots:
    def __init__(self, window: PlayerWindow, folder: Path, interval: float) -> None:
        self.window = window
        self.folder = folder
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)
        self.timer = QTimer(window)
        self.timer.setInterval(max(100, int(interval * 1000)))
        self.timer.timeout.connect(self.take)
        self.timer.start()
        QTimer.singleShot(min(1500, self.timer.interval()), self.take)
        log.info("saving a screenshot every %g s into %s", interval, folder.resolve())

    def take(self) -> None:
        name = f"screen-{datetime.now():%Y%m%d-%H%M%S}-{self.count:04d}.png"
        path = self.folder / name
        if grab_screen(self.window).save(str(path), "PNG"):
            self.count += 1
        else:
            log.warning("could not save the screenshot %s", path)


def run(config: Config, duration: float | None = None, screenshot_dir: Path | None = None,
        screenshot_interval: float = 5.0) -> int:
    """Show the board until stopped (SIGTERM, SIGINT) or for ``duration`` seconds."""
    t0 = time.monotonic()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("eboard-player")
    window = PlayerWindow(config)
    window.content_painted.connect(
        lambda t: log.info("first content on screen %.0f ms after start (monotonic %.4f)",
                           (t - t0) * 1000, t))
    requests_conn: sqlite3.Connection | None = None
    try:
        requests_conn = store.connect(config.db_path)
        actions = capture.PlayerActions(set_forced_off=window.set_forced_off)
        capture.apply_forced_off_at_start(requests_conn, actions)
        capture.install_request_poller(window, requests_conn, config.cache_dir,
                                       config.status.screenshot_width, actions)
    except (sqlite3.Error, OSError) as e:
        log.error("remote screen commands are off: cannot write %s (%s)", config.db_path, e)
    watchdog.start_watchdog(window)
    window.first_frame.connect(lambda: watchdog.notify_ready())
    window.show_on_screen()
    shots = (_Screenshots(window, screenshot_dir, screenshot_interval)
             if screenshot_dir is not None else None)

    def _finish() -> None:
        if shots is not None:  # the last picture, while the window is still up
            shots.timer.stop()
            shots.take()
            log.info("%d screenshot(s) in %s", shots.count, screenshot_dir)
        app.quit()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        QTimer.singleShot(0, _finish)

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    if duration is not None and duration > 0:
        QTimer.singleShot(int(duration * 1000), _finish)
    try:
        rc = app.exec()
    finally:
        watchdog.notify_stopping()
        window.shutdown()
        quit_on_close = app.quitOnLastWindowClosed()
        app.setQuitOnLastWindowClosed(False)  # no second quit posted by this close
        window.close()
        window.deleteLater()  # with it, the request poller's timer
        app.setQuitOnLastWindowClosed(quit_on_close)
        if requests_conn is not None:
            requests_conn.close()
        for s, h in old.items():
            signal.signal(s, h)
    return int(rc)
