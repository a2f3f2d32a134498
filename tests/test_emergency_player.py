"""The player stays up while an emergency is on screen with its ticker.

An emergency banner with its ticker (the headline repeated) is painted 60 times a
second for as long as the warning lasts — hours during a storm. The player must not
die of that. With PySide6 6.12 on CPython 3.11 every call of a C++ method that
returns void (``QPainter.save``, ``fillRect``, ``drawImage`` …) drops a reference to
``None``; at the ticker's frame rate None's count reaches zero within about half a
minute and CPython aborts the player ("Fatal Python error: none_dealloc"). The test
paints many frames in a child process, so a crash fails this test instead of
killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from datetime import datetime, timedelta
    from pathlib import Path

    sys.path.insert(0, {root!r})
    from tests.kit.player import Board, make_config, playlist, window_around
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from player.window import PlayerWindow

    config = make_config(Path({tmp!r}), geometry="320x180+0+0", ticker=True, header=False)
    board = Board(config)
    now = datetime.now(config.tz)
    board.publish([playlist("khan-cap", [{{
        "id": "lu-1", "type": "text", "title": "CẢNH BÁO LŨ QUÉT",
        "body": "Mưa lớn gây nguy cơ lũ quét.", "instructions": "Di chuyển ngay.",
        "duration": 600}}], priority="emergency", risk_level=4,
        schedule=window_around(now))])
    window = PlayerWindow(config)
    window.show()
    window.check_now()
    app.processEvents()
    assert window.mode == "emergency", window.mode
    assert window.ticker.text == "CẢNH BÁO: CẢNH BÁO LŨ QUÉT", window.ticker.text
    for _ in range({frames}):  # about ten minutes of ticker frames at 60 Hz
        window.repaint()
    window.shutdown()
    print("painted", {frames}, "frames; None refcount", sys.getrefcount(None))
""")


def test_player_survives_many_emergency_frames(tmp_path: Path) -> None:
    frames = 36_000
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT), tmp=str(tmp_path),
                                                            frames=frames)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                       check=False)
    assert r.returncode == 0, (
        f"the player died after painting frames (exit {r.returncode}):\n"
        f"{r.stderr[-1500:]}")
    assert f"painted {frames} frames" in r.stdout
