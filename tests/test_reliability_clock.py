"""The wall clock jumps while the board plays: forward and back by an hour and by a day
(NTP stepping a drifted RTC, a technician setting the date). The real window on a
movable clock, a morning and an afternoon playlist, the morning one not on Tuesdays.

After each jump the schedule of the new time is what plays; nothing crashes; every
jump is counted in the status; and no item is cut short or started twice because of a
jump: every proof-of-play record of a played item lasts its whole duration (it is
timed on the monotonic clock, which does not jump)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pytestqt.qtbot import QtBot

from player.window import PlayerWindow
from tests.kit.player import Board, make_config, playlist

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ITEM_S = 0.3


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _items(prefix: str) -> list[dict[str, object]]:
    return [{"id": f"{prefix}-{i}", "type": "text", "title": prefix.upper(),
             "body": f"Thông báo {i}", "duration": ITEM_S} for i in range(3)]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path))
    b.publish([
        playlist("sang", _items("sang"), schedule={
            "days": [1, 3, 4, 5, 6, 7], "times": [["06:00", "12:00"]]}),
        playlist("chieu", _items("chieu"), schedule={"times": [["12:00", "18:00"]]}),
    ])
    yield b
    b.close()


def test_clock_jumps_by_an_hour_and_a_day_while_playing(qtbot: QtBot, board: Board) -> None:
    clock = Clock(datetime(2026, 11, 23, 11, 0, tzinfo=VN))  # Monday morning
    w = PlayerWindow(board.config, clock=clock)
    qtbot.addWidget(w)
    w.show_on_screen()

    def on(expected: str | None) -> bool:
        cur = w.current
        return (cur is None and w.mode == "idle") if expected is None else \
            (cur is not None and cur.playlist.id == expected)

    seen: list[str] = []
    w.item_started.connect(lambda pl, it: seen.append(pl))
    steps = [(timedelta(0), "sang"), (timedelta(hours=1), "chieu"),
             (timedelta(hours=-1), "sang"), (timedelta(days=1), None),  # Tuesday: none
             (timedelta(days=-1), "sang"), (timedelta(days=1, hours=2), "chieu")]
    for jump, expected in steps:
        clock.now += jump
        qtbot.waitUntil(lambda e=expected: on(e), timeout=5000)  # type: ignore[misc]
        del seen[:]
        qtbot.wait(int(ITEM_S * 3000))  # three items' worth on the new time
        assert set(seen) <= ({expected} if expected else set()), (jump, seen)
        if expected is not None:
            assert len(seen) >= 2, (jump, seen)
    status = w.status()
    w.close()
    assert status.clock.jumps == len(steps) - 1
    assert status.clock.ok is True
    played = [p for p in board.plays() if p["outcome"] == "played"
              and p["detail"] != "player stopped"]
    assert len(played) >= 10
    assert all(p["duration_s"] >= ITEM_S - 0.05 for p in played), \
        sorted(p["duration_s"] for p in played)[:5]
    assert len({p["id"] for p in played}) == len(played)
