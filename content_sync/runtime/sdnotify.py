"""sd_notify(3) without a dependency: tell systemd we are ready, alive, or stopping.

systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace)
to a ``Type=notify`` service, and ``$WATCHDOG_USEC`` when ``WatchdogSec=`` is set.
Outside systemd (a technician running ``eboard sync`` by hand, the tests) every
call here is a cheap no-op that returns False.

Used by both daemons; it must never import Qt. The Qt side (player/watchdog.py)
sends its pings through :func:`notify` from the player's own event loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)

_warned = False


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")
    if value.startswith("/"):
        return value
    return None  # vsock:… and other forms are not used on our boxes


def enabled() -> bool:
    """True when systemd (or a test) gave us a notify socket."""
    return _address(os.environ.get("NOTIFY_SOCKET", "")) is not None


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``, ``"STATUS=…"``) in one datagram.

    Returns True when the message was sent. Never raises: a failing notify socket
    must not take a daemon down (systemd will notice missing pings by itself).
    """
    global _warned
    addr = _address(os.environ.get("NOTIFY_SOCKET", ""))
    if addr is None or not fields:
        return False
    message = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message)
        return True
    except OSError as e:
        if not _warned:
            _warned = True
            log.warning("cannot send to the systemd notify socket %s (%s); "
                        "watchdog pings may be missed", os.environ.get("NOTIFY_SOCKET"), e)
        return False


def ready(status: str | None = None) -> bool:
    """Tell systemd start-up is done (``Type=notify`` services)."""
    return notify("READY=1", f"STATUS={status}") if status else notify("READY=1")


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return notify(f"STATUS={text}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between pings: half of ``$WATCHDOG_USEC``, or None without a watchdog.

    ``$WATCHDOG_PID``, when set, must be our pid (systemd sets it for the main
    process only; a child that inherited the environment must not ping).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2_000_000


class WatchdogThread:
    """Pings from a thread, for a daemon whose main loop is not a Qt event loop.

    A thread that pings regardless of progress would hide a hang, so the thread
    only pings while ``alive()`` returns True: the daemon calls :meth:`beat` from
    its loop, and ``alive`` is "a beat within ``stale_after`` seconds".
    """

    def __init__(self, stale_after: float | None = None) -> None:
        self.interval = watchdog_interval()
        default_stale = (self.interval or 30.0) * 4
        self.stale_after = stale_after if stale_after is not None else default_stale
        self._last_beat = _monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Call from the daemon's own loop to prove it is making progress."""
        self._last_beat = _monotonic()

    def alive(self) -> bool:
        return _monotonic() - self._last_beat < self.stale_after

    def start(self) -> bool:
        """Start pinging; False (and no thread) when systemd asked for no watchdog."""
        if self.interval is None or self._thread is not None:
            return False
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            if self.alive():
                watchdog_ping()
            else:
                log.error("main loop made no progress for %.1f s; stopping watchdog pings "
                          "so that systemd restarts the daemon", self.stale_after)
                return


def _monotonic() -> float:
    return time.monotonic()
