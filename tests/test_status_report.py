"""The heartbeat body and ``eboard status``: every field, read from the real database and the
machine; what cannot be read is null, never invented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from content_sync.db import PlayerStatus, player_requests, store
from content_sync.net.http import make_session
from content_sync.report import sysinfo
from content_sync.report.status_report import build_status, run_heartbeat_once
from kiosk_config import load_config
from player.records import Writer
from tests.kit.status import BOARD, add_plays, make_config, reference_server

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "board", "software_version", "uptime_s", "boot_time", "local_time", "timezone",
    "clock", "manifest", "sync", "player", "screen", "display", "cache", "disk", "memory",
    "cpu_temperature_c", "load", "network", "modem", "outbox", "heartbeat_interval_s",
    "command_results",
}


def player_status(item: str = "anh-1", blanked: bool = False) -> dict[str, Any]:
    """What player/status.py builds."""
    return {"state": "blanked" if blanked else "normal",
            "current": {"playlist_id": "thong-bao", "item_id": item, "type": "image",
                        "priority": "normal", "started_at": "2026-11-24T01:00:00.000+00:00"},
            "emergency": None, "manifest_version": 3,
            "screen": {"width": 768, "height": 384, "x": 0, "y": 0, "rotation": 0,
                       "blanked": blanked, "dpms_off": False},
            "clock": {"ok": True, "reason": "", "jumps": 0, "timezone": "Asia/Ho_Chi_Minh"}}


def write_player_status(db: Path, data: dict[str, Any]) -> None:
    w = Writer(db)  # the player's own writer thread
    w.status(PlayerStatus.read(data))
    w.close()


def test_fresh_box_reports_every_field_and_nulls_for_the_unknown(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    conn = store.connect(config.db_path)
    s = build_status(config, conn)
    assert set(s) >= REQUIRED
    assert s["board"] == BOARD and s["timezone"] == "Asia/Ho_Chi_Minh"
    assert s["local_time"].endswith("+07:00")
    assert s["manifest"] == {"active_version": None, "pending_version": None,
                             "offered_version": None}
    assert s["player"]["running"] is None and s["player"]["item_id"] is None
    assert s["screen"]["state"] is None  # no word from the player: unknown, not "on"
    assert s["clock"]["skew_to_source_s"] is None
    assert s["outbox"]["records"] == 0
    assert s["uptime_s"] == sysinfo.uptime_s() or s["uptime_s"] > 0
    assert s["cpu_temperature_c"] is None or 0 < s["cpu_temperature_c"] < 150
    if not any((Path(p) / "mmcli").exists() for p in os.environ["PATH"].split(":")):
        assert s["modem"] is None
    assert s["disk"]["free_mb"] > 0 and s["memory"]["total_mb"] > 0
    json.dumps(s)  # all of it is JSON
    conn.close()


def test_player_state_screen_and_outbox(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    add_plays(config.db_path, 7)
    write_player_status(config.db_path, player_status("tb-1"))
    conn = store.connect(config.db_path)
    s = build_status(config, conn)
    assert s["player"]["running"] is True
    assert s["player"]["item_id"] == "tb-1" and s["player"]["playlist_id"] == "thong-bao"
    assert s["player"]["item_since"] == "2026-11-24T01:00:00.000+00:00"
    assert s["display"]["actual"] == "768x384+0+0"
    assert s["screen"]["state"] == "on"
    assert s["outbox"]["records"] == 7 and s["outbox"]["oldest"].startswith("2026-11-20")

    write_player_status(config.db_path, player_status(blanked=True))
    assert build_status(config, conn)["screen"]["state"] == "blanked_by_schedule"
    with store.transaction(conn):
        player_requests.add(conn, "c-off", "screen_off")
    assert build_status(config, conn)["screen"]["state"] == "off_by_command"

    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    conn.execute("UPDATE status SET updated_at=? WHERE component='player'", (old,))
    assert build_status(config, conn)["player"]["running"] is False
    conn.close()


def test_heartbeat_is_stored_by_the_server(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        conn = store.connect(config.db_path)
        result = run_heartbeat_once(config, conn, make_session(config))
        assert result.ok, result.error
        (board,) = srv.db.boards()
        assert board["board"] == BOARD and board["status"]["format"] == "eboard.status/1"
        conn.close()
    # Server gone: the failure is reported with the URL, nothing raised.
    conn = store.connect(config.db_path)
    result = run_heartbeat_once(config, conn, make_session(config, retries=0))
    assert not result.ok and f"boards/{BOARD}/status" in (result.error or "")
    assert store.get_meta(conn, "heartbeat.last_error")
    conn.close()


def eboard(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eboard", "status", "--config", str(config),
                           *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)


def test_eboard_status_text_and_json(tmp_path: Path) -> None:
    config, path = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    r = eboard(path)
    assert r.returncode == 1 and "no database at" in r.stdout
    add_plays(config.db_path, 3)
    write_player_status(config.db_path, player_status("clip-1"))
    r = eboard(path)
    assert r.returncode == 0, r.stderr
    assert "3 proof-of-play records waiting" in r.stdout
    assert "clip-1 of thong-bao" in r.stdout and "screen:" in r.stdout
    assert "disk free:" in r.stdout and "active manifest: none" in r.stdout
    r = eboard(path, "--json")
    data = json.loads(r.stdout)
    assert set(data) >= REQUIRED - {"command_results"}
    assert data["outbox"]["records"] == 3


def test_machine_facts_without_proc_as_under_the_hardened_unit(
        tmp_path: Path, monkeypatch: Any) -> None:
    """systemd ProcSubset=pid hides /proc/uptime, /proc/meminfo and /proc/net: the facts
    come from clocks and sysinfo(2) instead; what only /proc knows is null."""
    monkeypatch.setattr(sysinfo, "PROC", tmp_path / "no-proc")
    assert sysinfo.uptime_s() is not None and sysinfo.uptime_s() > 0  # type: ignore[operator]
    assert sysinfo.boot_time() is not None
    mem = sysinfo.memory()
    assert mem["total_mb"] and mem["free_mb"] and mem["available_mb"] is None
    assert sysinfo.default_interface() is None
    assert sysinfo.network()["interface"] in [*sysinfo.interfaces_up(), None]


def test_mobile_signal_from_modemmanager(tmp_path: Path, monkeypatch: Any) -> None:
    """mmcli's JSON (ModemManager 1.20 shape) becomes the heartbeat's modem fields; a stand-in
    mmcli on PATH, since test machines have no modem."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mmcli = bin_dir / "mmcli"
    mmcli.write_text(
        "#!/bin/sh\n"
        "case \"$*\" in\n"
        "  *-L*) echo '{\"modem-list\": [\"/org/freedesktop/ModemManager1/Modem/3\"]}' ;;\n"
        "  *'-m 3'*) echo '{\"modem\": {\"generic\": {\"state\": \"connected\","
        " \"access-technologies\": [\"lte\"], \"signal-quality\": {\"value\": \"67\","
        " \"recent\": \"yes\"}}, \"3gpp\": {\"operator-name\": \"Viettel\"}}}' ;;\n"
        "  *) exit 1 ;;\n"
        "esac\n")
    mmcli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert sysinfo.modem() == {"present": True, "state": "connected",
                               "access_technology": "lte", "operator": "Viettel",
                               "signal_percent": 67.0, "signal_recent": True}
    mmcli.write_text("#!/bin/sh\necho '{\"modem-list\": []}'\n")
    assert sysinfo.modem() is None  # ModemManager without a modem: nothing to say


