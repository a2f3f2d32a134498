"""What plays when: the pure scheduler with a frozen clock (no Qt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from content_sync.protocol.manifest import Playlist
from player.schedule import (
    Cursor,
    decide,
    item_duration,
    must_preempt,
    next_change,
    playlist_active,
    top_class,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SHA = "a" * 64


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0, s: int = 0, tz: Any = VN) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz)


# 2026-11-23 is a Monday, 2026-11-27 a Friday.
MON = at(2026, 11, 23)


def pl(pid: str, n: int = 1, priority: str = "normal", schedule: dict[str, Any] | None = None,
       items: list[dict[str, Any]] | None = None, **extra: Any) -> Playlist:
    its = items if items is not None else [
        {"id": f"{pid}{i + 1}", "type": "text", "title": f"{pid} {i + 1}", "duration": 10}
        for i in range(n)]
    return Playlist.model_validate({"id": pid, "priority": priority, "items": its,
                                    "schedule": schedule or {}, **extra})


def play_sequence(pls: list[Playlist], now: datetime, n: int) -> list[str]:
    cur, out = Cursor(), []
    for _ in range(n):
        d = decide(pls, now, cur, VN)
        assert d.choice is not None
        out.append(d.choice.item.id)
        cur = d.cursor
    return out


def test_date_range_start_inclusive_end_exclusive() -> None:
    p = pl("a", schedule={"start": "2026-11-01T00:00:00+07:00", "end": "2026-12-01T00:00:00+07:00"})
    assert not playlist_active(p, at(2026, 10, 31, 23, 59, 59), VN)
    assert playlist_active(p, at(2026, 11, 1, 0, 0, 0), VN)
    assert playlist_active(p, at(2026, 11, 30, 23, 59, 59), VN)
    assert not playlist_active(p, at(2026, 12, 1, 0, 0, 0), VN)
    # The same instant written in UTC.
    assert playlist_active(p, datetime(2026, 10, 31, 17, 0, tzinfo=UTC), VN)


def test_weekdays_are_local_to_the_board() -> None:
    p = pl("a", schedule={"days": [1]})  # Mondays
    assert playlist_active(p, MON, VN)
    assert not playlist_active(p, MON + timedelta(days=1), VN)
    # Sunday 23:30 UTC is already Monday 06:30 in Vietnam.
    sunday_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert playlist_active(p, sunday_utc, VN)
    assert not playlist_active(p, sunday_utc, ZoneInfo("UTC"))


def test_time_window_boundaries() -> None:
    p = pl("a", schedule={"times": [["06:00", "11:00"], ["13:30", "21:00"]]})
    assert not playlist_active(p, at(2026, 11, 23, 5, 59, 59), VN)
    assert playlist_active(p, at(2026, 11, 23, 6, 0, 0), VN)
    assert playlist_active(p, at(2026, 11, 23, 10, 59, 59), VN)
    assert not playlist_active(p, at(2026, 11, 23, 11, 0, 0), VN)
    assert not playlist_active(p, at(2026, 11, 23, 13, 29, 59), VN)
    assert playlist_active(p, at(2026, 11, 23, 13, 30), VN)
    assert not playlist_active(p, at(2026, 11, 23, 21, 0), VN)


def test_window_crossing_midnight_belongs_to_the_day_it_opens() -> None:
    p = pl("night", schedule={"days": [5], "times": [["22:00", "06:00"]]})  # Friday nights
    fri = at(2026, 11, 27)
    assert not playlist_active(p, fri.replace(hour=21, minute=59), VN)
    assert playlist_active(p, fri.replace(hour=22), VN)
    assert playlist_active(p, fri.replace(hour=23, minute=59, second=59), VN)
    assert playlist_active(p, (fri + timedelta(days=1)).replace(hour=0), VN)  # Saturday 00:00
    assert playlist_active(p, (fri + timedelta(days=1)).replace(hour=5, minute=59), VN)
    assert not playlist_active(p, (fri + timedelta(days=1)).replace(hour=6), VN)
    assert not playlist_active(p, (fri + timedelta(days=1)).replace(hour=22), VN)  # Saturday
    assert not playlist_active(p, fri.replace(hour=2), VN)  # Thursday's night


def test_window_to_2400_and_whole_day_window() -> None:
    p = pl("eve", schedule={"times": [["18:00", "24:00"]]})
    assert playlist_active(p, at(2026, 11, 23, 23, 59, 59), VN)
    assert not playlist_active(p, at(2026, 11, 24, 0, 0), VN)
    whole = pl("all", schedule={"times": [["07:00", "07:00"]], "days": [1]})
    assert playlist_active(whole, at(2026, 11, 23, 3, 0), VN)
    assert not playlist_active(whole, at(2026, 11, 24, 3, 0), VN)


def test_item_validity_and_missing_media() -> None:
    p = pl("a", items=[
        {"id": "old", "type": "text", "title": "cũ", "valid_until": "2026-11-23T12:00:00+07:00"},
        {"id": "new", "type": "text", "title": "mới", "valid_from": "2026-11-23T12:00:00+07:00"},
        {"id": "img", "type": "image", "media": SHA},
    ])
    before = at(2026, 11, 23, 11, 59, 59)
    assert play_sequence([p], before, 3) == ["old", "img", "old"]
    assert play_sequence([p], MON, 3) == ["new", "img", "new"]
    d = decide([p], MON, Cursor(), VN, available=set())
    assert d.choice is not None and d.choice.item.id == "new"
    d = decide([p], MON, Cursor(last_item={"a": "new"}), VN, available=set())
    assert d.choice is not None and d.choice.item.id == "new"  # img is not in the cache


def test_nothing_active_is_idle() -> None:
    p = pl("a", schedule={"days": [2]})
    d = decide([p], MON, Cursor(), VN)
    assert d.choice is None
    assert d.next_change == at(2026, 11, 24, 0, 0)  # Tuesday starts at midnight
    assert decide([], MON, Cursor(), VN).choice is None


def test_normal_playlists_share_fairly_in_a_stable_order() -> None:
    a, b, c = pl("A", 3), pl("B", 1), pl("C", 2)
    seq = play_sequence([a, b, c], MON, 9)
    assert seq == ["A1", "B1", "C1", "A2", "B1", "C2", "A3", "B1", "C1"]
    # Each playlist gets one turn in three, whatever its length.
    counts = {p: sum(1 for s in play_sequence([a, b, c], MON, 300) if s[0] == p) for p in "ABC"}
    assert counts == {"A": 100, "B": 100, "C": 100}


def test_rotation_continues_after_a_playlist_leaves_or_a_manifest_changes() -> None:
    a, b, c = pl("A", 2), pl("B", 2), pl("C", 2)
    cur = Cursor()
    for _ in range(2):  # A1, B1
        cur = decide([a, b, c], MON, cur, VN).cursor
    d = decide([a, c], MON, cur, VN)  # B withdrawn: C is next, not A again
    assert d.choice is not None and d.choice.item.id == "C1"
    # A new manifest inserts an item after A1: A continues after A1, with the new one.
    a2 = pl("A", items=[{"id": "A1", "type": "text", "title": "x"},
                        {"id": "Anew", "type": "text", "title": "y"},
                        {"id": "A2", "type": "text", "title": "z"}])
    d = decide([a2, c], MON, d.cursor, VN)
    assert d.choice is not None and d.choice.item.id == "Anew"


def test_priority_plays_next_and_ahead_of_normal() -> None:
    n = pl("N", 2)
    p = pl("P", 1, "priority", schedule={"start": "2026-11-23T12:00:00+07:00"})
    d = decide([n, p], MON - timedelta(minutes=1), Cursor(), VN)
    assert d.choice is not None and d.choice.item.id == "N1"
    playing = d.choice
    # At 12:00 the priority playlist starts: the normal item is not cut short...
    assert not must_preempt(playing, [n, p], MON, VN)
    # ...but it is what plays next, and as long as it is active.
    assert play_sequence([n, p], MON, 3) == ["P1", "P1", "P1"]
    assert top_class([n, p], MON, VN) == "priority"


def test_emergency_preempts_at_once_and_leaves_at_once() -> None:
    n = pl("N", 1)
    e = pl("E", 2, "emergency", risk_level=4,
           schedule={"start": "2026-11-23T12:00:00+07:00", "end": "2026-11-23T13:00:00+07:00"})
    before = decide([n, e], MON - timedelta(seconds=1), Cursor(), VN)
    assert before.choice is not None and before.choice.item.id == "N1"
    assert before.next_change == MON  # the emergency's start is the next edge
    assert must_preempt(before.choice, [n, e], MON, VN)
    d = decide([n, e], MON, before.cursor, VN)
    assert d.choice is not None and d.choice.priority == "emergency"
    assert d.choice.playlist.risk_level == 4
    assert d.next_change == at(2026, 11, 23, 13, 0)
    assert play_sequence([n, e], MON, 3) == ["E1", "E2", "E1"]
    assert not must_preempt(d.choice, [n, e], MON + timedelta(minutes=30), VN)
    # Schedule over: the banner goes at once, the rotation resumes.
    assert must_preempt(d.choice, [n, e], at(2026, 11, 23, 13, 0), VN)
    # Withdrawn by a newer manifest, or downgraded, or its text changed: at once too.
    assert must_preempt(d.choice, [n], MON + timedelta(minutes=1), VN)
    assert must_preempt(d.choice, [n, pl("E", 2, "normal")], MON, VN)
    e_new = pl("E", items=[{"id": "E1", "type": "text", "title": "BÃO MẠNH HƠN"},
                           {"id": "E2", "type": "text", "title": "E 2"}],
               priority="emergency", risk_level=5)
    assert must_preempt(d.choice, [n, e_new], MON, VN)


def test_idle_gives_way_to_anything_and_normal_plays_to_its_end() -> None:
    n = pl("N", 1)
    assert must_preempt(None, [n], MON, VN)
    assert not must_preempt(None, [], MON, VN)
    d = decide([n], MON, Cursor(), VN)
    assert d.choice is not None
    assert not must_preempt(d.choice, [], MON, VN)  # withdrawn normal content ends by itself


def test_next_change_covers_window_edges_validity_and_midnight() -> None:
    p = pl("a", schedule={"times": [["06:00", "11:00"]]}, items=[
        {"id": "x", "type": "text", "title": "x", "valid_until": "2026-11-23T09:15:00+07:00"}])
    assert next_change([p], at(2026, 11, 23, 5, 0), VN) == at(2026, 11, 23, 6, 0)
    assert next_change([p], at(2026, 11, 23, 9, 0), VN) == at(2026, 11, 23, 9, 15)
    assert next_change([p], at(2026, 11, 23, 9, 15), VN) == at(2026, 11, 23, 11, 0)
    assert next_change([p], at(2026, 11, 23, 11, 0), VN) == at(2026, 11, 24, 6, 0)
    night = pl("n", schedule={"times": [["22:00", "06:00"]]})
    assert next_change([night], at(2026, 11, 23, 23, 0), VN) == at(2026, 11, 24, 6, 0)
    assert next_change([], MON, VN) is None


def test_timezone_comes_from_the_caller() -> None:
    p = pl("a", schedule={"times": [["06:00", "11:00"]]})
    instant = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 08:00 in Hanoi, 01:00 in London
    assert playlist_active(p, instant, VN)
    assert not playlist_active(p, instant, ZoneInfo("Europe/London"))
    assert decide([p], instant, Cursor(), ZoneInfo("Europe/London")).choice is None


def test_clock_jumps_are_just_a_new_now() -> None:
    n = pl("N", 2)
    e = pl("E", 1, "emergency",
           schedule={"start": "2026-11-23T12:00:00+07:00", "end": "2026-11-23T12:30:00+07:00"})
    d = decide([n, e], MON + timedelta(minutes=5), Cursor(), VN)
    assert d.choice is not None and d.choice.priority == "emergency"
    # NTP steps the clock back a day (RTC was wrong): the emergency has not begun.
    back = MON - timedelta(days=1)
    assert must_preempt(d.choice, [n, e], back, VN)
    d2 = decide([n, e], back, d.cursor, VN)
    assert d2.choice is not None and d2.choice.item.id == "N1"
    assert d2.next_change is not None and d2.next_change > back
    # The clock jumps forward past the end: no emergency, rotation continues after N1.
    fwd = MON + timedelta(hours=3)
    d3 = decide([n, e], fwd, d2.cursor, VN)
    assert d3.choice is not None and d3.choice.item.id == "N2"
    assert not must_preempt(d3.choice, [n, e], fwd, VN)


def test_default_durations() -> None:
    p = pl("a", items=[{"id": "i", "type": "image", "media": SHA},
                       {"id": "v", "type": "video", "media": SHA},
                       {"id": "t", "type": "text", "title": "t"},
                       {"id": "d", "type": "video", "media": SHA, "duration": 7}])
    assert [item_duration(it) for it in p.items] == [10.0, None, 15.0, 7.0]


# --- CAP advisories take a share of the rotation (issue item 15) -------------------------

def cap_overlay(severity: str = "Moderate", urgency: str = "Expected", share: float = 0.5,
                status: str = "Actual") -> Playlist:
    """A CAP alert with no expiry, as the sync side writes it and the player reads it."""
    from content_sync.cap.area import BoardArea
    from content_sync.cap.parse import parse_alert
    from content_sync.cap.to_playlist import to_playlist
    from player.schedule import OverlayPlaylist
    from tests.kit.cap import alert, info

    doc = alert(status=status, infos=(info(severity=severity, urgency=urgency, expires=None),))
    shown = to_playlist(parse_alert(doc), BoardArea(area_names=("Pa Vệ Sủ",)), ["vi"], True,
                        VN, CAP_NOW, timedelta(hours=24), advisory_share=share)
    assert shown is not None
    return OverlayPlaylist.model_validate_json(shown[1])


CAP_NOW = at(2026, 11, 24, 9)  # an hour after the builders' alert was sent


def test_a_moderate_advisory_and_normal_content_alternate_per_the_share() -> None:
    a, n = cap_overlay(share=0.5), pl("N", 3)
    assert a.priority == "priority"
    adv = a.items[0].id
    seq = play_sequence([n, a], CAP_NOW, 8)
    assert seq == [adv, "N1", adv, "N2", adv, "N3", adv, "N1"]
    # A quarter: the advisory first (it is news), then one item in four.
    seq = play_sequence([n, cap_overlay(share=0.25)], CAP_NOW, 8)
    assert seq == [adv, "N1", "N2", "N3", adv, "N1", "N2", "N3"]
    # Any fraction holds over a long run, however the screen is shared.
    seq = play_sequence([n, pl("M", 2), cap_overlay(share=0.4)], CAP_NOW, 500)
    assert seq.count(adv) == 200
    # 1.0 = plays next every time, as before the share existed.
    assert play_sequence([n, cap_overlay(share=1.0)], CAP_NOW, 4) == [adv] * 4


def test_an_advisory_alone_is_shown_back_to_back_not_an_idle_screen() -> None:
    a = cap_overlay()
    assert play_sequence([a], CAP_NOW, 3) == [a.items[0].id] * 3


def test_operator_priority_still_plays_next_every_time_beside_an_advisory() -> None:
    a, n = cap_overlay(), pl("N", 2)
    p = pl("P", 2, "priority", schedule={"start": "2026-11-24T10:00:00+07:00"})
    cur = Cursor()
    for _ in range(3):  # advisory, N1, advisory
        cur = decide([n, p, a], CAP_NOW, cur, VN).cursor
    later = CAP_NOW + timedelta(hours=1)
    for before in (cur, decide([n, p, a], CAP_NOW, cur, VN).cursor):  # after either kind
        d = decide([n, p, a], later, before, VN)
        assert d.choice is not None and d.choice.playlist.id == "P"
    assert play_sequence([n, p, a], later, 4) == ["P1", "P2", "P1", "P2"]
    # When it ends, the advisory comes back with its share.
    assert play_sequence([n, a], later, 2) == [a.items[0].id, "N1"]


def test_extreme_and_severe_cap_alerts_are_not_advisories() -> None:
    a, n = cap_overlay(), pl("N", 1)
    e = cap_overlay(severity="Extreme", urgency="Immediate")
    assert e.priority == "emergency"
    d = decide([n, a], CAP_NOW, Cursor(), VN)
    assert d.choice is not None and d.choice.playlist.id == a.id
    assert must_preempt(d.choice, [n, a, e], CAP_NOW, VN)  # an emergency still cuts in
    assert play_sequence([n, a, e], CAP_NOW, 3) == [e.items[0].id] * 3
    # Severe but in the future: plays next every time, as before.
    f = cap_overlay(severity="Severe", urgency="Future")
    assert f.priority == "priority"
    assert play_sequence([n, f], CAP_NOW, 3) == [f.items[0].id] * 3
    # A Test held to priority shares like an advisory, whatever its severity.
    for urgency in ("Immediate", "Future"):
        t = cap_overlay(severity="Extreme", urgency=urgency, status="Test")
        assert t.priority == "priority"
        assert play_sequence([n, t], CAP_NOW, 4) == [t.items[0].id, "N1"] * 2


def test_the_player_reads_the_share_from_the_overlay_and_older_json_still_plays(
        tmp_path: Any) -> None:
    from content_sync.db import store
    from player import content

    conn = store.connect(tmp_path / "eboard.db")
    a = cap_overlay(share=0.25)
    odd = {**pl("X", 1, "priority").model_dump(mode="json"), "rotation_share": "half"}
    store.replace_overlays(conn, "cap", {a.id: a.model_dump_json(), "X": json.dumps(odd)})
    shares = {p.id: getattr(p, "rotation_share", None)
              for p in content.load(conn, tmp_path).playlists}
    assert shares == {a.id: 0.25, "X": None}  # a share it cannot read: plain priority
