"""poll_once end to end: a real HTTP server on 127.0.0.1 (and file://), a real SQLite file.

Alerts, updates, cancels (also across a restart and out of order), expiry, future
effective times, Test/Exercise/Draft/System, areas, feeds that embed or link their
alerts, and hostile documents that must be refused while the rest goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from content_sync.cap import poll_once
from content_sync.cap.alerts import states
from content_sync.db import store
from content_sync.protocol.manifest import Playlist
from kiosk_config import Config
from player.schedule import item_playable, playlist_active
from tests.kit.cap import (
    BILLION_LAUGHS,
    LAT,
    LON,
    POLYGON_AROUND,
    POLYGON_ELSEWHERE,
    XXE,
    FeedServer,
    alert,
    area,
    atom,
    feed_server,
    info,
    key,
    rss,
)

__all__ = ["feed_server"]  # the fixture, imported for its side effect
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
SENT = "2026-11-24T08:00:00+07:00"


def cfg(feed_url: str, **cap: Any) -> Config:
    section = {"feed_url": feed_url, "latitude": LAT, "longitude": LON,
               "area_names": ["Pa Vệ Sủ"], **cap}
    return Config.model_validate({"cap": section})


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "eboard.db")
    yield c
    c.close()


def shown(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    out = [json.loads(b) for b in store.overlays(conn)]
    for pl in out:
        Playlist.model_validate(pl)  # what the player will read
    return out


def titles(conn: sqlite3.Connection) -> list[str]:
    return sorted(pl["items"][0]["title"] for pl in shown(conn))


def test_alert_over_http_becomes_an_emergency_overlay(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs["/cap.xml"] = alert(infos=(
        info(language="en-US", event="Flash flood", headline="FLASH FLOOD WARNING"),
        info(parameters=(("capDoRuiRo", "Cấp 4"),)),
    ))
    r = poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    assert r.state == "ok" and r.error == "" and r.new == 1 and len(r.shown) == 1
    [pl] = shown(conn)
    assert pl["priority"] == "emergency" and pl["risk_level"] == 4
    assert pl["title"] == "Lũ quét, sạt lở đất"
    item = pl["items"][0]
    assert item["title"] == "CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"
    assert item["body"].startswith("Mưa lớn gây nguy cơ lũ quét")
    assert "Khu vực: Xã Pa Vệ Sủ, huyện Mường Tè, tỉnh Lai Châu" in item["body"]
    assert "Hiệu lực: từ 08:00 24/11/2026 đến 08:00 25/11/2026" in item["body"]
    assert "Nguồn: Đài KTTV tỉnh Lai Châu" in item["body"]
    assert item["instructions"].startswith("Di chuyển ngay")
    assert datetime.fromisoformat(pl["schedule"]["start"]) == datetime.fromisoformat(SENT)
    assert datetime.fromisoformat(pl["schedule"]["end"]) == NOW + timedelta(hours=22)
    assert pl["origin"]["language"] == "vi-VN" and pl["origin"]["identifier"] == "LCI-2026-0001"
    generation = store.generation(conn)
    again = poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW + timedelta(minutes=1))
    assert again.new == 0 and again.shown == r.shown
    assert store.generation(conn) == generation  # nothing changed: the player is not woken


@pytest.mark.parametrize(("languages", "expected"), [
    (["vi", "vi-VN"], "vi-VN"),
    (["en"], "en-US"),
    (["fr"], "en-US"),  # no preference present: the first info
])
def test_language_preference(
    feed_server: FeedServer, conn: sqlite3.Connection, languages: list[str], expected: str
) -> None:
    feed_server.docs["/cap.xml"] = alert(infos=(info(language="en-US"), info(language="vi-VN")))
    poll_once(cfg(feed_server.url("/cap.xml"), languages=languages), conn, now=NOW)
    assert [pl["origin"]["language"] for pl in shown(conn)] == [expected]


def test_update_replaces_and_cancel_removes_across_a_restart(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.url("/cap.xml")
    db = tmp_path / "restart.db"
    conn = store.connect(db)
    feed_server.docs["/cap.xml"] = alert(identifier="A")
    poll_once(cfg(url), conn, now=NOW)
    assert titles(conn) == ["CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"]

    feed_server.docs["/cap.xml"] = alert(
        identifier="B", sent="2026-11-24T09:00:00+07:00", msg_type="Update",
        references=(("A", SENT),), infos=(info(headline="LŨ QUÉT ĐANG XẢY RA"),))
    poll_once(cfg(url), conn, now=NOW)
    assert titles(conn) == ["LŨ QUÉT ĐANG XẢY RA"]
    conn.close()

    conn = store.connect(db)  # the box restarted
    feed_server.docs["/cap.xml"] = alert(
        identifier="C", sent="2026-11-24T09:30:00+07:00", msg_type="Cancel",
        references=(("B", "2026-11-24T09:00:00+07:00"),), infos=())
    r = poll_once(cfg(url), conn, now=NOW)
    assert r.shown == [] and shown(conn) == []
    st = states(conn, url)
    assert st[key("A")] == "superseded"
    assert st[key("B", "2026-11-24T09:00:00+07:00")] == "cancelled"

    feed_server.docs["/cap.xml"] = alert(identifier="A")  # a stale copy comes back
    poll_once(cfg(url), conn, now=NOW)
    assert shown(conn) == []
    conn.close()


def test_cancel_arriving_before_its_alert(feed_server: FeedServer, conn: sqlite3.Connection
                                          ) -> None:
    url = feed_server.url("/feed.xml")
    cancel = alert(identifier="C", msg_type="Cancel", references=(("A", SENT),), infos=())
    feed_server.docs["/feed.xml"] = atom([("c", None, cancel)])
    poll_once(cfg(url), conn, now=NOW)
    feed_server.docs["/feed.xml"] = atom([("c", None, cancel), ("a", None, alert(identifier="A"))])
    poll_once(cfg(url), conn, now=NOW)
    assert shown(conn) == []
    assert states(conn, url)[key("A")] == "cancelled"


def test_expires_removes_the_alert_even_when_the_feed_is_down(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/cap.xml")
    feed_server.docs["/cap.xml"] = alert()
    poll_once(cfg(url), conn, now=NOW)
    feed_server.docs.clear()  # the feed answers 404 from now on
    r = poll_once(cfg(url), conn, now=NOW + timedelta(hours=1))
    assert r.state == "error" and "HTTP 404" in r.error and url in r.error
    assert len(shown(conn)) == 1  # known alerts stay while the feed is unreachable
    r = poll_once(cfg(url), conn, now=NOW + timedelta(hours=23))  # past 08:00 tomorrow
    assert shown(conn) == [] and r.shown == []
    assert states(conn, url)[key("LCI-2026-0001")] == "expired"


def test_already_expired_alert_is_never_shown(feed_server: FeedServer, conn: sqlite3.Connection
                                              ) -> None:
    feed_server.docs["/cap.xml"] = alert(infos=(info(expires="2026-11-24T09:00:00+07:00"),))
    poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    assert shown(conn) == []


def test_alert_without_expires_lasts_no_expiry_hours(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/cap.xml")
    feed_server.docs["/cap.xml"] = alert(infos=(info(expires=None),))
    poll_once(cfg(url, no_expiry_hours=6), conn, now=NOW)
    [pl] = shown(conn)
    assert datetime.fromisoformat(pl["schedule"]["end"]) == NOW + timedelta(hours=4)
    poll_once(cfg(url, no_expiry_hours=6), conn, now=NOW + timedelta(hours=5))
    assert shown(conn) == []


def test_future_effective_waits_in_the_schedule(
    feed_server: FeedServer, conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    start = "2026-11-24T18:00:00+07:00"
    feed_server.docs["/cap.xml"] = alert(infos=(info(effective=start),))
    with caplog.at_level(logging.INFO, logger="content_sync.cap.job"):
        poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    # the log says what will happen, and when: not "on this board" for a later alert
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records
            if "covers this board" in r.getMessage()] == [
        "'Lũ quét, sạt lở đất' (emergency), on screen from 18:00 24/11/2026 until "
        "08:00 25/11/2026 (Asia/Ho_Chi_Minh)"]
    [pl] = shown(conn)
    assert datetime.fromisoformat(pl["schedule"]["start"]) == datetime.fromisoformat(start)
    assert datetime.fromisoformat(pl["items"][0]["valid_from"]) == datetime.fromisoformat(start)
    playlist = Playlist.model_validate(pl)
    assert not playlist_active(playlist, NOW, ZoneInfo("Asia/Ho_Chi_Minh"))


def test_advance_warning_is_on_screen_now_with_its_onset(
    feed_server: FeedServer, conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    # Extreme/Expected, sent now, the storm expected in 3 hours, no <effective>: CAP 1.2
    # says effective defaults to sent, so the warning is on screen now, and says when.
    onset = (NOW + timedelta(hours=3)).isoformat()  # UTC on the wire: 13:00 in Hà Nội
    feed_server.docs["/cap.xml"] = alert(sent=NOW.isoformat(), infos=(
        info(urgency="Expected", effective=None, onset=onset),))
    with caplog.at_level(logging.INFO, logger="content_sync.cap.job"):
        poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    assert any(r.getMessage().endswith(
        "covers this board: 'Lũ quét, sạt lở đất' (emergency), on screen now until "
        "08:00 25/11/2026 (Asia/Ho_Chi_Minh)") for r in caplog.records)
    [pl] = shown(conn)
    assert pl["priority"] == "emergency"
    playlist = Playlist.model_validate(pl)
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    assert playlist_active(playlist, NOW, tz)
    assert item_playable(playlist.items[0], NOW)
    body = pl["items"][0]["body"].splitlines()
    assert "Dự kiến từ 13:00 24/11/2026" in body
    assert "Hiệu lực: từ 10:00 24/11/2026 đến 08:00 25/11/2026" in body


@pytest.mark.parametrize(("show_test", "expected"), [
    (False, {"Actual": ("CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT", "emergency")}),
    (True, {
        "Actual": ("CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT", "emergency"),
        "Test": ("THỬ NGHIỆM — CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT", "priority"),
        "Exercise": ("DIỄN TẬP — CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT", "emergency"),
    }),
])
def test_status_test_exercise_labelled_draft_system_never(
    feed_server: FeedServer, conn: sqlite3.Connection, show_test: bool,
    expected: dict[str, tuple[str, str]]
) -> None:
    statuses = ["Actual", "Test", "Exercise", "Draft", "System"]
    feed_server.docs["/feed.xml"] = atom(
        [(s, None, alert(identifier=s, status=s)) for s in statuses])
    poll_once(cfg(feed_server.url("/feed.xml"), show_test=show_test), conn, now=NOW)
    got = {pl["origin"]["status"]: (pl["items"][0]["title"], pl["priority"])
           for pl in shown(conn)}
    assert got == expected
    for pl in shown(conn):
        if pl["origin"]["status"] == "Test":
            assert pl["items"][0]["body"].startswith("[THỬ NGHIỆM] ")
        if pl["origin"]["status"] == "Exercise":
            assert pl["items"][0]["body"].startswith("[DIỄN TẬP] ")


def test_restricted_scope_is_not_for_a_public_screen(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs["/cap.xml"] = alert(scope="Restricted")
    poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    assert shown(conn) == []


NOWHERE = {"latitude": 0.0, "longitude": 0.0}


@pytest.mark.parametrize(("areas", "cap", "expected"), [
    ((area(desc="Vùng A", geocodes=(("MA_XA", "03085"),)),),
     {**NOWHERE, "geocodes": ["MA_XA=03085"]}, True),
    ((area(desc="Vùng A", geocodes=(("MA_XA", "03086"),)),),
     {**NOWHERE, "geocodes": ["MA_XA=03085"]}, False),
    ((area(desc="Vùng A", polygons=(POLYGON_AROUND,)),), {}, True),
    ((area(desc="Vùng A", polygons=(POLYGON_ELSEWHERE,)),), {}, False),
    ((area(desc="Vùng A", polygons=("",)), area(desc="Vùng B", circles=("22.41,102.61 5",))),
     {}, True),
    ((area(desc="Vùng A", polygons=("",)),), {}, False),
    ((area(desc="TỈNH LAI CHÂU"),), {**NOWHERE, "area_names": ["Lai Châu"]}, True),
    ((area(desc="Tỉnh Lào Cai"),), {**NOWHERE, "area_names": ["Lai Châu"]}, False),
    ((), {}, False),  # an info without an area covers nothing
])
def test_area_routes(feed_server: FeedServer, conn: sqlite3.Connection,
                     areas: tuple[str, ...], cap: dict[str, Any], expected: bool) -> None:
    feed_server.docs["/cap.xml"] = alert(infos=(info(areas=areas),))
    r = poll_once(cfg(feed_server.url("/cap.xml"), **cap), conn, now=NOW)
    assert r.problems == []
    assert bool(shown(conn)) is expected


@pytest.mark.parametrize(("board", "expected"), [
    # the example of README.md: commune, legacy district, province
    (["Pa Vệ Sủ", "Mường Tè", "Lai Châu"], ["TỈNH LAI CHÂU: MƯA LỚN"]),
    (["Xã Pa Tần", "Tỉnh Lai Châu"], ["PA TẦN: LŨ QUÉT", "TỈNH LAI CHÂU: MƯA LỚN"]),
    (["Pa Tần", "Nậm Nhùn", "Lai Châu"], ["PA TẦN: LŨ QUÉT", "TỈNH LAI CHÂU: MƯA LỚN"]),
    (["Xã Mường Nhé", "Tỉnh Điện Biên"], []),
])
def test_a_commune_alert_reaches_only_that_commune(
    feed_server: FeedServer, tmp_path: Path, board: list[str], expected: list[str]
) -> None:
    """Vietnamese area texts always name the province: matching "Lai Châu" anywhere in
    them took a commune's warning to every board of the province."""
    feed_server.docs["/feed.xml"] = atom([
        ("pa-tan", None, alert(identifier="PT", infos=(info(headline="PA TẦN: LŨ QUÉT", areas=(
            area(desc="Xã Pa Tần, huyện Nậm Nhùn, tỉnh Lai Châu"),)),))),
        ("lai-chau", None, alert(identifier="LC", infos=(info(
            headline="TỈNH LAI CHÂU: MƯA LỚN", areas=(area(desc="Tỉnh Lai Châu"),)),))),
    ])
    c = store.connect(tmp_path / "board.db")
    try:
        poll_once(cfg(feed_server.url("/feed.xml"), area_names=board, **NOWHERE), c, now=NOW)
        assert titles(c) == expected
    finally:
        c.close()


