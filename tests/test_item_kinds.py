"""Item kinds: one registry, and an item of a kind this release does not know is left
out of its playlist (its reason recorded and reported) while the rest plays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from content_sync.board import media_check
from content_sync.board.engine import Engine, SyncState
from content_sync.db import store
from content_sync.protocol import (
    ALLOWED_TYPES,
    KIND_RULES,
    MEDIA_KINDS,
    ItemKind,
    ManifestError,
    parse_manifest,
)
from content_sync.publish.build import PublishError, prepare
from content_sync.report.status_report import build_status
from player import content
from player.schedule import Cursor, decide
from tests.kit.sync import (
    BOARD,
    ISSUED,
    Publisher,
    StaticApp,
    make_keys,
    png,
    serve_wsgi,
    write_config,
)
from tests.kit.sync import sha256 as sha

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PAGE = b"<html><body>Trang web</body></html>"
WEBPAGE = {"id": "web-1", "type": "webpage", "media": sha(PAGE), "url": "https://x.vn/"}


def body(items: list[dict[str, Any]], media: dict[str, Any] | None = None) -> bytes:
    return json.dumps({
        "format": "eboard.manifest/1", "board": BOARD, "version": 7, "issued_at": ISSUED,
        "media": media or {}, "playlists": [{"id": "pl-1", "items": items}],
    }).encode()


TEXT = {"id": "tb-1", "type": "text", "title": "THÔNG BÁO", "duration": 10}
HTML_MEDIA = {sha(PAGE): {"size": len(PAGE), "type": "text/html"}}


def test_every_kind_has_a_rule_and_every_media_type_a_kind() -> None:
    assert set(KIND_RULES) == set(ItemKind)
    assert set(MEDIA_KINDS) == ALLOWED_TYPES
    for kind, rule in KIND_RULES.items():
        shown_by = {t for t, k in MEDIA_KINDS.items() if k is kind}
        assert bool(shown_by) == rule.needs_media, kind


def test_an_unknown_kind_is_left_out_with_its_reason_and_the_rest_plays() -> None:
    m = parse_manifest(body([WEBPAGE, TEXT], HTML_MEDIA))
    assert [it.id for it in m.playlists[0].items] == ["tb-1"]
    assert m.playlists[0].items[0].type is ItemKind.TEXT
    assert [(s.playlist, s.item) for s in m.skipped] == [("pl-1", "web-1")]
    assert "'webpage'" in m.skipped[0].reason
    assert m.media == {}  # its media (of a type no board knows) went with it
    now = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
    d = decide(m.playlists, now, Cursor(), TZ)
    assert d.choice is not None and d.choice.item.id == "tb-1"


def test_a_playlist_of_unknown_kinds_only_plays_nothing() -> None:
    m = parse_manifest(body([WEBPAGE, {**WEBPAGE, "id": "web-2"}], HTML_MEDIA))
    assert m.playlists[0].items == () and len(m.skipped) == 2
    d = decide(m.playlists, datetime(2026, 11, 24, 9, 0, tzinfo=TZ), Cursor(), TZ)
    assert d.choice is None


def test_media_shared_with_a_known_item_stays() -> None:
    img = png(1)
    media = {sha(img): {"size": len(img), "type": "image/png"}}
    shared = {**WEBPAGE, "media": sha(img)}
    m = parse_manifest(body([shared, {"id": "a", "type": "image", "media": sha(img)}], media))
    assert set(m.media) == {sha(img)} and len(m.skipped) == 1


@pytest.mark.parametrize("kind", [7, None, ["image"]])
def test_a_type_that_is_not_a_string_still_refuses_the_whole_manifest(kind: object) -> None:
    with pytest.raises(ManifestError, match="type"):
        parse_manifest(body([{**TEXT, "type": kind}]))


def test_skipped_cannot_be_set_by_the_manifest() -> None:
    raw = json.loads(body([TEXT]))
    raw["skipped"] = [{"playlist": "pl-1", "item": "x", "reason": "forged"}]
    assert parse_manifest(json.dumps(raw).encode()).skipped == ()


def test_a_media_type_without_a_check_is_refused_not_passed(tmp_path: Path) -> None:
    f = tmp_path / "page.html"
    f.write_bytes(PAGE)
    with pytest.raises(media_check.ContentRefused, match="text/html"):
        media_check.check(f, "text/html")


def test_publishing_an_unknown_kind_is_refused_at_the_desk(tmp_path: Path) -> None:
    priv, _ = make_keys(tmp_path / "keys")
    toml = tmp_path / "playlist.toml"
    toml.write_text('[[playlists]]\nid="p"\n[[playlists.items]]\ntype="webpage"\n'
                    'title="x"\n', encoding="utf-8")
    with pytest.raises(PublishError, match="webpage"):
        prepare(toml, BOARD, priv)


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    key, pubkey = make_keys(tmp_path / "keys")
    (tmp_path / "src").mkdir()
    pub = Publisher(tmp_path / "src", key)
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        yield pub, (config, conn)
        conn.close()


def test_a_board_activates_the_manifest_and_reports_the_item_left_out(
        synced: tuple[Any, Any]) -> None:
    pub, (config, conn) = synced
    raw = pub.manifest(1, {"a": (png(1), "image/png")})
    pub.add_media(PAGE)
    raw["media"].update(HTML_MEDIA)
    raw["playlists"][0]["items"].insert(1, WEBPAGE)
    pub.write(raw)
    r = Engine(config, conn).sync_once()
    assert r.state == SyncState.UP_TO_DATE, r.reason
    assert store.active_version(conn) == 1
    assert not store.media_path(config.cache_dir, sha(PAGE)).exists()  # not fetched
    heartbeat = build_status(config, conn)
    [refusal] = heartbeat["sync"]["recent_refusals"]
    assert "'web-1'" in refusal["subject"] and "'webpage'" in refusal["reason"]
    Engine(config, conn).sync_once()  # again: reported once
    assert len(store.recent_refusals(conn)) == 1
    shown = content.load(conn, config.cache_dir)
    assert [it.id for it in shown.playlists[0].items] == ["tb-1", "a"]
