"""`eboard status` shows every time in the board's local time, the zone named once: it
mixed UTC ("2026-11-24T01:00:00+00:00") with local times on one screen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from content_sync.db import PlayerStatus, SyncStatus, rows, store
from player.records import Writer
from tests.kit.status import add_plays, make_config

ROOT = Path(__file__).resolve().parents[1]
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?")


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds")


def local(t: datetime) -> str:
    return t.astimezone(HANOI).strftime("%Y-%m-%d %H:%M:%S")


def test_every_time_is_local_and_the_zone_is_named_once(tmp_path: Path) -> None:
    config, path = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    now = datetime.now(UTC).replace(microsecond=0)
    t = {name: now - timedelta(minutes=m) for name, m in
         [("success", 50), ("error", 20), ("since", 3), ("item", 1)]}
    until = now + timedelta(minutes=40)
    add_plays(config.db_path, 2)
    w = Writer(config.db_path)
    w.status(PlayerStatus.read({
        "state": "emergency",
        "current": {"playlist_id": "khan-cap", "item_id": "canh-bao-1", "type": "text",
                    "priority": "emergency", "started_at": iso(t["item"])},
        "emergency": {"playlist_id": "khan-cap", "since": iso(t["since"]),
                      "headline": "CẢNH BÁO LŨ QUÉT", "risk_level": 4, "page": "1/1"},
        "clips_held": [{"media": "a" * 64, "deaths": 3, "until": iso(until)}],
        "clock": {"ok": True, "reason": "", "jumps": 0, "timezone": "Asia/Ho_Chi_Minh"}}))
    w.close()
    conn = store.connect(config.db_path)
    with store.transaction(conn):
        rows.write(conn, SyncStatus(state="offline", reason="connection refused",
                                    last_success=iso(t["success"]),
                                    last_error="cannot reach the source",
                                    last_error_at=iso(t["error"])))
    store.record_refusal(conn, "manifest of board x", "no valid signature")
    conn.close()

    r = subprocess.run([sys.executable, "-m", "eboard", "status", "--config", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    stamps = [m.group(0) for m in STAMP.finditer(out)]
    assert len(stamps) >= 8, out
    # Every time is written the one local way: no UTC, no ISO 'T', no offset beside it.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in stamps), stamps
    assert "+00:00" not in out and "UTC" not in out
    for when in [*t.values(), until]:
        assert local(when) in out, (local(when), out)
    # The zone, named once.
    assert out.count("+07") == 1 and out.count("Asia/Ho_Chi_Minh") == 1, out
    assert "local time, +07 (Asia/Ho_Chi_Minh)" in out.splitlines()[0]
