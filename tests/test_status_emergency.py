"""The emergency on screen, named where people look — ``eboard status`` on the box
and the reference server's ``/status`` page — from the player's real status row and a
real heartbeat; hostile headlines stay text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from content_sync.db import PlayerStatus, store
from content_sync.net.http import make_session
from content_sync.report.status_report import run_heartbeat_once
from content_sync.server import status_page
from player import look
from player.records import Writer
from tests.kit.status import BOARD, make_config, reference_server

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = "CẢNH BÁO LŨ QUÉT"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> SẠT LỞ ĐẤT'


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds")


def emergency_status(since: datetime, headline: str = HEADLINE,
                     risk_level: Any = 4) -> dict[str, Any]:
    """What player/status.py builds while an emergency item is on screen."""
    return {"state": "emergency",
            "current": {"playlist_id": "khan-cap", "item_id": "canh-bao-1", "type": "text",
                        "priority": "emergency", "started_at": iso(since)},
            "emergency": {"playlist_id": "khan-cap", "since": iso(since),
                          "headline": headline, "risk_level": risk_level, "page": "1/1"},
            "manifest_version": 7,
            "screen": {"width": 768, "height": 384, "x": 0, "y": 0, "rotation": 0,
                       "blanked": False, "dpms_off": False, "forced_off": False},
            "clock": {"ok": True, "reason": "", "jumps": 0, "timezone": "Asia/Ho_Chi_Minh"}}


def normal_status() -> dict[str, Any]:
    s = emergency_status(datetime.now(UTC))
    s.update(state="normal", emergency=None,
             current={"playlist_id": "thong-bao", "item_id": "tb-1", "type": "image",
                      "priority": "normal", "started_at": iso(datetime.now(UTC))})
    return s


def write_player_status(db: Path, data: dict[str, Any]) -> None:
    w = Writer(db)  # the player's own writer thread (store.set_status(conn, "player", ...))
    w.status(PlayerStatus.read(data))
    w.close()


def eboard_status(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eboard", "status", "--config", str(config)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_eboard_status_names_the_emergency_on_screen(tmp_path: Path) -> None:
    config, path = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    store.connect(config.db_path).close()  # the database the sync daemon makes
    r = eboard_status(path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^emergency: +unknown \(the player has not written", r.stdout, re.M)

    since = datetime.now(UTC) - timedelta(minutes=3, seconds=5)
    write_player_status(config.db_path, emergency_status(since))
    r = eboard_status(path)
    assert r.returncode == 0, r.stderr
    local = since.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S")
    line = (f'EMERGENCY on screen since {local} (3 min ago): "{HEADLINE}" '
            "(playlist khan-cap, risk level 4)")
    lines = r.stdout.splitlines()
    assert line in lines, r.stdout
    assert lines.index(line) == 1  # right under the board's name, before everything else
    assert "emergency:" not in r.stdout  # no second, quiet line

    # With emergency.alarm = true the player says what the alarm sound is doing.
    write_player_status(config.db_path, {**emergency_status(since), "emergency": {
        **emergency_status(since)["emergency"], "alarm": "error: cannot open ALSA hw:1,0"}})
    r = eboard_status(path)
    assert r.stdout.splitlines()[1].endswith(
        "(playlist khan-cap, risk level 4); alarm sound: error: cannot open ALSA hw:1,0")
    write_player_status(config.db_path, emergency_status(since))

    # The player went quiet 10 minutes ago: the emergency is not claimed to be on screen.
    conn = store.connect(config.db_path)
    old = iso(datetime.now(UTC) - timedelta(minutes=10))
    conn.execute("UPDATE status SET updated_at=? WHERE component='player'", (old,))
    conn.close()
    r = eboard_status(path)
    assert "EMERGENCY on screen" not in r.stdout, r.stdout
    assert "EMERGENCY last reported on screen since" in r.stdout
    assert "NOT CONFIRMED NOW: the player's status is stale (10 min old)" in r.stdout
    assert "systemctl status eboard-player" in r.stdout

    # Escape sequences in a headline do not reach the technician's terminal.
    write_player_status(config.db_path,
                        emergency_status(since, "LŨ\x1b]0;owned\x07\x1b[2J\nQUÉT", None))
    r = eboard_status(path)
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert '"LŨ ]0;owned  [2J QUÉT" (playlist khan-cap, no risk level)' in r.stdout

    write_player_status(config.db_path, normal_status())
    r = eboard_status(path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^emergency: +none$", r.stdout, re.M), r.stdout
    assert "EMERGENCY" not in r.stdout


class Page(HTMLParser):
    """Board rows (attributes and text) and the emergency count line of /status."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.count: dict[str, Any] = {}
        self.badges: list[str] = []
        self.scripts = 0
        self._row: dict[str, Any] | None = None
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" or any(k.startswith("on") and k != "onload" and k != "onerror"
                                  for k in a):
            self.scripts += 1
        if tag == "tr" and a.get("data-board"):
            self._row = {**a, "text": ""}
            self.rows[str(a["data-board"])] = self._row
        elif tag == "p" and a.get("id") == "emergencies":
            self.count = {**a, "text": ""}
            self._in_count = True
        elif tag == "span" and "badge" in (a.get("class") or "").split():
            self.badges.append(str(a.get("class")))
        elif tag == "img" and a.get("src") == "x":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "p":
            self._in_count = False

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data
        if self._in_count:
            self.count["text"] += data


