"""The walking skeleton, end to end, through the real commands and a real window.

keys generate → publish (an image and a Vietnamese notice) → serve-source on
127.0.0.1 → sync --once → the player's window shows the image and the notice →
the board's proof of play and heartbeat reach the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image
from PySide6.QtGui import QImage

from content_sync.db import store
from kiosk_config import load_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BOARD = "e2e.board-01"
RED = (220, 20, 30)


def eboard(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True, text=True,
                       env=ENV, cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 0, f"eboard {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def share_of(img: QImage, colour: tuple[int, int, int], tol: int = 40) -> float:
    """Fraction of sampled pixels close to ``colour``."""
    hits = total = 0
    for y in range(0, img.height(), 6):
        for x in range(0, img.width(), 6):
            c = img.pixelColor(x, y)
            total += 1
            if all(abs(a - b) <= tol for a, b in zip((c.red(), c.green(), c.blue()), colour,
                                                      strict=True)):
                hits += 1
    return hits / max(total, 1)


@pytest.fixture()
def source(tmp_path: Path):  # type: ignore[no-untyped-def]
    eboard("keys", "generate", "--out", str(tmp_path / "keys"))
    Image.new("RGB", (640, 360), RED).save(tmp_path / "do.png")
    (tmp_path / "playlist.toml").write_text(
        """
[[playlists]]
id = "thong-bao"
[[playlists.items]]
id = "anh-do"
file = "do.png"
duration = 2
[[playlists.items]]
id = "tb-hop"
type = "text"
title = "THÔNG BÁO KHẨN"
body = "Ủy ban nhân dân xã họp dân lúc 8 giờ. Đề nghị đến đúng giờ."
duration = 2
""",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    eboard("publish", "--to", str(data), "--board", BOARD,
           "--key", str(tmp_path / "keys" / "eboard-signing.key"), str(tmp_path / "playlist.toml"))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'operator = "op-chain"\n[boards]\n"{BOARD}" = "tok-chain"\n')
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "eboard", "serve-source", "--data", str(data), "--port", str(port),
         "--tokens", str(tokens)], env=ENV, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    assert wait_for(lambda: requests.get(url, timeout=1).ok), "serve-source did not start"
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=10)


def test_publish_serve_sync_play_report(source: str, tmp_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    token = tmp_path / "board.token"
    token.write_text("tok-chain\n")
    token.chmod(0o600)
    cfg_path = tmp_path / "eboard.toml"
    cfg_path.write_text(
        f"""
[board]
id = "{BOARD}"
name = "Xã Nậm Khao"
[source]
url = "{source}"
token_file = "board.token"
trusted_keys = ["keys/eboard-signing.pub"]
[cache]
dir = "cache"
[display]
geometry = "480x270+0+0"
header = false
ticker = false
[status]
heartbeat_interval = 5
""",
        encoding="utf-8",
    )
    eboard("sync", "--once", "--config", str(cfg_path))
    config = load_config(cfg_path)

    from player.window import PlayerWindow

    window = PlayerWindow(config)
    qtbot.addWidget(window)
    window.show()

    def grab_has(kind: str) -> bool:
        img = window.grab().toImage()
        red = share_of(img, RED)
        if kind == "image":
            return red > 0.5
        # The notice: not the red image, and light text on the background.
        return red < 0.05 and share_of(img, (255, 255, 255), tol=60) > 0.01

    qtbot.waitUntil(lambda: grab_has("image"), timeout=15000)
    qtbot.waitUntil(lambda: grab_has("text"), timeout=15000)
    window.close()

    # The player's proof of play is in the outbox; the daemon sends it and a heartbeat.
    conn = store.connect(config.db_path)
    plays = store.pending_plays(conn)
    conn.close()
    assert {p["item_id"] for p in plays} >= {"anh-do"}

    daemon = subprocess.Popen([sys.executable, "-m", "eboard", "sync", "--config", str(cfg_path)],
                              env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        def seen() -> bool:
            boards = requests.get(f"{source}boards.json", timeout=5).json()
            return any(b["board"] == BOARD for b in boards)

        assert wait_for(seen, timeout=30), "no heartbeat reached the server"

        def plays_arrived() -> bool:
            r = requests.get(f"{source}boards/{BOARD}/plays/summary", timeout=5,
                             headers={"Authorization": "Bearer op-chain"})
            return r.ok and int(r.json()["records"]) >= len(plays)

        assert wait_for(plays_arrived, timeout=30), "proof of play did not reach the server"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert "Traceback" not in err
