"""The player window with a real SQLite database, real images and real Qt (offscreen)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from player import look
from player.window import PlayerWindow
from tests.kit.player import Board, make_config, playlist, png

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path))
    yield b
    b.close()


def open_window(qtbot: QtBot, board: Board) -> PlayerWindow:
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    return w


def wait_item(qtbot: QtBot, w: PlayerWindow, item_id: str) -> None:
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == item_id
                    and w.status().current.started_at is not None, timeout=5000)


def grab(w: PlayerWindow) -> QImage:
    return w.grab().toImage()


def close(c: QColor, rgb: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip((c.red(), c.green(), c.blue()), rgb, strict=True))


def colour_share(img: QImage, rgb: tuple[int, int, int], step: int = 4) -> float:
    hits = total = 0
    for y in range(0, img.height(), step):
        for x in range(0, img.width(), step):
            total += 1
            hits += close(img.pixelColor(x, y), rgb)
    return hits / total


def hex_rgb(h: str) -> tuple[int, int, int]:
    c = QColor(h)
    return c.red(), c.green(), c.blue()


def test_image_then_vietnamese_text_on_screen(qtbot: QtBot, board: Board) -> None:
    red = board.add_media(png((220, 20, 20), (64, 48)))
    board.publish([playlist("p1", [
        {"id": "img", "type": "image", "media": red, "duration": 0.4},
        {"id": "txt", "type": "text", "title": "THÔNG BÁO",
         "body": "Lịch tiêm chủng tháng 11", "duration": 30},
    ])])
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "img")
    img = grab(w)
    assert img.width() == 320 and img.height() == 180
    assert close(img.pixelColor(160, 100), (220, 20, 20))
    # 64x48 fitted into the 320x152 main area leaves black bars left and right.
    assert close(img.pixelColor(5, 100), (0, 0, 0))
    wait_item(qtbot, w, "txt")
    img = grab(w)
    assert colour_share(img, hex_rgb(look.PALETTES["normal"].background)) > 0.4
    assert colour_share(img, hex_rgb(look.PALETTES["normal"].title), step=1) > 0.005
    assert colour_share(img, (255, 255, 255), step=1) > 0.005


def test_idle_screen_when_nothing_is_active(qtbot: QtBot, board: Board) -> None:
    w = open_window(qtbot, board)
    qtbot.waitUntil(lambda: w.mode == "idle" and w.canvas.picture is not None, timeout=5000)
    img = grab(w)
    bg = hex_rgb(look.PALETTES["idle"].background)
    assert colour_share(img, bg) > 0.5
    assert colour_share(img, (255, 255, 255), step=1) > 0.005  # the name and the time
    qtbot.waitUntil(lambda: (board.status() or {}).get("state") == "idle", timeout=5000)


def test_new_generation_is_picked_up_and_recorded(qtbot: QtBot, board: Board) -> None:
    w = open_window(qtbot, board)
    qtbot.waitUntil(lambda: w.mode == "idle", timeout=5000)
    green = board.add_media(png((20, 200, 40)))
    version = board.publish([playlist("p2", [
        {"id": "g1", "type": "image", "media": green, "duration": 0.3},
        {"id": "t1", "type": "text", "title": "Ấp Đồng Ỗ", "duration": 0.3},
    ])])
    wait_item(qtbot, w, "g1")
    wait_item(qtbot, w, "t1")
    wait_item(qtbot, w, "g1")
    w.close()
    plays = board.plays()
    assert [p["item_id"] for p in plays[:2]] == ["g1", "t1"]
    for p in plays:
        assert uuid.UUID(p["id"]).version == 4
        assert p["playlist_id"] == "p2"
        assert p["manifest_version"] == version
        assert p["outcome"] == "played"
        assert p["duration_s"] > 0
        assert p["started_at"] <= p["ended_at"]
    assert plays[-1]["detail"] == "player stopped"
    status = board.status()
    assert status is not None and status["state"] == "stopped"
    assert status["manifest_version"] == version


def test_undecodable_image_is_skipped_and_recorded(qtbot: QtBot, board: Board) -> None:
    broken = board.add_media(b"not a png at all", "image/png")
    board.publish([playlist("p", [
        {"id": "bad", "type": "image", "media": broken, "duration": 5},
        {"id": "ok", "type": "text", "title": "Còn lại", "duration": 30},
    ])])
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "ok")
    qtbot.waitUntil(lambda: any(p["item_id"] == "bad" for p in board.plays()), timeout=5000)
    bad = next(p for p in board.plays() if p["item_id"] == "bad")
    assert bad["outcome"] == "skipped"
    assert "cannot decode" in bad["detail"]


def test_missing_media_file_is_not_scheduled(qtbot: QtBot, board: Board) -> None:
    gone = board.add_media(png((1, 2, 3)))
    board.publish([playlist("p", [
        {"id": "gone", "type": "image", "media": gone, "duration": 0.2},
        {"id": "here", "type": "text", "title": "Có mặt", "duration": 0.2},
    ])])
    from content_sync.db import store
    store.media_path(board.config.cache_dir, gone).unlink()
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "here")
    qtbot.waitUntil(lambda: len(board.plays()) >= 3, timeout=5000)
    assert {p["item_id"] for p in board.plays()} == {"here"}


def test_emergency_preempts_at_once(qtbot: QtBot, board: Board) -> None:
    board.publish([playlist("normal", [{"id": "n", "type": "text", "title": "Bình thường",
                                        "duration": 3600}])])
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "n")
    board.publish([
        playlist("normal", [{"id": "n", "type": "text", "title": "Bình thường",
                             "duration": 3600}]),
        playlist("bao", [{"id": "e", "type": "text", "title": "BÃO SỐ 9",
                          "body": "Gió mạnh cấp 12", "instructions": "Ở trong nhà",
                          "duration": 3600}], priority="emergency", risk_level=4),
    ], ticker=[{"id": "t", "text": "Tin thường"}])
    w.check_now()
    assert w.current is not None and w.current.item.id == "e"
    assert w.mode == "emergency"
    img = grab(w)
    assert colour_share(img, hex_rgb(look.RISK_COLOURS[4][0])) > 0.4
    assert "BÃO SỐ 9" in w.ticker.text  # the ticker repeats the headline
    qtbot.waitUntil(lambda: any(p["item_id"] == "n" for p in board.plays()), timeout=5000)
    cut = next(p for p in board.plays() if p["item_id"] == "n")
    assert cut["detail"] == "preempted by emergency"
    qtbot.waitUntil(lambda: ((board.status() or {}).get("emergency") or {}).get(
        "playlist_id") == "bao", timeout=5000)


def test_overlay_playlist_is_scheduled(qtbot: QtBot, board: Board) -> None:
    board.overlay("cap", {"cap-1": playlist("cap-1", [
        {"id": "alert", "type": "text", "title": "Cảnh báo lũ quét", "duration": 60}],
        priority="emergency", risk_level=3)})
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "alert")
    assert w.mode == "emergency"


def test_play_command_help_and_bad_config(tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "eboard"]
    out = subprocess.run([*exe, "play", "--help"], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    for word in ("--duration", "--screenshot-dir", "--screenshot-interval", "--config"):
        assert word in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[display]\ngeometry = "huge"\n')
    res = subprocess.run([*exe, "play", "--config", str(bad)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 2
    assert "display.geometry" in res.stderr
    assert "PySide6" not in res.stderr


def test_the_next_image_is_ready_before_the_switch(qtbot: QtBot, board: Board) -> None:
    big = board.add_media(png((10, 10, 200), (1600, 1200)))
    board.publish([playlist("p", [
        {"id": "t", "type": "text", "title": "Trước", "duration": 3600},
        {"id": "i", "type": "image", "media": big, "duration": 5},
    ])])
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "t")
    # Decoded and scaled on the worker thread while the text is still on screen.
    qtbot.waitUntil(lambda: len(w.controller._stage.images) == 1, timeout=5000)
    assert w.current is not None and w.current.item.id == "t"


def test_screen_off_by_command_and_an_emergency_still_shows(qtbot: QtBot, board: Board) -> None:
    board.publish([playlist("n", [{"id": "n", "type": "text", "title": "Tin", "duration": 60}])])
    w = open_window(qtbot, board)
    wait_item(qtbot, w, "n")
    w.set_forced_off(True)
    assert w.mode == "blanked" and w.current is None
    assert w.status().screen.forced_off is True
    board.publish([playlist("e", [{"id": "e", "type": "text", "title": "SẠT LỞ ĐẤT",
                                   "duration": 60}], priority="emergency")])
    qtbot.waitUntil(lambda: w.mode == "emergency", timeout=5000)
    board.publish([playlist("n", [{"id": "n", "type": "text", "title": "Tin", "duration": 60}])])
    qtbot.waitUntil(lambda: w.mode == "blanked", timeout=5000)
    w.set_forced_off(False)
    assert w.mode == "normal"


def test_play_shows_saves_screenshots_and_stops_by_itself(board: Board, tmp_path: Path) -> None:
    # In a process of its own: player.app.run owns the event loop of its process.
    import os

    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Xin chào",
                                   "duration": 0.3}])])
    conf = tmp_path / "eboard.toml"
    conf.write_text(f'[cache]\ndir = "{board.config.cache.dir}"\n[display]\n'
                    'geometry = "320x180+0+0"\n', encoding="utf-8")
    shots = tmp_path / "shots"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    res = subprocess.run([sys.executable, "-m", "eboard", "play", "--config", str(conf),
                          "--duration", "1.5", "--screenshot-dir", str(shots),
                          "--screenshot-interval", "0.5"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    pngs = sorted(shots.glob("*.png"))
    assert len(pngs) >= 2
    img = QImage(str(pngs[-1]))
    assert (img.width(), img.height()) == (320, 180)
    assert colour_share(img, hex_rgb(look.PALETTES["normal"].background)) > 0.3
    assert sum(p["item_id"] == "t" for p in board.plays()) >= 2


def test_play_stops_cleanly_on_sigterm(board: Board, tmp_path: Path) -> None:
    import os
    import signal
    import time

    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Chào", "duration": 60}])])
    conf = tmp_path / "eboard.toml"
    conf.write_text(f'[cache]\ndir = "{board.config.cache.dir}"\n[display]\n'
                    'geometry = "320x180+0+0"\n', encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "eboard", "play", "--config", str(conf)],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (board.status() or {}).get("state") != "normal":
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    last = board.plays()[-1]
    assert last["item_id"] == "t" and last["detail"] == "player stopped"
    assert (board.status() or {}).get("state") == "stopped"


def test_play_says_what_to_do_when_the_cache_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    conf = tmp_path / "eboard.toml"
    conf.write_text(f'[cache]\ndir = "{blocker / "cache"}"\n', encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "eboard", "play", "--config", str(conf)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "cannot open the database" in res.stderr and "cache.dir" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_new_manifest_lets_go_of_the_retired_pictures(qtbot: QtBot, board: Board) -> None:
    """The scaled-image cache keeps only the pictures of media still in use: with the
    byte bound alone, a board whose province published new pictures every hour held
    up to 64 MB of retired ones (the 60-minute soak: +65 MB, flat only once full)."""
    w = open_window(qtbot, board)
    old = [board.add_media(png((30 * k, 20, 40))) for k in (1, 2)]
    board.publish([playlist("p1", [{"id": f"a{k}", "type": "image", "media": sha,
                                    "duration": 0.3} for k, sha in enumerate(old)])])
    wait_item(qtbot, w, "a1")
    wait_item(qtbot, w, "a0")

    def cached() -> set[str]:
        return {key[0] for key in w.controller._stage.images._items}

    assert set(old) <= cached()
    new = board.add_media(png((20, 200, 40)))
    board.publish([playlist("p2", [{"id": "b0", "type": "image", "media": new,
                                    "duration": 0.3},
                                   {"id": "b1", "type": "image", "media": old[0],
                                    "duration": 0.3}])])
    wait_item(qtbot, w, "b0")
    wait_item(qtbot, w, "b1")
    assert old[1] not in cached()  # retired
    assert {new, old[0]} <= cached()  # still in use
    w.close()
