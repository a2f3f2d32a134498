"""The real daemons under a notify socket, as systemd runs them (Type=notify, WatchdogSec=).

`eboard sync` and `eboard play` must send READY=1 and then WATCHDOG=1 pings, or
systemd kills them at start-up (TimeoutStartSec=) or after WatchdogSec=.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path) -> Path:
    (tmp_path / "usb").mkdir()
    cfg = tmp_path / "eboard.toml"
    cfg.write_text(
        '[board]\nid = "test.board-01"\n'
        f'[source]\nurl = "{(tmp_path / "usb").as_uri()}/"\nlong_poll = false\n'
        f'[cache]\ndir = "{tmp_path / "cache"}"\n', encoding="utf-8")
    return cfg


def _messages(cmd: list[str], tmp_path: Path, wait_for: float) -> tuple[list[str], str]:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000",
               QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "eboard", *cmd], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    got: list[str] = []
    deadline = time.monotonic() + wait_for
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            if any("READY=1" in m for m in got) and sum(m == "WATCHDOG=1" for m in got) >= 2:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        end = time.monotonic() + 1
        while time.monotonic() < end:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    return got, err.decode(errors="replace")[-2000:]


def test_sync_daemon_tells_systemd_it_is_ready_and_alive(tmp_path: Path) -> None:
    got, err = _messages(["sync", "--config", str(_config(tmp_path))], tmp_path, 20)
    assert any("READY=1" in m for m in got), (got, err)
    assert sum(m == "WATCHDOG=1" for m in got) >= 2, (got, err)


def test_player_tells_systemd_it_is_ready_and_alive(tmp_path: Path) -> None:
    got, err = _messages(["play", "--config", str(_config(tmp_path))], tmp_path, 6)
    assert any("READY=1" in m for m in got), (got, err)
    assert sum(m == "WATCHDOG=1" for m in got) >= 2, (got, err)