def test_status_page_names_each_boards_emergency(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        since = datetime.now(UTC) - timedelta(minutes=3, seconds=5)
        write_player_status(config.db_path, emergency_status(since, f"{HEADLINE} {HOSTILE}"))
        conn = store.connect(config.db_path)
        result = run_heartbeat_once(config, conn, make_session(config))  # a real POST
        assert result.ok, result.error
        conn.close()
        # A quiet board and one offline for two hours whose last word was an emergency
        # with a risk level that tries to smuggle CSS into the page.
        srv.db.store_heartbeat("laichau.muongte.pavesu-01", {
            "name": "UBND xã Pa Vệ Sử", "heartbeat_interval_s": 60,
            "player": {"item_id": "anh-1", "running": True, "emergency": None}})
        srv.db.store_heartbeat("laichau.sinho.ta-ngao-01", {
            "name": "UBND xã Tả Ngảo", "heartbeat_interval_s": 60,
            "player": {"item_id": "bao-1", "running": True, "emergency": {
                "playlist_id": "bao-so-9", "since": "2026-11-24T07:00:00+00:00",
                "headline": "BÃO SỐ 9", "risk_level": "4} body{display:none"}}})
        old = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds")
        srv.db.execute("UPDATE boards SET last_seen=? WHERE board=?",
                       (old, "laichau.sinho.ta-ngao-01"))

        r = requests.get(f"{srv.url}status", timeout=10)
        assert r.status_code == 200
        html = r.text

    page = Page()
    page.feed(html)
    assert page.scripts == 0, "a board's headline became markup"
    assert "&lt;script&gt;alert(" in html and "<script>" not in html
    assert "display:none" not in html.split("</style>")[0]

    ours = page.rows[BOARD]
    assert ours["data-emergency"] == "4" and "emergency" in ours["class"].split()
    assert "risk-row-4" in ours["class"].split()
    assert HEADLINE in ours["text"] and '<script>alert("x")</script>' in ours["text"]
    assert "EMERGENCY · risk level 4" in ours["text"]
    assert f"since {iso(since)} (3 min ago)" in ours["text"]
    assert "playlist khan-cap" in ours["text"] and "last reported" not in ours["text"]

    quiet = page.rows["laichau.muongte.pavesu-01"]
    assert "data-emergency" not in quiet and "EMERGENCY" not in quiet["text"]

    gone = page.rows["laichau.sinho.ta-ngao-01"]
    assert gone["data-state"] == "offline" and gone["data-emergency"] == "0"
    assert "BÃO SỐ 9" in gone["text"] and "no risk level" in gone["text"]
    assert "last reported (board offline)" in gone["text"]

    assert "badge risk-4" in page.badges and "badge risk-0" in page.badges
    assert page.count["data-count"] == "1" and "alert" in page.count["class"]
    assert " ".join(page.count["text"].split()) == (
        "EMERGENCY: 1 board showing an emergency; 1 more last reported one but is offline "
        "or its player is not running.")
    assert "1 showing an EMERGENCY" in html.split("</title>")[0]
    # Offline first, then the board showing an emergency, then the quiet one.
    assert (html.index('data-board="laichau.sinho') < html.index(f'data-board="{BOARD}"')
            < html.index('data-board="laichau.muongte'))


def test_status_page_without_emergency_says_so_quietly(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        write_player_status(config.db_path, normal_status())
        conn = store.connect(config.db_path)
        assert run_heartbeat_once(config, conn, make_session(config)).ok
        conn.close()
        html = requests.get(f"{srv.url}status", timeout=10).text
    page = Page()
    page.feed(html)
    assert page.count["data-count"] == "0" and "alert" not in (page.count.get("class") or "")
    assert "No board reports an emergency." in page.count["text"]
    assert "data-emergency" not in page.rows[BOARD] and not page.badges


def test_page_colours_are_the_boards_colours() -> None:
    assert {k: v for k, v in status_page.RISK_COLOURS.items() if k} == look.RISK_COLOURS
    assert status_page.RISK_COLOURS[0] == look.EMERGENCY_DEFAULT
