"""Emergencies, a CAP 1.2 alert to the screen: a feed on 127.0.0.1 → ``eboard sync`` (its
``[cap]`` job) → overlay in SQLite → ``PlayerWindow``; then a Cancel takes it away.

The documents are written here from the OASIS CAP 1.2 specification: status Actual,
msgType Alert, scope Public, an English and a Vietnamese ``info`` (the vi-VN one must
win), severity Extreme, urgency Immediate, an area naming the board's commune, and a
``capDoRuiRo`` parameter giving disaster risk level 4 (red).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.test_emergency_e2e import (
    NORMAL_BG,
    NORMAL_TOML,
    VN,
    Chain,
    chain,
    open_window,
    player_status,
    red_share,
    share_of,
    wait_for,
)

__all__ = ["chain"]  # the fixture, imported for pytest
NS = "urn:oasis:names:tc:emergency:cap:1.2"
SENDER = "kttv.laichau@example.vn"
IDENTIFIER = "LCI-2026-E2E-0001"
HEADLINE_VI = "CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"


def cap_time(dt: datetime) -> str:
    return dt.astimezone(VN).replace(microsecond=0).isoformat()


def alert_xml(sent: datetime) -> str:
    expires = cap_time(sent + timedelta(hours=6))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{NS}">
  <identifier>{IDENTIFIER}</identifier>
  <sender>{SENDER}</sender>
  <sent>{cap_time(sent)}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>en-US</language>
    <category>Met</category>
    <event>Flash flood</event>
    <urgency>Immediate</urgency>
    <severity>Extreme</severity>
    <certainty>Observed</certainty>
    <headline>FLASH FLOOD WARNING</headline>
    <description>Heavy rain; flash floods and landslides along the Nam Ma stream.</description>
    <expires>{expires}</expires>
    <area><areaDesc>Pa Ve Su commune, Muong Te district, Lai Chau</areaDesc></area>
  </info>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Lũ quét, sạt lở đất</event>
    <urgency>Immediate</urgency>
    <severity>Extreme</severity>
    <certainty>Observed</certainty>
    <senderName>Đài KTTV tỉnh Lai Châu</senderName>
    <headline>{HEADLINE_VI}</headline>
    <description>Mưa lớn gây nguy cơ lũ quét, sạt lở đất tại các bản ven suối Nậm Ma.</description>
    <instruction>Di chuyển ngay người và tài sản khỏi khu vực ven suối.</instruction>
    <expires>{expires}</expires>
    <parameter><valueName>capDoRuiRo</valueName><value>Cấp 4</value></parameter>
    <area><areaDesc>Xã Pa Vệ Sủ, huyện Mường Tè, tỉnh Lai Châu</areaDesc></area>
  </info>
</alert>
"""


def cancel_xml(sent: datetime, original_sent: datetime) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{NS}">
  <identifier>{IDENTIFIER}-C</identifier>
  <sender>{SENDER}</sender>
  <sent>{cap_time(sent)}</sent>
  <status>Actual</status>
  <msgType>Cancel</msgType>
  <scope>Public</scope>
  <references>{SENDER},{IDENTIFIER},{cap_time(original_sent)}</references>
</alert>
"""


class FeedServer:
    """Serves ``docs[path]`` on 127.0.0.1; a test swaps documents between polls."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}
        docs = self.docs

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                body = docs.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/cap+xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def test_cap_alert_reaches_the_screen_and_a_cancel_takes_it_away(
    chain: Chain, feed: FeedServer, qtbot: Any
) -> None:
    sent = datetime.now(VN) - timedelta(minutes=1)
    feed.docs["/cap/laichau.xml"] = alert_xml(sent)
    cfg = chain.config(extra=f"""
[cap]
feed_url = "{feed.url('/cap/laichau.xml')}"
poll_interval = 10
area_names = ["Pa Vệ Sủ"]
geocodes = ["VN-LC-MUONGTE-PAVESU"]
""")
    chain.publish(NORMAL_TOML)
    chain.start_sync(cfg)
    window = open_window(cfg, qtbot)
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=30000)
    qtbot.waitUntil(lambda: red_share(window) > 0.6, timeout=5000)  # Cấp 4: red
    assert window.current.priority == "emergency"
    assert window.ticker.text == f"CẢNH BÁO: {HEADLINE_VI}"  # the vi-VN info won
    assert wait_for(lambda: (player_status(cfg).get("emergency") or {}).get("headline")
                    == HEADLINE_VI, 10)
    em = player_status(cfg)["emergency"]
    assert em["risk_level"] == 4 and em["since"]

    # The Cancel naming it (sender, identifier, sent) takes it off at the next CAP poll,
    # and the province's normal rotation comes back.
    feed.docs["/cap/laichau.xml"] = cancel_xml(datetime.now(VN), sent)
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=40000)
    assert window.current.playlist.id == "thong-bao"
    assert red_share(window) < 0.02
    assert share_of(window.grab().toImage(), NORMAL_BG) > 0.3
    assert wait_for(lambda: player_status(cfg).get("emergency") is None, 10)
    window.close()


def test_an_advance_warning_is_on_screen_at_once_with_its_onset(
    tmp_path: Any, qtbot: Any
) -> None:
    """Extreme/Expected, onset in 3 hours, no <effective>: on screen now (CAP 1.2:
    effective defaults to sent), the screen saying when the hazard is expected."""
    from content_sync.cap import poll_once
    from content_sync.db import store
    from player.window import PlayerWindow
    from tests.kit.cap import alert, info
    from tests.kit.player import make_config

    config = make_config(tmp_path)
    now = datetime.now(VN).replace(microsecond=0)
    onset = now + timedelta(hours=3)
    feed = tmp_path / "alert.xml"
    feed.write_bytes(alert(sent=now.isoformat(), infos=(info(
        urgency="Expected", effective=None, onset=onset.isoformat(),
        expires=(now + timedelta(hours=12)).isoformat()),)))
    config = config.model_copy(update={"cap": config.cap.model_copy(update={
        "feed_url": feed.as_uri(), "area_names": ["Xã Pa Vệ Sủ", "Tỉnh Lai Châu"]})})
    conn = store.connect(config.db_path)
    try:
        assert poll_once(config, conn).shown
    finally:
        conn.close()
    window = PlayerWindow(config)
    qtbot.addWidget(window)
    window.show()
    window.check_now()
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=10000)
    expected = f"Dự kiến từ {onset.astimezone(config.tz):%H:%M %d/%m/%Y}"
    assert expected in window.current.item.body.splitlines()
    window.close()
