"""The window driven by a frozen, movable clock: schedule edges, power hours, jumps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from player.window import PlayerWindow
from tests.kit.player import Board, make_config, playlist

VN = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 11, 59, 50, tzinfo=VN))  # a Monday


def window(qtbot: QtBot, board: Board, clock: Clock) -> PlayerWindow:
    w = PlayerWindow(board.config, clock=clock)
    qtbot.addWidget(w)
    w.show_on_screen()
    return w


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path, on_hours="06:00-22:00"))
    yield b
    b.close()


NORMAL = playlist("n", [{"id": "n1", "type": "text", "title": "Tin thường", "duration": 3600}])
EMERGENCY = playlist(
    "e", [{"id": "e1", "type": "text", "title": "LŨ QUÉT", "duration": 3600}],
    priority="emergency", risk_level=5,
    schedule={"start": "2026-11-23T12:00:00+07:00", "end": "2026-11-23T12:30:00+07:00"})


def test_emergency_starts_and_ends_on_its_schedule(qtbot: QtBot, board: Board,
                                                   clock: Clock) -> None:
    board.publish([NORMAL, EMERGENCY])
    w = window(qtbot, board, clock)
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "n1", timeout=5000)
    clock.now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=VN)
    qtbot.waitUntil(lambda: w.mode == "emergency", timeout=5000)  # by the poll alone
    clock.now = datetime(2026, 11, 23, 12, 30, 0, tzinfo=VN)
    qtbot.waitUntil(lambda: w.mode == "normal", timeout=5000)
    assert w.current is not None and w.current.item.id == "n1"
    qtbot.waitUntil(lambda: "preempted by emergency" in [p["detail"] for p in board.plays()],
                    timeout=5000)


def test_priority_waits_for_the_item_on_screen(qtbot: QtBot, board: Board,
                                               clock: Clock) -> None:
    short = playlist("n", [{"id": "n1", "type": "text", "title": "Tin", "duration": 0.6}])
    board.publish([short])
    w = window(qtbot, board, clock)
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "n1", timeout=5000)
    qtbot.wait(100)
    board.publish([short, playlist("p", [{"id": "p1", "type": "text", "title": "Ưu tiên",
                                          "duration": 60}], priority="priority")])
    w.check_now()
    assert w.current is not None and w.current.item.id == "n1"  # not cut short
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "p1", timeout=5000)
    qtbot.waitUntil(lambda: len(board.plays()) >= 1, timeout=5000)  # written off-thread
    first = board.plays()[0]
    assert first["item_id"] == "n1" and first["detail"] == ""


def test_screen_blanks_outside_on_hours_and_an_emergency_wakes_it(
        qtbot: QtBot, board: Board, clock: Clock) -> None:
    clock.now = datetime(2026, 11, 23, 22, 30, tzinfo=VN)
    board.publish([NORMAL])
    w = window(qtbot, board, clock)
    qtbot.waitUntil(lambda: w.mode == "blanked", timeout=5000)
    img = w.grab().toImage()
    assert img.pixelColor(img.width() // 2, img.height() // 2) == QColor("black")
    assert w.current is None
    late = dict(EMERGENCY, schedule={"start": "2026-11-23T22:00:00+07:00"})
    board.publish([NORMAL, late])
    qtbot.waitUntil(lambda: w.mode == "emergency", timeout=5000)
    img = w.grab().toImage()
    assert img.pixelColor(img.width() // 2, img.height() // 2) != QColor("black")
    board.publish([NORMAL])  # withdrawn: back to black, not to the normal rotation
    qtbot.waitUntil(lambda: w.mode == "blanked", timeout=5000)
    clock.now = datetime(2026, 11, 24, 6, 0, tzinfo=VN)
    qtbot.waitUntil(lambda: w.mode == "normal", timeout=5000)
    qtbot.waitUntil(lambda: any(p["detail"] == "screen off" for p in board.plays()),
                    timeout=5000)


def test_a_clock_jump_is_noticed_and_reported(qtbot: QtBot, board: Board,
                                              clock: Clock) -> None:
    board.publish([NORMAL, EMERGENCY])
    clock.now = datetime(2026, 11, 23, 12, 10, tzinfo=VN)
    w = window(qtbot, board, clock)
    qtbot.waitUntil(lambda: w.mode == "emergency", timeout=5000)
    clock.now -= timedelta(days=1)  # NTP steps the clock back a day
    qtbot.waitUntil(lambda: w.mode == "normal", timeout=5000)
    assert w.status().clock.jumps >= 1
    clock.now = datetime(2020, 1, 1, 12, 0, tzinfo=VN)  # RTC reset to a factory date
    qtbot.wait(300)
    st = w.status()
    assert st.clock.ok is False and "2020-01-01" in st.clock.reason


def test_the_header_clock_and_idle_screen_follow_the_minute(qtbot: QtBot, board: Board,
                                                            clock: Clock) -> None:
    w = window(qtbot, board, clock)
    qtbot.waitUntil(lambda: w.mode == "idle", timeout=5000)
    before = w.grab().toImage()
    clock.now = clock.now + timedelta(minutes=1)
    qtbot.waitUntil(lambda: w.grab().toImage() != before, timeout=5000)
