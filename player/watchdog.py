"""systemd watchdog for the player, driven by the Qt event loop itself.

The pings come from a QTimer on the GUI thread, so a frozen event loop (a slot
that never returns, a deadlock in a paint) stops them, and systemd restarts the
player after ``WatchdogSec=``. A ping thread would keep a frozen screen alive.

Use::

    timer = start_watchdog(window)      # after QApplication exists
    ...
    notify_ready()                      # once the first frame is on screen

Outside systemd (no ``$NOTIFY_SOCKET`` / ``$WATCHDOG_USEC``) both are no-ops.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer

from content_sync.runtime import sdnotify

log = logging.getLogger(__name__)


def start_watchdog(parent: QObject | None = None) -> QTimer | None:
    """Ping ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` from the Qt event loop.

    Returns the running timer (keep a reference, or give a ``parent``), or None
    when systemd asked for no watchdog. A first ping is sent at once.
    """
    interval = sdnotify.watchdog_interval()
    if interval is None:
        return None
    timer = QTimer(parent)
    timer.setObjectName("eboard-sd-watchdog")
    timer.setInterval(max(50, int(interval * 1000)))
    timer.timeout.connect(sdnotify.watchdog_ping)
    timer.start()
    sdnotify.watchdog_ping()
    log.info("systemd watchdog: pinging every %.1f s from the event loop", interval)
    return timer


def notify_ready(status: str = "showing content") -> bool:
    """Tell systemd the player is up (call when the first frame is on screen)."""
    return sdnotify.ready(status)


def notify_status(text: str) -> bool:
    """Update the line ``systemctl status eboard-player`` shows."""
    return sdnotify.status(text)


def notify_stopping() -> bool:
    return sdnotify.stopping()
