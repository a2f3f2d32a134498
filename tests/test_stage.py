"""player/stage.py's own rules: which surface each kind uses, the zones per mode, the
pictures of stills (one per item, pages for an emergency on a strip board) and the
bounded caches. Real Qt (offscreen), real image files in a real cache dir."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from content_sync.protocol import Item, ItemKind, Playlist
from player import look
from player.images import ImageError
from player.scene import ScreenMode, mode_of
from player.schedule import Choice
from player.stage import Stage, Surface, surface_of
from tests.kit.player import Board, make_config, png

IDLE_AT = datetime(2026, 11, 24, 9, 30)


def choice(item: dict[str, object], priority: str = "normal", **pl: object) -> Choice:
    playlist = Playlist.model_validate({"id": "p", "priority": priority, "items": [item], **pl})
    return Choice(playlist, playlist.items[0], priority, 10.0)


TEXT = {"id": "t", "type": "text", "title": "THÔNG BÁO", "body": "Lịch tiêm chủng",
        "instructions": "Mang theo sổ"}


@pytest.fixture
def stage(tmp_path: Path, qtbot: QtBot) -> Stage:
    return Stage(make_config(tmp_path, header=True, ticker=True), max_slides=2)


def test_every_kind_has_a_surface() -> None:
    assert {k: surface_of(k) for k in ItemKind} == {
        ItemKind.IMAGE: Surface.STILL, ItemKind.TEXT: Surface.STILL,
        ItemKind.VIDEO: Surface.CLIP}


def test_the_mode_decides_the_header_and_the_text_the_ticker(stage: Stage) -> None:
    normal = stage.zones(ScreenMode.NORMAL, 1280, 720, ticker=True)
    assert normal.header is not None and normal.ticker is not None
    for mode in (ScreenMode.EMERGENCY, ScreenMode.IDLE):
        assert stage.zones(mode, 1280, 720, ticker=True).header is None
    assert stage.zones(ScreenMode.NORMAL, 1280, 720, ticker=False).ticker is None
    assert mode_of(None) is ScreenMode.IDLE
    assert mode_of(choice(TEXT, "emergency")) is ScreenMode.EMERGENCY
    assert mode_of(choice(TEXT, "priority")) is ScreenMode.NORMAL


def test_an_image_is_one_picture_of_the_main_area_and_cached(tmp_path: Path,
                                                            qtbot: QtBot) -> None:
    board = Board(make_config(tmp_path))
    sha = board.add_media(png((200, 10, 10), (64, 48)))
    board.close()
    stage = Stage(board.config)
    zones = look.zones(320, 180, False, False)
    c = choice({"id": "i", "type": "image", "media": sha})
    pages = stage.pages(c, zones)
    assert len(pages) == 1 and pages[0][1] == 0.0
    assert (pages[0][0].width(), pages[0][0].height()) == (320, 180)
    assert stage.pages(c, zones) is pages
    assert stage.render(c, zones) is pages[0][0]


def test_a_clip_has_no_still_picture(stage: Stage) -> None:
    c = choice({"id": "v", "type": "video", "media": "a" * 64})
    with pytest.raises(ImageError, match="no still picture"):
        stage.pages(c, look.zones(320, 180, False, False))


def test_an_emergency_on_a_strip_board_turns_pages(stage: Stage) -> None:
    strip = look.zones(1920, 96, False, False)
    pages = stage.pages(choice(TEXT, "emergency", risk_level=3), strip)
    assert len(pages) == 3 and all(seconds > 0 for _, seconds in pages)
    assert len(stage.pages(choice(TEXT), strip)) == 1  # a normal notice: one picture
    usual = look.zones(1280, 720, False, False)
    assert len(stage.pages(choice(TEXT, "emergency"), usual)) == 1


def test_the_caches_are_bounded_and_the_idle_picture_kept_per_minute(stage: Stage) -> None:
    zones = look.zones(320, 180, False, False)
    first = stage.pages(choice(TEXT), zones)
    stage.pages(choice({**TEXT, "id": "u"}), zones)
    stage.pages(choice({**TEXT, "id": "w"}), zones)  # max_slides=2: the first is dropped
    assert stage.pages(choice(TEXT), zones) is not first
    idle = stage.idle("UBND xã", IDLE_AT, zones)
    assert stage.idle("UBND xã", IDLE_AT, zones) is idle
    assert stage.idle("UBND xã", IDLE_AT.replace(minute=31), zones) is not idle


def test_kinds_are_items_of_the_protocol() -> None:
    assert Item.model_validate(TEXT).type is ItemKind.TEXT
