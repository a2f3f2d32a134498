"""The player's memory while it plays clip after clip (docs/RELIABILITY.md, defect 3).

Each clip used to leave about 1 MB behind: its libVLC media was never released, and the
clip (its frame buffer, ctypes callbacks and event handlers) lived on in a reference cycle
until Python's cycle collector got to it. Then about 1.5 KB for good: python-vlc's
memoized ``event_manager()`` kept every player wrapper and its event manager (found by
the soak's heap watch, bench/heapwatch).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from content_sync.runtime.decoder_guard import CLIP_NOTE
from player import video
from player.window import PlayerWindow
from tests.kit.player import Board, make_clip, make_config, playlist, vlc_wrappers

pytestmark = [
    pytest.mark.video,
    pytest.mark.skipif(not video.available(), reason="libVLC is not installed"),
]

COLOURS = ("green", "blue", "red", "yellow")


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    return [make_clip(d / f"{c}.mp4", c, 0.6, size="320x180") for c in COLOURS]


@pytest.fixture
def board(tmp_path: Path, clip_files: list[Path]) -> Iterator[Board]:
    b = Board(make_config(tmp_path, volume=0, header=False))
    items = [{"id": f"v{i}", "type": "video", "media": b.add_file(p, "video/mp4")}
             for i, p in enumerate(clip_files)]
    b.publish([playlist("p", items)])
    yield b
    b.close()


def rss_mb() -> float:
    """Resident memory, after giving freed heap back (so fragmentation is not counted)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: no trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")  # pragma: no cover


def wait_for_releases(timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while any(t.name == "vlc-release" for t in threading.enumerate()):
        assert time.monotonic() < end, "libVLC players still being released"
        time.sleep(0.05)


def play(qtbot: QtBot, board: Board, clips: int, marks: dict[int, float] | None = None,
         timeout_s: float = 600) -> PlayerWindow:
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    count = [0]

    def started(_pl: str, _it: str) -> None:
        count[0] += 1
        if marks is not None and count[0] in marks:
            marks[count[0]] = rss_mb()

    w.item_started.connect(started)
    w.show_on_screen()
    qtbot.waitUntil(lambda: count[0] >= clips, timeout=int(timeout_s * 1000))
    return w


def test_every_clip_lets_go_of_its_media_and_is_freed_without_the_cycle_collector(
        qtbot: QtBot, board: Board, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick: a handful of clips; each libVLC media is released, and each clip is gone
    once its player is released, with the cycle collector off."""
    media: list[Any] = []
    released: list[int] = []
    clips: list[weakref.ref[Any]] = []
    new_media = video.vlc.Instance.media_new_path
    media_release = video.vlc.Media.release
    clip_init = video._Clip.__init__

    def track_media(inst: Any, *a: Any) -> Any:
        m = new_media(inst, *a)
        media.append(m)
        return m

    def track_release(m: Any) -> Any:
        released.append(id(m))
        return media_release(m)

    def track_clip(self: Any, *a: Any, **k: Any) -> None:
        clip_init(self, *a, **k)
        clips.append(weakref.ref(self))

    monkeypatch.setattr(video.vlc.Instance, "media_new_path", track_media)
    monkeypatch.setattr(video.vlc.Media, "release", track_release)
    monkeypatch.setattr(video._Clip, "__init__", track_clip)
    gc.collect()
    gc.disable()
    wrappers_before = vlc_wrappers()
    try:
        w = play(qtbot, board, 8, timeout_s=30)
        w.close()
        wait_for_releases()
        qtbot.wait(200)  # queued frame signals still holding a clip are delivered
        assert len(media) >= 8
        assert {id(m) for m in media} <= set(released), "a libVLC media was never released"
        alive = [r for r in clips if r() is not None]
        assert not alive, f"{len(alive)} of {len(clips)} clips outlived their player"
        left = vlc_wrappers() - wrappers_before
        assert not left, f"python-vlc objects of released players still alive: {dict(left)}"
    finally:
        gc.enable()


@pytest.mark.soak
def test_memory_stays_flat_over_150_clips(qtbot: QtBot, board: Board) -> None:
    """150 clips of 0.6 s back to back: after the warm-up (50 clips), resident memory
    must not keep growing. Measured (after malloc_trim): +46 MB from clip 50 to clip
    150 before the fix, +15 MB after."""
    marks: dict[int, float] = {50: 0.0, 100: 0.0, 150: 0.0}
    w = play(qtbot, board, 150, marks)
    w.close()
    growth = marks[150] - marks[50]
    print(f"resident memory at clips 50/100/150: "
          f"{marks[50]:.1f} / {marks[100]:.1f} / {marks[150]:.1f} MB (+{growth:.1f} MB)")
    assert growth < 25, marks


def test_a_clip_dropped_while_playing_is_still_stopped(qtbot: QtBot, board: Board) -> None:
    """A window freed without being closed (pytest-qt holds only a weak reference, so a
    test's window can go before its teardown closes it) drops its clips while libVLC
    plays them. Each must still be stopped and its player released: libVLC's threads
    would otherwise go on calling callbacks that no longer exist (a crash, seen in the
    next test once python-vlc no longer kept every clip alive by accident)."""
    note = board.config.db_path.parent / CLIP_NOTE
    windows = [PlayerWindow(board.config)]
    windows[0].show_on_screen()
    qtbot.waitUntil(lambda: windows[0].video_frame() is not None, timeout=10000)
    assert json.loads(note.read_text())["open"], "the clip on screen is noted open"
    windows[0].hide()
    windows.clear()  # freed without close(): shutdown() never runs
    gc.collect()
    wait_for_releases()
    qtbot.waitUntil(lambda: not json.loads(note.read_text())["open"], timeout=10000)
