"""The display goes away and comes back: the real player (``eboard play``, Qt's xcb
platform) on a private Xvfb that the test kills and starts again, the way the X server
dies and systemd restarts it (systemd/eboard-x11 and the player's Restart=always).

The player must not hang on a dead display: it exits, with a line that names the X
connection, so systemd can restart it; started again once X is back, it shows the
content again, and fills the new screen when X comes back at another resolution (a
different monitor on the HDMI port). A live xrandr mode switch, with the player
running, is in test_display_resolution_xvfb.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from content_sync.db import store
from kiosk_config import load_config
from tests.kit.player import Board, playlist, png
from tests.kit.reliability import box_config, check_box, start_player
from tests.kit.status import wait_until

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")


def xvfb(size: str, number: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start Xvfb (on ``:number``, or a free one it picks); return it and its number."""
    args = ["Xvfb", "-screen", "0", size, "-nolisten", "tcp", "-noreset"]
    if number is not None:
        proc = subprocess.Popen(["Xvfb", f":{number}", *args[1:]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = Path(f"/tmp/.X11-unix/X{number}")
        assert wait_until(sock.exists, timeout=10), "Xvfb did not come back"
        return proc, number
    r, w = os.pipe()
    proc = subprocess.Popen([args[0], "-displayfd", str(w), *args[1:]], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        num = f.readline().strip()
    assert num, "Xvfb did not start"
    return proc, int(num)


def _player_screen(db: Path) -> tuple[int, int, int]:
    """(width, height, plays recorded) from the player's own status."""
    conn = store.connect(db, readonly=True)
    try:
        st = store.get_status(conn, "player") or {}
    finally:
        conn.close()
    screen = st.get("screen") or {}
    return int(screen.get("width", 0)), int(screen.get("height", 0)), \
        int(st.get("plays_recorded", 0))


def test_x_server_goes_away_and_comes_back_at_another_size(tmp_path: Path) -> None:
    cfg = box_config(tmp_path / "box", "http://127.0.0.1:9/", [],
                     display={"geometry": "fullscreen", "header": True, "ticker": True})
    config = load_config(cfg)
    board = Board(config)
    red, blue = board.add_media(png((200, 20, 20))), board.add_media(png((20, 20, 200)))
    board.publish([playlist("thong-bao", [
        {"id": "do", "type": "image", "media": red, "duration": 1},
        {"id": "tb", "type": "text", "title": "THÔNG BÁO", "body": "Họp dân lúc 8 giờ",
         "duration": 1},
        {"id": "xanh", "type": "image", "media": blue, "duration": 1}])])
    board.close()
    db = config.db_path
    logs = tmp_path / "logs"
    x, number = xvfb("640x360x24")
    player = start_player(cfg, logs, QT_QPA_PLATFORM="xcb", DISPLAY=f":{number}")
    try:
        assert wait_until(lambda: _player_screen(db)[:2] == (640, 360) and
                          _player_screen(db)[2] >= 2, timeout=30), player.text()[-2000:]
        # X dies (a crash, a driver reset): the player must not hang on it.
        x.send_signal(signal.SIGKILL)
        x.wait(10)
        assert wait_until(lambda: not player.alive(), timeout=30), "player hangs without X"
        rc = player.popen.returncode
        player.close()
        log = player.text()
        assert rc != 0, "a player that lost its display must not report success"
        assert "X11 connection" in log or "display" in log.lower(), log[-2000:]
        assert check_box(db, config.cache_dir) > 0
        # X is back, at another size (another monitor); the player is started again.
        x, _ = xvfb("800x480x24", number)
        player = start_player(cfg, logs, QT_QPA_PLATFORM="xcb", DISPLAY=f":{number}")
        plays = _player_screen(db)[2]
        assert wait_until(lambda: _player_screen(db)[:2] == (800, 480) and
                          _player_screen(db)[2] >= plays + 2, timeout=30), \
            player.text()[-2000:]
        assert player.alive()
    finally:
        player.stop()
        if x.poll() is None:
            x.terminate()
            x.wait(10)
    conn = store.connect(db, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        outcomes = {r[0] for r in conn.execute("SELECT outcome FROM plays")}
    finally:
        conn.close()
    assert outcomes == {"played"}
    print("player's last words when X died:",
          [ln for ln in log.splitlines() if "X11" in ln or "xcb" in ln][-3:])
