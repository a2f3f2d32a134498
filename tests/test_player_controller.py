"""The player's controller without a window: a real database with a real activated
manifest, real images, real Qt (offscreen); what it decides is read from the scenes
it emits and the records it writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from content_sync.db import store
from player.controller import Controller
from player.scene import Scene, ScreenMode
from tests.kit.player import Board, make_config, playlist, png

SIZE = (320, 180)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path))
    yield b
    b.close()


class Driven:
    """A controller with the scenes it emitted and the items it started."""

    def __init__(self, board: Board) -> None:
        self.c = Controller(board.config)
        self.scenes: list[Scene] = []
        self.started: list[str] = []
        self.c.scene.connect(self.scenes.append)
        self.c.item_started.connect(lambda _pl, item: self.started.append(item))
        self.c.set_size(*SIZE)
        self.c.start()

    def close(self) -> None:
        self.c.shutdown()


@pytest.fixture
def driven(board: Board, qtbot: QtBot) -> Iterator[Driven]:
    d = Driven(board)
    yield d
    d.close()


def test_it_advances_through_the_playlist_and_emits_finished_scenes(
        qtbot: QtBot, board: Board) -> None:
    red, blue = board.add_media(png((220, 20, 20))), board.add_media(png((20, 20, 220)))
    board.publish([playlist("p", [
        {"id": "r", "type": "image", "media": red, "duration": 0.2},
        {"id": "b", "type": "image", "media": blue, "duration": 0.2},
    ])])
    d = Driven(board)
    qtbot.waitUntil(lambda: d.started[:3] == ["r", "b", "r"], timeout=5000)
    d.close()
    shown = [s for s in d.scenes if s.mode is ScreenMode.NORMAL]
    assert len(shown) >= 3
    for scene in shown:
        _, _, w, h = scene.zones.main
        assert scene.picture is not None
        assert (scene.picture.width(), scene.picture.height()) == (w, h)
    assert shown[0].picture is not None and shown[0].picture.pixelColor(w // 2, h // 2).red() > 180
    assert shown[1].picture is not None and shown[1].picture.pixelColor(w // 2, h // 2).blue() > 180
    plays = board.plays()
    assert [p["item_id"] for p in plays[:3]] == ["r", "b", "r"]
    assert {p["outcome"] for p in plays} == {"played"}
    assert plays[-1]["detail"] == "player stopped"
    assert len({p["id"] for p in plays}) == len(plays) == len(d.started)  # once each


def test_a_missing_file_is_passed_over_and_a_broken_one_skipped_with_its_reason(
        qtbot: QtBot, board: Board) -> None:
    gone = board.add_media(png((1, 2, 3)))
    broken = board.add_media(b"not a png at all", "image/png")
    board.publish([playlist("p", [
        {"id": "gone", "type": "image", "media": gone, "duration": 0.2},
        {"id": "bad", "type": "image", "media": broken, "duration": 0.2},
        {"id": "here", "type": "text", "title": "Có mặt", "duration": 60},
    ])])
    store.media_path(board.config.cache_dir, gone).unlink()
    d = Driven(board)
    qtbot.waitUntil(lambda: d.started == ["here"], timeout=5000)
    assert d.c.current is not None and d.c.current.item.id == "here"
    d.close()
    plays = {p["item_id"]: p for p in board.plays()}
    assert set(plays) == {"bad", "here"}  # "gone" was never chosen
    assert plays["bad"]["outcome"] == "skipped" and "cannot decode" in plays["bad"]["detail"]
    assert plays["here"]["outcome"] == "played"
    assert broken in {r["sha256"] for r in board.conn.execute("SELECT sha256 FROM damaged_media")}


def test_an_emergency_preempts_the_item_on_screen(qtbot: QtBot, board: Board,
                                                  driven: Driven) -> None:
    normal = playlist("normal", [{"id": "n", "type": "text", "title": "Bình thường",
                                  "duration": 3600}])
    board.publish([normal])
    qtbot.waitUntil(lambda: driven.started == ["n"], timeout=5000)
    board.publish([normal, playlist("bao", [
        {"id": "e", "type": "text", "title": "BÃO SỐ 9", "duration": 3600}],
        priority="emergency", risk_level=4)])
    driven.c.check_now()
    assert driven.started == ["n", "e"] and driven.c.mode is ScreenMode.EMERGENCY
    last = driven.scenes[-1]
    assert last.mode is ScreenMode.EMERGENCY and last.risk_level == 4
    assert last.zones.header is None and "BÃO SỐ 9" in last.ticker_text
    qtbot.waitUntil(lambda: any(p["item_id"] == "n" for p in board.plays()), timeout=5000)
    cut = next(p for p in board.plays() if p["item_id"] == "n")
    assert cut["outcome"] == "played" and cut["detail"] == "preempted by emergency"


def test_nothing_scheduled_shows_the_idle_scene(qtbot: QtBot, driven: Driven) -> None:
    qtbot.waitUntil(lambda: driven.c.mode is ScreenMode.IDLE and bool(driven.scenes),
                    timeout=5000)
    idle = driven.scenes[-1]
    assert idle.mode is ScreenMode.IDLE and idle.picture is not None
    assert driven.c.current is None


def test_screen_off_by_command_blanks_and_closes_the_record(
        qtbot: QtBot, board: Board, driven: Driven) -> None:
    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Một",
                                   "duration": 3600}])])
    qtbot.waitUntil(lambda: driven.started == ["t"], timeout=5000)
    driven.c.set_forced_off(True)
    assert driven.c.mode is ScreenMode.BLANKED and driven.c.mode == "blanked"
    assert driven.scenes[-1].mode is ScreenMode.BLANKED and driven.c.current is None
    qtbot.waitUntil(lambda: len(board.plays()) == 1, timeout=5000)
    assert board.plays()[0]["detail"] == "screen off"
    driven.c.set_forced_off(False)
    assert driven.started == ["t", "t"] and driven.c.mode is ScreenMode.NORMAL


def test_the_status_row_names_the_mode_and_the_item(qtbot: QtBot, board: Board,
                                                    driven: Driven) -> None:
    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Một",
                                   "duration": 3600}])])
    qtbot.waitUntil(lambda: ((board.status() or {}).get("current") or {}).get("item_id")
                    == "t", timeout=5000)
    status = board.status()
    assert status is not None and status["state"] == "normal"
    assert status["current"]["type"] == "text"


def test_the_controller_builds_the_typed_row_in_the_shape_of_the_previous_release(
        qtbot: QtBot, board: Board, driven: Driven) -> None:
    """The controller hands the writer a PlayerStatus (no dict to convert on the way); its
    JSON has every key the previous release wrote, and the last one says "stopped"."""
    from content_sync.db import PlayerState, PlayerStatus
    from tests.test_status_rows import PLAYER_ROW

    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Một",
                                   "duration": 3600}])])
    qtbot.waitUntil(lambda: driven.started == ["t"], timeout=5000)
    row = driven.c.status()
    assert isinstance(row, PlayerStatus) and row.state == PlayerState.NORMAL
    data = row.to_json()
    assert data.keys() == PLAYER_ROW.keys()
    for part in ("current", "screen", "clock"):
        assert data[part].keys() == PLAYER_ROW[part].keys(), part
    driven.close()
    stored = board.status()
    assert stored is not None and stored["state"] == "stopped"
    assert stored.keys() - {"updated_at"} == PLAYER_ROW.keys()  # get_status adds the column
