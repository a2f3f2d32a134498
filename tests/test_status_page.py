"""The operator status page, checked in headless Chromium: boards, online state, the item on
screen, the screenshot thumbnail (loaded), errors."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from content_sync.db import PlayerStatus, store
from content_sync.net.http import make_session
from content_sync.report import screenshot_upload
from content_sync.report.status_report import run_heartbeat_once
from player.records import Writer
from tests.kit.status import BOARD, BOARD_TOKEN, make_config, reference_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Rows(HTMLParser):
    """Collect each board row's attributes and text, and the thumbnails' attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-board"):
            self._current = {"state": a.get("data-state"), "text": "", "imgs": []}
            self.rows[str(a["data-board"])] = self._current
        elif tag == "img" and self._current is not None:
            self._current["imgs"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["text"] += data


def dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM
    r = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup installs it)")
def test_status_page_in_headless_chromium(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url, screenshot_width=200)
        w = Writer(config.db_path)
        w.status(PlayerStatus.read({
            "state": "normal", "current": {"playlist_id": "thong-bao", "item_id": "tb-1",
                                           "started_at": "2026-11-24T01:00:00+00:00"},
            "screen": {"width": 768, "height": 384, "x": 0, "y": 0, "blanked": False}}))
        w.close()
        conn = store.connect(config.db_path)
        session = make_session(config)
        assert run_heartbeat_once(config, conn, session).ok
        buf = io.BytesIO()
        Image.new("RGB", (200, 100), (20, 90, 200)).save(buf, "JPEG")
        screenshot_upload.screenshot_path(config.cache_dir).write_bytes(buf.getvalue())
        assert screenshot_upload.upload_if_new(config, conn, session).uploaded
        assert not screenshot_upload.upload_if_new(config, conn, session).uploaded  # once
        conn.close()
        # A second board that went quiet two hours ago, its last words an error.
        srv.db.store_heartbeat("laichau.muongte.pavesu-01", {
            "name": "UBND xã Pa Vệ Sử", "heartbeat_interval_s": 60,
            "sync": {"state": "offline", "reason": "cannot reach the source"},
            "player": {"item_id": "anh-1"}})
        old = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds")
        srv.db.execute("UPDATE boards SET last_seen=? WHERE board=?",
                       (old, "laichau.muongte.pavesu-01"))

        html = dump_dom(f"{srv.url}status", tmp_path / "chromium-profile")
        page = Rows()
        page.feed(html)
        assert set(page.rows) == {BOARD, "laichau.muongte.pavesu-01"}
        ours, quiet = page.rows[BOARD], page.rows["laichau.muongte.pavesu-01"]
        assert ours["state"] == "online" and "tb-1" in ours["text"]
        assert "Bảng tin xã thử" in ours["text"] and "on" in ours["text"]
        (thumb,) = ours["imgs"]
        assert thumb.get("data-loaded") == "1"  # Chromium fetched and decoded the JPEG
        assert quiet["state"] == "offline" and "2.0 h ago" in quiet["text"]
        assert "sync offline: cannot reach the source" in quiet["text"]
        assert "Pa Vệ Sử" in quiet["text"] and not quiet["imgs"]
        assert html.index("laichau.muongte") < html.index(BOARD)  # offline boards first
        assert "1 of 2 boards online" in html

        # The screenshot endpoint takes JPEG only, within its size limit.
        auth = {"Authorization": f"Bearer {BOARD_TOKEN}"}
        url = f"{srv.url}boards/{BOARD}/screenshot"
        assert requests.put(url, data=b"GIF89a...", headers=auth, timeout=5).status_code == 415
        big = b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024)
        assert requests.put(url, data=big, headers=auth, timeout=5).status_code == 413
        assert requests.put(url, data=buf.getvalue(), timeout=5).status_code == 401
