"""Emergencies under Xvfb: the real programs, the X screen as the public sees it.

``eboard play`` (xcb, libVLC) plays a video clip of the normal rotation on a private
Xvfb display; ``eboard publish`` → ``serve-source`` → events long-poll → ``eboard sync``
brings an emergency; a capture of the X screen (Pillow ``ImageGrab`` over XCB, not
the player's own grab) shows the red banner instead of the clip; withdrawal brings
the clip back. The player process keeps running throughout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageGrab

from player import video
from tests.kit.player import Xvfb, make_clip
from tests.test_emergency_e2e import (
    ENV,
    RED,
    ROOT,
    Chain,
    active_version,
    chain,
    emergency_toml,
    player_status,
    wait_for,
)

__all__ = ["chain"]  # the fixture, imported for pytest
pytestmark = [
    pytest.mark.video,
    pytest.mark.skipif(not video.available(), reason="libVLC is not installed"),
    pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("ffmpeg") is None,
                       reason="Xvfb and ffmpeg are needed (make setup installs them)"),
]
GREEN = (0, 128, 0)  # ffmpeg's "green"

VIDEO_TOML = """
[[playlists]]
id = "phim-xanh"
title = "Phim"
[[playlists.items]]
id = "clip-xanh"
file = "xanh.mp4"
duration = 600
"""


def share(img: Image.Image, colour: tuple[int, int, int], tol: int = 45) -> float:
    raw = img.convert("RGB").reduce(4).tobytes()
    px = [raw[i:i + 3] for i in range(0, len(raw), 3)]
    hits = sum(1 for p in px if all(abs(a - b) <= tol for a, b in zip(p, colour, strict=True)))
    return hits / max(1, len(px))


def test_emergency_over_a_video_on_the_x_screen(chain: Chain, tmp_path: Path) -> None:
    make_clip(tmp_path / "xanh.mp4", "green", 2.0, size="320x180")
    cfg = chain.config(display="volume = 0")
    chain.publish(VIDEO_TOML)
    chain.start_sync(cfg)
    assert wait_for(lambda: active_version(cfg) > 0), chain.sync_log()
    with Xvfb("320x180x24") as x:
        def screen() -> Image.Image:
            return ImageGrab.grab(xdisplay=x.display)

        log = (tmp_path / "play.log").open("ab")
        player = subprocess.Popen(
            [sys.executable, "-m", "eboard", "play", "--config", str(cfg)],
            env={**ENV, "DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb"}, cwd=ROOT,
            stdout=log, stderr=log, start_new_session=True)
        chain.procs.append(player)

        def play_log() -> Any:
            return (tmp_path / "play.log").read_text(errors="replace")

        assert wait_for(lambda: share(screen(), GREEN) > 0.4, 30), play_log()
        assert wait_for(lambda: "events long-poll connected" in chain.sync_log(), 20)

        chain.publish(emergency_toml(risk_level=4) + VIDEO_TOML)
        assert wait_for(lambda: share(screen(), RED) > 0.5, 20), play_log()
        assert share(screen(), GREEN) < 0.02  # the clip is gone, not under the banner
        em = player_status(cfg).get("emergency") or {}
        assert em.get("playlist_id") == "khan-cap-lu" and em.get("since")

        chain.publish(VIDEO_TOML)  # withdrawn: the clip plays again
        assert wait_for(lambda: share(screen(), GREEN) > 0.4 and share(screen(), RED) < 0.02,
                        20), play_log()
        assert player.poll() is None, play_log()  # the same player process all along
        os.killpg(player.pid, 15)
        player.wait(timeout=20)
    assert player.returncode == 0, play_log()
    assert "Traceback" not in play_log() and "Fatal Python error" not in play_log()