def test_heartbeat_carries_past_refusals_to_the_province(tmp_path: Path) -> None:
    """A forged manifest refused and then overtaken by a good one leaves no current error,
    but the province still sees the refusal (GET /boards.json of the reference server)."""
    import requests

    from content_sync.board.engine import Engine, SyncState
    from tests.kit.sync import Publisher, make_keys

    key, pubkey = make_keys(tmp_path / "keys")
    stranger, _ = make_keys(tmp_path / "stranger")
    with reference_server(tmp_path / "source") as srv:
        config, path = make_config(tmp_path / "box", srv.url)
        path.write_text(path.read_text().replace(
            "[source]\n", f'[source]\ntrusted_keys = ["{pubkey}"]\n'), encoding="utf-8")
        config = load_config(path)
        pub = Publisher(srv.data, key, board=BOARD)
        conn = store.connect(config.db_path)
        engine = Engine(config, conn)
        pub.write(pub.manifest(1), key=stranger)
        assert engine.sync_once().state == SyncState.REFUSED
        pub.publish(2)
        assert engine.sync_once().ok
        assert run_heartbeat_once(config, conn, make_session(config)).ok
        (board,) = requests.get(f"{srv.url}boards.json", timeout=5).json()
        sync = board["status"]["sync"]
        assert sync["state"] == "up_to_date" and sync["errors"] == []
        (refusal,) = sync["recent_refusals"]
        assert "no valid signature by a trusted key" in refusal["reason"]
        assert refusal["subject"].startswith("manifest of board") and refusal["at"]
        # Bounded: only the newest ones travel, however many the box keeps.
        for i in range(15):
            store.record_refusal(conn, f"media {i:02d}", "hash mismatch")
        assert run_heartbeat_once(config, conn, make_session(config)).ok
        (board,) = requests.get(f"{srv.url}boards.json", timeout=5).json()
        subjects = [r["subject"] for r in board["status"]["sync"]["recent_refusals"]]
        assert subjects == [f"media {i:02d}" for i in range(14, 4, -1)]
        conn.close()
