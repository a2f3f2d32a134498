"""The systemd watchdog: pings come from the event loop, and stop when it freezes.

A real Qt app runs in a child process with NOTIFY_SOCKET pointing at a datagram
socket this test opens, as systemd would; the test reads what the app sends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from content_sync.runtime import sdnotify

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel
    from player.watchdog import notify_ready, notify_status, start_watchdog

    app = QApplication(sys.argv)
    label = QLabel("Bảng tin điện tử")
    label.show()
    timer = start_watchdog(label)
    assert timer is not None, "WATCHDOG_USEC was set, a timer was expected"
    QTimer.singleShot(0, notify_ready)

    def freeze():
        notify_status("freezing")
        time.sleep(2.5)          # a slot that hangs: the event loop is frozen
        notify_status("thawed")
        QTimer.singleShot(600, app.quit)

    QTimer.singleShot(1000, freeze)
    sys.exit(app.exec())
    """
)


def _receive_all(sock: socket.socket, proc: subprocess.Popen[bytes], limit: float
                 ) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    deadline = time.monotonic() + limit
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            if proc.poll() is not None:
                break
            continue
        got.append((time.monotonic(), data.decode("utf-8")))
    return got


def test_frozen_event_loop_stops_the_pings(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="200000",
               QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-c", APP], env=env, cwd=ROOT,
                            stderr=subprocess.PIPE)
    try:
        got = _receive_all(sock, proc, limit=30)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err.decode(errors="replace")
    messages = [m for _, m in got]
    assert any("READY=1" in m for m in messages), messages

    def when(text: str) -> float:
        return next(t for t, m in got if text in m)

    frozen, thawed = when("STATUS=freezing"), when("STATUS=thawed")
    pings = [t for t, m in got if m == "WATCHDOG=1"]
    before = [t for t in pings if t < frozen]
    during = [t for t in pings if frozen < t < thawed]
    after = [t for t in pings if t > thawed]
    # Every 100 ms while the loop runs (at least a few in the first second) ...
    assert len(before) >= 4, pings
    # ... none while a slot hangs ...
    assert during == [], f"pings while the event loop was frozen: {during}"
    assert thawed - frozen >= 2.4
    # ... and again once it runs.
    assert len(after) >= 2, pings


def test_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert sdnotify.watchdog_interval() is None


def test_without_systemd_everything_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.enabled()
    assert sdnotify.ready() is False
    assert sdnotify.watchdog_ping() is False


def test_abstract_socket_and_thread_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync daemon's thread pings only while its loop beats."""
    name = f"eboard-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        assert sdnotify.ready("syncing")
        assert sock.recv(4096) == b"READY=1\nSTATUS=syncing"
        wd = sdnotify.WatchdogThread(stale_after=0.4)
        assert wd.start()
        assert sock.recv(4096) == b"WATCHDOG=1"
        time.sleep(0.8)  # no beat: the thread must give up
        sock.settimeout(0.3)
        drained = []
        while True:
            try:
                drained.append(sock.recv(4096))
            except TimeoutError:
                break
        assert not wd.alive()
        assert 3 <= len(drained) <= 9, drained  # 50 ms pings for 0.4 s, then none
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        wd.stop()
    finally:
        sock.close()
