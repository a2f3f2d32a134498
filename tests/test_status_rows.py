"""The typed rows of the status table and the typed heartbeat: the JSON keeps the shape the
previous release wrote and sent (eboard/1 compatibility), and what the previous release
wrote (fields missing, extra or ill-typed) still reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from content_sync.db import HeartbeatDelivery, PlayerStatus, SyncStatus, rows, store
from content_sync.protocol import Heartbeat
from content_sync.report.status_report import build_status
from player.records import Writer
from tests.kit.status import add_plays, make_config

# The keys of a heartbeat sent by the previous release (content_sync/report/status_report.py
# before the typed document), with a player showing an emergency and holding a clip back, a
# refusal and a command result: None is a value, {...} an object, [{...}] a list of them.
KEYS_SENT: dict[str, Any] = {
    "board": None, "boot_time": None, "cpu_temperature_c": None, "format": None,
    "heartbeat_interval_s": None, "load": None, "local_time": None, "log_level": None,
    "modem": None, "monotonic_s": None, "name": None, "sent_at": None,
    "software_version": None, "timezone": None, "uptime_s": None, "utc_offset_s": None,
    "cache": {"percent": None, "quota_mb": None, "used_mb": None},
    "clock": {"skew_to_source_s": None, "synchronised": None, "warning": None},
    "command_results": [{"command": None, "detail": None, "finished_at": None, "id": None,
                         "ok": None, "received_at": None, "state": None}],
    "disk": {"free_mb": None, "total_mb": None},
    "display": {"actual": None, "geometry": None, "rotation": None},
    "manifest": {"active_version": None, "offered_version": None, "pending_version": None},
    "memory": {"available_mb": None, "free_mb": None, "total_mb": None},
    "network": {"hostname": None, "interface": None, "kind": None, "operstate": None},
    "outbox": {"folded_counts": None, "last_error": None, "oldest": None, "records": None,
               "rejected": None},
    "player": {"blanked": None, "clips_held": [{"deaths": None, "media": None, "until": None}],
               "clock_ok": None, "clock_reason": None,
               "emergency": {"alarm": None, "headline": None, "page": None,
                             "playlist_id": None, "risk_level": None, "since": None},
               "error": None, "geometry": None, "item_id": None, "item_since": None,
               "item_type": None, "playlist_id": None, "priority": None, "running": None,
               "state": None, "updated_at": None},
    "screen": {"forced_off": None, "state": None},
    "screenshot": {"interval_s": None, "uploaded_at": None},
    "sync": {"errors": None, "interim_version": None, "last_attempt": None,
             "last_error": None, "last_error_at": None, "last_success": None, "reason": None,
             "recent_refusals": [{"at": None, "reason": None, "subject": None}],
             "source": None, "state": None, "updated_at": None},
}

# What player/status.py builds (every key it has).
PLAYER_ROW: dict[str, Any] = {
    "state": "emergency",
    "current": {"playlist_id": "bao-lu", "item_id": "tb-1", "type": "text",
                "priority": "emergency", "started_at": "2026-11-24T01:00:00.000+00:00"},
    "emergency": {"playlist_id": "bao-lu", "since": "2026-11-24T01:00:00+00:00",
                  "headline": "Bão số 3", "risk_level": 3, "page": "1/2", "alarm": "off"},
    "manifest_version": 3, "generation": 7,
    "screen": {"width": 768, "height": 384, "x": 0, "y": 0, "rotation": 0, "blanked": False,
               "dpms_off": False, "forced_off": False},
    "frames": {"p50_ms": 16.7, "p99_ms": 33.1, "max_ms": 40.0, "frames": 120.0},
    "clock": {"ok": True, "reason": "", "jumps": 0, "timezone": "Asia/Ho_Chi_Minh"},
    "plays_recorded": 12, "plays_waiting_for_disk": 0, "database_writable": True,
    "clips_held": [{"media": "a" * 64, "deaths": 3, "until": "2026-11-24T02:00:00+00:00"}],
    "pid": 4242, "started_at": "2026-11-24T00:59:00.000+00:00",
}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [shape(value[0])]
    return None


def test_the_heartbeat_keeps_the_keys_the_previous_release_sent(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    add_plays(config.db_path, 2)
    w = Writer(config.db_path)
    w.status(PlayerStatus.read(PLAYER_ROW))
    w.close()
    conn = store.connect(config.db_path)
    with store.transaction(conn):
        rows.write(conn, SyncStatus(state="up_to_date", reason="version 3", clock_skew_s=1.5))
    store.record_refusal(conn, "manifest of board x", "no valid signature")
    result = {"id": "c-1", "command": "screenshot", "state": "done", "ok": True, "detail": "",
              "received_at": "2026-11-24T01:00:00+00:00",
              "finished_at": "2026-11-24T01:00:01+00:00"}
    body = build_status(config, conn, [result])
    conn.close()
    assert shape(body) == KEYS_SENT
    assert body["player"]["emergency"] == PLAYER_ROW["emergency"]
    assert body["command_results"] == [result]
    # What the server reads back is what was sent, field for field.
    assert Heartbeat.read(json.loads(json.dumps(body))).to_json() == body


def test_the_player_row_is_written_as_the_player_gave_it(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    w = Writer(config.db_path)
    w.status(PlayerStatus.read(PLAYER_ROW))
    w.close()
    conn = store.connect(config.db_path)
    (data,) = conn.execute("SELECT data FROM status WHERE component='player'").fetchone()
    assert json.loads(data) == PLAYER_ROW
    row = rows.read(conn, PlayerStatus)
    conn.close()
    assert row is not None and row.screen is not None and row.screen.geometry == "768x384+0+0"
    assert row.emergency is not None and row.emergency.risk_level == 3
    assert row.updated_at  # the table's column, not part of the JSON


def test_rows_of_another_release_read(tmp_path: Path) -> None:
    """Missing fields take their default, unknown ones are ignored, an ill-typed value is
    dropped (a bad item of a list alone), and the rest of the row still reads."""
    conn = store.connect(tmp_path / "eboard.db")
    with store.transaction(conn):
        store.set_status(conn, "sync", {"state": "offline", "reason": "no route",
                                        "errors": ["a", 5, "b"], "clock_skew_s": "far",
                                        "from_the_future": {"x": 1}})
        store.set_status(conn, "player", {"state": "normal", "screen": "garbage",
                                          "current": {"item_id": 7, "playlist_id": "p"},
                                          "clips_held": [{"media": "m", "deaths": 2}, 3],
                                          "running": "yes"})
    sync = rows.read(conn, SyncStatus)
    player = rows.read(conn, PlayerStatus)
    assert sync is not None and player is not None
    assert (sync.state, sync.reason, sync.errors) == ("offline", "no route", ["a", "b"])
    assert sync.clock_skew_s is None and sync.last_success is None and sync.updated_at
    assert player.state == "normal" and player.screen is None
    assert player.current is not None and player.current.item_id is None
    assert player.current.playlist_id == "p"
    assert [(c.media, c.deaths, c.until) for c in player.clips_held or []] == [("m", 2, None)]
    assert Heartbeat.read({"player": 5, "sync": {"state": 1}, "name": "x"}).name == "x"
    conn.close()


def test_the_heartbeat_delivery_of_the_previous_release(tmp_path: Path) -> None:
    """The previous release kept only meta heartbeat.last_error ('' once delivered)."""
    conn = store.connect(tmp_path / "eboard.db")
    assert rows.heartbeat_delivery(conn) is None
    with store.transaction(conn):
        store.set_meta(conn, "heartbeat.last_error", "HTTP 401")
    assert rows.heartbeat_delivery(conn) == HeartbeatDelivery(error="HTTP 401")
    with store.transaction(conn):
        store.set_meta(conn, "heartbeat.last_error", "")
    assert rows.heartbeat_delivery(conn) == HeartbeatDelivery()
    conn.close()
