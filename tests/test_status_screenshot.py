"""A screenshot taken while libVLC plays a clip under Xvfb shows the clip, not black: the
capture grabs the X root over the player's rectangle (player/capture.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.kit.player import Xvfb, make_clip

ROOT = Path(__file__).resolve().parents[1]

# Runs under Xvfb with the xcb platform: a window at 320x180+40+20, libVLC drawing a green
# clip into it, then capture_screen_jpeg at 160 px wide.
SCRIPT = """
import sys, time
from pathlib import Path
from typing import Any
import vlc
from PySide6.QtWidgets import QApplication, QWidget
from player.capture import capture_screen_jpeg

app = QApplication([])
w = QWidget()
w.setStyleSheet("background: black")
w.setGeometry(40, 20, 320, 180)
w.show()
inst = vlc.Instance(["--no-audio", "--quiet", "--no-video-title-show", "--input-repeat=100"])
mp = inst.media_player_new()
mp.set_xwindow(int(w.winId()))
mp.set_media(inst.media_new(sys.argv[1]))
mp.play()
end = time.monotonic() + 8
while time.monotonic() < end:
    app.processEvents()
    time.sleep(0.05)
    if mp.get_state() == vlc.State.Playing and mp.get_time() > 300:
        break
for _ in range(10):
    app.processEvents(); time.sleep(0.05)
Path(sys.argv[2]).write_bytes(capture_screen_jpeg(w, 160))
mp.stop()
"""


@pytest.mark.video
@pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("ffmpeg") is None,
                    reason="Xvfb and ffmpeg are needed (make setup installs them)")
def test_screenshot_while_video_plays_is_not_black(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "green.mp4", colour="green", seconds=2, size="320x180")
    out = tmp_path / "shot.jpg"
    with Xvfb("640x360x24") as x:
        env = {**os.environ, "DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb",
               "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-c", SCRIPT, str(clip), str(out)], env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"
    img = Image.open(out).convert("RGB")
    assert img.size == (160, 90)  # scaled to the configured width, aspect kept
    red, green, blue = img.getpixel((80, 45))  # type: ignore[misc]
    assert green > 90 and red < 60 and blue < 60, (red, green, blue)  # the clip, not black


def test_screenshot_command_answered_by_the_real_player_window(tmp_path: Path,
                                                                qtbot: Any) -> None:
    """A screenshot command → player request → the real PlayerWindow (offscreen: the window
    itself is grabbed) → a JPEG of the red image on screen, and the command's result."""
    from content_sync.db import store
    from content_sync.report.remote_commands import Executor
    from player.capture import poll_player_requests
    from player.window import PlayerWindow
    from tests.kit.player import Board, make_config, playlist, png

    board = Board(make_config(tmp_path))
    red = board.add_media(png((220, 20, 20), (64, 48)))
    board.publish([playlist("p1", [{"id": "img", "type": "image", "media": red,
                                    "duration": 30}])])
    board.close()
    config = board.config
    w = PlayerWindow(config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "img", timeout=5000)
    conn = store.connect(config.db_path)
    ex = Executor(config, conn)
    ex.handle([{"id": "shot-1", "command": "screenshot"}])
    assert poll_player_requests(conn, w, config.cache_dir, 160) == ["shot-1"]
    img = Image.open(config.cache_dir / "screenshot.jpg").convert("RGB")
    assert img.size == (160, 90)
    r, g, b = img.getpixel((80, 50))  # type: ignore[misc]
    assert r > 180 and g < 70 and b < 70, (r, g, b)
    (result,) = ex.results_to_report()
    assert result["id"] == "shot-1" and result["ok"] and "160 px wide" in result["detail"]
    conn.close()
