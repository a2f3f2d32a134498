"""Video: real clips made by ffmpeg, played by libVLC; under Xvfb for the whole program."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from player import video
from player.window import PlayerWindow
from tests.kit.player import Board, Xvfb, make_clip, make_config, playlist, png

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.video,
    pytest.mark.skipif(not video.available(), reason="libVLC is not installed"),
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "green": make_clip(d / "green.mp4", "green", 1.2),
        "blue": make_clip(d / "blue.mp4", "blue", 1.0),
        "short": make_clip(d / "short.mp4", "yellow", 0.6),
    }


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path, volume=0, header=False))
    yield b
    b.close()


def centre(img: QImage) -> tuple[int, int, int]:
    c = img.pixelColor(img.width() // 2, img.height() // 2)
    return c.red(), c.green(), c.blue()


def is_black(c: tuple[int, int, int]) -> bool:
    return max(c) < 24


def dominant(c: tuple[int, int, int]) -> str:
    names = ("red", "green", "blue")
    i = max(range(3), key=lambda k: c[k])
    if c[0] > 150 and c[1] > 150 and c[2] < 100:
        return "yellow"
    return names[i] if c[i] > 80 else "dark"


class Watcher:
    """Samples the centre of the window each time it is asked; keeps the changes."""

    def __init__(self, w: PlayerWindow) -> None:
        self.w = w
        self.seen: list[str] = []

    def sample(self) -> None:
        c = centre(self.w.grab().toImage())
        name = "black" if is_black(c) else dominant(c)
        if not self.seen or self.seen[-1] != name:
            self.seen.append(name)

    def until(self, qtbot: QtBot, done: Callable[[], bool], timeout: int = 15000) -> None:
        def check() -> bool:
            self.sample()
            return done()

        qtbot.waitUntil(check, timeout=timeout)


def test_clip_plays_for_its_own_length_with_no_black_between_items(
        qtbot: QtBot, board: Board, clips: dict[str, Path]) -> None:
    red = board.add_media(png((230, 0, 0), (160, 120)))
    green = board.add_file(clips["green"], "video/mp4")
    blue = board.add_file(clips["blue"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "img", "type": "image", "media": red, "duration": 0.5},
        {"id": "g", "type": "video", "media": green},
        {"id": "b", "type": "video", "media": blue},
        {"id": "t", "type": "text", "title": "Hết video", "duration": 30},
    ])])
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None, timeout=5000)
    watch = Watcher(w)
    watch.until(qtbot, lambda: w.current is not None and w.current.item.id == "t")
    seen = watch.seen
    assert seen == ["red", "green", "blue", "dark"], seen  # dark: the navy text notice
    w.close()
    plays = {p["item_id"]: p for p in board.plays()}
    assert plays["g"]["outcome"] == "played" and plays["b"]["outcome"] == "played"
    # The clip's own length (1.2 s and 1.0 s), not the 10 s default of a still.
    assert 0.8 < plays["g"]["duration_s"] < 5
    assert 0.6 < plays["b"]["duration_s"] < 5


def test_item_duration_loops_a_short_clip(qtbot: QtBot, board: Board,
                                          clips: dict[str, Path]) -> None:
    short = board.add_file(clips["short"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "s", "type": "video", "media": short, "duration": 2.0},
        {"id": "t", "type": "text", "title": "Sau", "duration": 30},
    ])])
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "s"
                    and w.mode == "normal" and w.video_frame() is not None, timeout=8000)
    qtbot.waitUntil(lambda: any(p["item_id"] == "s" for p in board.plays()), timeout=10000)
    s = next(p for p in board.plays() if p["item_id"] == "s")
    assert s["outcome"] == "played" and s["duration_s"] >= 1.9


def test_a_clip_that_cannot_play_is_skipped_and_the_screen_stays(
        qtbot: QtBot, board: Board, clips: dict[str, Path]) -> None:
    red = board.add_media(png((230, 0, 0), (160, 120)))
    broken = board.add_media(b"\x00\x00\x00\x18ftypmp42" + b"\x00garbage" * 500, "video/mp4")
    green = board.add_file(clips["green"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "img", "type": "image", "media": red, "duration": 0.3},
        {"id": "bad", "type": "video", "media": broken},
        {"id": "g", "type": "video", "media": green},
    ])])
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None, timeout=5000)
    watch = Watcher(w)
    watch.until(qtbot, lambda: w.current is not None and w.current.item.id == "g"
                and w.video_frame() is not None)
    assert "black" not in watch.seen, watch.seen
    qtbot.waitUntil(lambda: any(p["item_id"] == "bad" for p in board.plays()), timeout=5000)
    bad = next(p for p in board.plays() if p["item_id"] == "bad")
    assert bad["outcome"] == "skipped" and bad["detail"]


def test_the_program_under_xvfb_shows_video_in_its_rectangle(
        tmp_path: Path, clips: dict[str, Path]) -> None:
    cfg = make_config(tmp_path, geometry="320x180+40+20", volume=0)
    board = Board(cfg)
    green = board.add_file(clips["green"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "t", "type": "text", "title": "Thông báo", "duration": 0.5},
        {"id": "g", "type": "video", "media": green, "duration": 30},
    ])])
    board.close()
    conf = tmp_path / "eboard.toml"
    conf.write_text(f'[cache]\ndir = "{cfg.cache.dir}"\n[display]\n'
                    f'geometry = "320x180+40+20"\nvolume = 0\n', encoding="utf-8")
    shots = tmp_path / "shots"
    with Xvfb("640x360x24") as x:
        env = {**os.environ, "DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb"}
        res = subprocess.run(
            [sys.executable, "-m", "eboard", "play", "--config", str(conf), "--duration", "4",
             "--screenshot-dir", str(shots), "--screenshot-interval", "0.5"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    pngs = sorted(shots.glob("*.png"))
    assert len(pngs) >= 4
    last = QImage(str(pngs[-1]))
    assert (last.width(), last.height()) == (640, 360)  # the whole X screen
    c = last.pixelColor(40 + 160, 20 + 110)
    assert c.green() > 90 and c.red() < 60 and c.blue() < 60  # the clip, in the rectangle
    outside = last.pixelColor(600, 340)
    assert max(outside.red(), outside.green(), outside.blue()) < 10
    board = Board(cfg)
    plays = board.plays()
    board.close()
    assert any(p["item_id"] == "t" and p["outcome"] == "played" for p in plays)
    assert any(p["item_id"] == "g" for p in plays)


def test_the_next_clip_is_opened_and_held_on_its_first_frame_before_its_turn(
        qtbot: QtBot, board: Board, clips: dict[str, Path]) -> None:
    red = board.add_media(png((230, 0, 0), (160, 120)))
    green = board.add_file(clips["green"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "img", "type": "image", "media": red, "duration": 2.5},
        {"id": "g", "type": "video", "media": green},
    ])])
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "img", timeout=5000)
    vp = w.controller._video
    qtbot.waitUntil(lambda: vp._preroll is not None and vp._preroll[2] is not None,
                    timeout=8000)
    assert w.current is not None and w.current.item.id == "img"  # still the image
    held = vp._preroll[1]  # type: ignore[index]
    first = vp._preroll[2]  # type: ignore[index]
    assert first is not None and dominant(centre(first)) == "green"
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "g"
                    and w.video_frame() is not None, timeout=8000)
    assert vp._current is not None and vp._current[1] is held  # the pre-rolled clip


def test_a_clip_that_stops_delivering_frames_is_skipped(qtbot: QtBot, board: Board,
                                                        clips: dict[str, Path]) -> None:
    green = board.add_file(clips["green"], "video/mp4")
    board.publish([playlist("p", [
        {"id": "g", "type": "video", "media": green, "duration": 60},
        {"id": "t", "type": "text", "title": "Tiếp theo", "duration": 60},
    ])])
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "g"
                    and w.video_frame() is not None, timeout=8000)
    assert w.controller._video._current is not None
    w.controller._video._current[1].hold()  # the decoder freezes: no new frame from now on
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "t",
                    timeout=int(video.STALL_TIMEOUT_S * 1000) + 5000)
    qtbot.waitUntil(lambda: any(p["item_id"] == "g" for p in board.plays()), timeout=5000)
    g = next(p for p in board.plays() if p["item_id"] == "g")
    assert g["outcome"] == "skipped" and "stalled" in g["detail"]