def test_atom_feed_embedded_linked_and_withdrawn(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/feed.xml")
    a = alert(identifier="A")
    b = alert(identifier="B", infos=(info(headline="SẠT LỞ ĐẤT"),))
    feed_server.docs["/alerts/b.xml"] = b
    with_b = atom([("a", None, a), ("b", "alerts/b.xml", None), ("x", "file:///etc/passwd", None)])
    feed_server.docs["/feed.xml"] = with_b
    r = poll_once(cfg(url), conn, now=NOW)
    assert titles(conn) == ["CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT", "SẠT LỞ ĐẤT"]
    assert len(r.problems) == 1 and "another scheme" in r.problems[0]
    poll_once(cfg(url), conn, now=NOW)
    assert feed_server.hits.count("/alerts/b.xml") == 1  # CAP messages never change

    feed_server.docs["/feed.xml"] = atom([("a", None, a)])
    poll_once(cfg(url), conn, now=NOW)
    assert titles(conn) == ["CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"]  # B left the feed
    feed_server.docs["/feed.xml"] = with_b
    poll_once(cfg(url), conn, now=NOW)
    assert len(shown(conn)) == 2  # and came back


def test_rss_feed_of_links(feed_server: FeedServer, conn: sqlite3.Connection) -> None:
    feed_server.docs["/a.xml"] = alert(identifier="A")
    feed_server.docs["/b.xml"] = alert(identifier="B", infos=(info(severity="Minor"),))
    feed_server.docs["/rss.xml"] = rss([feed_server.url("/a.xml"), feed_server.url("/b.xml")])
    poll_once(cfg(feed_server.url("/rss.xml")), conn, now=NOW)
    assert sorted(pl["priority"] for pl in shown(conn)) == ["emergency", "normal"]


def test_hostile_documents_are_refused_and_the_rest_goes_on(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs.update({
        "/bomb.xml": BILLION_LAUGHS, "/xxe.xml": XXE,
        "/html.xml": b"<html><body>Service Unavailable</body></html>",
        "/good.xml": alert(identifier="good"),
        "/feed.xml": atom([(p, p, None) for p in
                           ("/bomb.xml", "/xxe.xml", "/html.xml", "/missing.xml", "/good.xml")]),
    })
    url = feed_server.url("/feed.xml")
    r = poll_once(cfg(url), conn, now=NOW)
    assert r.state == "ok" and len(shown(conn)) == 1
    assert len(r.problems) == 4 and all("\n" not in p for p in r.problems)
    refusals = store.recent_refusals(conn)
    assert len(refusals) == 3  # a 404 is a network problem, not a refused document
    reasons = " | ".join(f"{x['subject']}: {x['reason']}" for x in refusals)
    assert "/bomb.xml" in reasons and "/xxe.xml" in reasons and "DOCTYPE" in reasons
    assert "not a CAP" in reasons or "expected a CAP" in reasons
    poll_once(cfg(url), conn, now=NOW)
    assert len(store.recent_refusals(conn)) == 3  # recorded once, not every poll


def test_hostile_feed_is_refused_and_known_alerts_stay(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/cap.xml")
    feed_server.docs["/cap.xml"] = alert()
    poll_once(cfg(url), conn, now=NOW)
    feed_server.docs["/cap.xml"] = BILLION_LAUGHS
    r = poll_once(cfg(url), conn, now=NOW)
    assert r.state == "error" and "DOCTYPE" in r.error and url in r.error
    assert len(shown(conn)) == 1
    assert [x["subject"] for x in store.recent_refusals(conn)] == [f"CAP feed {url}"]


def test_huge_feed_is_refused(feed_server: FeedServer, conn: sqlite3.Connection) -> None:
    feed_server.docs["/cap.xml"] = b"<feed>" + b" " * 40_000 + b"</feed>"
    r = poll_once(cfg(feed_server.url("/cap.xml"), max_document_kb=16), conn, now=NOW)
    assert r.state == "error" and "cap.max_document_kb" in r.error


def test_unreachable_server_names_the_url(conn: sqlite3.Connection) -> None:
    server = FeedServer()
    url = server.url("/cap.xml")
    server.stop()
    r = poll_once(cfg(url), conn, now=NOW)
    assert r.state == "error" and url in r.error and "check the network" in r.error


def test_plain_http_to_another_host_is_refused(conn: sqlite3.Connection) -> None:
    url = "http://canhbao.example.invalid/cap.xml"
    with pytest.raises(ValidationError, match="cap.allow_insecure_http"):  # by the config
        cfg(url)
    # and by the job, for a config made past the schema (and every URL a feed links to)
    base = cfg("https://canhbao.example.invalid/cap.xml")
    config = base.model_copy(update={"cap": base.cap.model_copy(update={"feed_url": url})})
    r = poll_once(config, conn, now=NOW)
    assert r.state == "error" and "cap.allow_insecure_http" in r.error


def test_file_feed_with_relative_links(tmp_path: Path, conn: sqlite3.Connection) -> None:
    folder = tmp_path / "usb" / "cảnh báo"
    folder.mkdir(parents=True)
    (folder / "b.xml").write_bytes(alert(identifier="B"))
    (folder / "feed.xml").write_bytes(atom([("a", None, alert(identifier="A")),
                                            ("b", "b.xml", None)]))
    r = poll_once(cfg((folder / "feed.xml").as_uri()), conn, now=NOW)
    assert r.state == "ok" and r.problems == [] and len(shown(conn)) == 2
    r = poll_once(cfg((folder / "nope.xml").as_uri()), conn, now=NOW)
    assert r.state == "error" and "does not exist" in r.error


def test_file_feed_links_stay_in_its_folder(tmp_path: Path, conn: sqlite3.Connection) -> None:
    (tmp_path / "secret.xml").write_bytes(alert(identifier="outside"))
    folder = tmp_path / "usb"
    folder.mkdir()
    os.mkfifo(folder / "fifo.xml")
    (folder / "feed.xml").write_bytes(atom([("a", "../secret.xml", None),
                                            ("b", "/etc/passwd", None),
                                            ("c", "fifo.xml", None)]))
    r = poll_once(cfg((folder / "feed.xml").as_uri()), conn, now=NOW)
    assert shown(conn) == []
    assert ["outside the feed's folder" in p for p in r.problems] == [True, True, False]
    assert "not a regular file" in r.problems[2]


def test_turning_the_feed_off_clears_its_overlays(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs["/cap.xml"] = alert()
    poll_once(cfg(feed_server.url("/cap.xml")), conn, now=NOW)
    assert len(shown(conn)) == 1
    r = poll_once(Config(), conn, now=NOW)
    assert r.state == "off" and shown(conn) == []
    assert store.get_status(conn, "cap")["state"] == "off"


def test_cap_off_on_a_board_that_never_had_it_writes_nothing(conn: sqlite3.Connection) -> None:
    # the daemon runs the clearing once at every start: a board without CAP keeps no row
    assert poll_once(Config(), conn, now=NOW).state == "off"
    assert store.get_status(conn, "cap") is None


def test_config_needs_an_area_when_a_feed_is_set() -> None:
    with pytest.raises(ValidationError, match="board's area"):
        Config.model_validate({"cap": {"feed_url": "file:///srv/cap/feed.xml"}})
    with pytest.raises(ValidationError, match="http://, https:// or file://"):
        Config.model_validate({"cap": {"feed_url": "ftp://x/feed.xml", "area_names": ["A"]}})


def test_unchanged_feed_costs_a_304_and_still_expires(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/cap.xml")
    feed_server.docs["/cap.xml"] = alert()
    poll_once(cfg(url), conn, now=NOW)
    r = poll_once(cfg(url), conn, now=NOW + timedelta(minutes=1))
    assert feed_server.not_modified == ["/cap.xml"] and r.state == "ok" and len(r.shown) == 1
    r = poll_once(cfg(url), conn, now=NOW + timedelta(days=2))
    assert len(feed_server.not_modified) == 2 and r.shown == [] and shown(conn) == []


def test_a_link_that_failed_is_tried_again_even_if_the_feed_is_unchanged(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    url = feed_server.url("/feed.xml")
    feed_server.docs["/feed.xml"] = atom([("b", "/b.xml", None)])
    r = poll_once(cfg(url), conn, now=NOW)
    assert shown(conn) == [] and "HTTP 404" in r.problems[0]
    feed_server.docs["/b.xml"] = alert(identifier="B")
    poll_once(cfg(url), conn, now=NOW)
    assert feed_server.not_modified == [] and len(shown(conn)) == 1


def test_a_new_feed_url_carrying_the_same_alert_still_shows_it(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs["/old.xml"] = feed_server.docs["/new.xml"] = alert()
    poll_once(cfg(feed_server.url("/old.xml")), conn, now=NOW)
    r = poll_once(cfg(feed_server.url("/new.xml")), conn, now=NOW)
    assert len(r.shown) == 1 and len(shown(conn)) == 1


def test_missing_ca_bundle_is_a_fetch_error(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = Config.model_validate({
        "source": {"ca_bundle": str(tmp_path / "no-such-ca.pem")},
        "cap": {"feed_url": "https://127.0.0.1:9/cap.xml", "area_names": ["Lai Châu"]},
    })
    r = poll_once(config, conn, now=NOW)
    assert r.state == "error" and "https://127.0.0.1:9/cap.xml" in r.error
    assert "source.ca_bundle" in r.error


def test_a_flood_of_junk_entries_is_bounded(feed_server: FeedServer, conn: sqlite3.Connection
                                            ) -> None:
    junk = b"".join(b"<entry><id>%d</id></entry>" % i for i in range(1500))
    feed_server.docs["/feed.xml"] = (b'<feed xmlns="http://www.w3.org/2005/Atom">' + junk
                                     + b"</feed>")
    r = poll_once(cfg(feed_server.url("/feed.xml")), conn, now=NOW)
    assert r.entries == 1000 and "500 entries beyond the first 1000" in r.problems[0]
    assert len(store.recent_refusals(conn, limit=100)) == 21  # 20 and one "N more"


def test_update_listed_before_its_original_in_the_same_feed(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    update = alert(identifier="B", sent="2026-11-24T09:00:00+07:00", msg_type="Update",
                   references=(("A", SENT),), infos=(info(headline="CẬP NHẬT"),))
    feed_server.docs["/feed.xml"] = atom([("b", None, update), ("a", None, alert(identifier="A"))])
    poll_once(cfg(feed_server.url("/feed.xml")), conn, now=NOW)
    assert titles(conn) == ["CẬP NHẬT"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=3000),
    st.builds(atom, st.lists(st.tuples(st.text(max_size=10), st.none() | st.text(max_size=20),
                                       st.none() | st.builds(alert)), max_size=4)),
))
def test_poll_once_never_raises_on_whatever_the_feed_holds(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.xml"
        feed.write_bytes(data)
        conn = store.connect(Path(tmp) / "eboard.db")
        try:
            r = poll_once(cfg(feed.as_uri()), conn, now=NOW)
            assert r.state in ("ok", "error")
            shown(conn)
        finally:
            conn.close()
