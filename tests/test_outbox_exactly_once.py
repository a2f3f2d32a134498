"""Proof of play reaches the server exactly once: server down, process restarts, kill -9
mid-upload, server back. Real reference server on 127.0.0.1, real SQLite, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report import outbox
from tests.kit.status import (
    BOARD,
    add_plays,
    free_port,
    make_config,
    reference_server,
    slow_after,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]

# The uploading process: what the sync daemon's plays job does, in a process we can kill.
UPLOADER = """
import json, sys
from content_sync.report import outbox
from content_sync.db import store
from content_sync.net.http import make_session
from kiosk_config import load_config
config = load_config(__import__("pathlib").Path(sys.argv[1]))
conn = store.connect(config.db_path)
r = outbox.upload_plays_once(config, conn, make_session(config, retries=0))
print(json.dumps({"accepted": r.accepted, "remaining": r.remaining, "error": r.error}))
"""


def uploader(config_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", UPLOADER, str(config_path)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def server_ids(data: Path) -> list[str]:
    from content_sync.server import Store

    db = Store(data / ".server" / "server.db")
    try:
        return [str(r[0]) for r in db.execute("SELECT id FROM plays WHERE board=?", (BOARD,))]
    finally:
        db.close()


def test_every_record_arrives_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    config, config_path = make_config(tmp_path / "box", f"http://127.0.0.1:{port}/")
    created = add_plays(config.db_path, 1200)

    # 1. Server down: the upload fails with a reason and every record stays.
    p = uploader(config_path)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert '"accepted": 0' in out and "1200" in out and "error" in out
    conn = store.connect(config.db_path)
    assert store.outbox_size(conn) == 1200

    # 2. Server up but slow to answer; the uploading process is killed (power cut) after the
    #    server stored a batch and before the box read the answer.
    data = tmp_path / "source"
    with reference_server(data, port=port, middleware=slow_after("/plays", 30)) as srv:
        p = uploader(config_path)
        assert wait_until(lambda: len(server_ids(data)) >= 500, timeout=30)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        srv.stop()
    inflight = conn.execute("SELECT count(*) FROM outbox_inflight").fetchone()[0]
    assert inflight == 500  # the batch the server has, unacknowledged on the box
    assert store.outbox_size(conn) == 1200
    assert len(server_ids(data)) == 500

    # 3. The player goes on playing while the box is cut off.
    created += add_plays(config.db_path, 300, start=datetime(2026, 11, 21, 2, 0, tzinfo=UTC))

    # 4. Server restarted (same data), uploader restarted: everything arrives.
    with reference_server(data, port=port):
        p = uploader(config_path)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert '"remaining": 0' in out and '"error": null' in out

    ids = server_ids(data)
    assert len(ids) == len(set(ids)) == 1500            # zero duplicated
    assert set(ids) == set(created)                      # zero lost
    assert store.outbox_size(conn) == 0
    assert conn.execute("SELECT count(*) FROM outbox_inflight").fetchone()[0] == 0
    # Every record left the outbox into the box's own history, exactly once.
    assert conn.execute("SELECT sum(plays) FROM play_history").fetchone()[0] == 1500
    conn.close()


def test_folding_over_the_bound_keeps_counts_and_uploads_them(tmp_path: Path) -> None:
    port = free_port()
    config, _ = make_config(tmp_path / "box", f"http://127.0.0.1:{port}/",
                            outbox_max_records=100)
    add_plays(config.db_path, 250)  # 250 plays of 3 items over ~1.4 h on one day
    conn = store.connect(config.db_path)
    seconds = conn.execute("SELECT sum(duration_s) FROM plays").fetchone()[0]

    folded = outbox.fold_if_needed(conn, 100, config.tz)
    assert folded == 250 - 90  # down to 90 % of the bound, oldest first
    assert store.outbox_size(conn) == 90
    counts = [dict(r) for r in conn.execute("SELECT * FROM play_counts")]
    assert sum(c["plays"] for c in counts) == folded
    assert {c["item_id"] for c in counts} == {"anh-1", "tb-1", "clip-1"}
    assert {c["day"] for c in counts} == {"2026-11-20"}  # local day, Asia/Ho_Chi_Minh
    assert outbox.fold_if_needed(conn, 100, config.tz) == 0  # under the bound: nothing

    with reference_server(tmp_path / "source", port=port) as srv:
        result = outbox.upload_plays_once(config, conn, make_session(config))
        assert result.ok and result.accepted == 90 and result.counts_accepted == len(counts)
        totals = srv.db.play_totals(BOARD)
    assert totals["records"] + totals["folded_plays"] == 250   # nothing dropped
    assert abs(totals["seconds"] + totals["folded_seconds"] - seconds) < 1e-6
    assert store.outbox_size(conn) == 0 and outbox.counts_waiting(conn) == 0
    conn.close()


def test_records_in_flight_are_never_folded(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/", outbox_max_records=100)
    ids = add_plays(config.db_path, 150)
    conn = store.connect(config.db_path)
    with store.transaction(conn):  # the oldest 20 were sent; the answer never came
        conn.executemany("INSERT INTO outbox_inflight(id, sent_at) VALUES (?, 'x')",
                         [(i,) for i in ids[:20]])
    outbox.fold_if_needed(conn, 100, config.tz)
    left = {r[0] for r in conn.execute("SELECT id FROM plays")}
    assert set(ids[:20]) <= left
    conn.close()


def test_server_deduplicates_and_refuses_malformed_records(tmp_path: Path) -> None:
    import requests

    from tests.kit.status import BOARD_TOKEN, make_play

    with reference_server(tmp_path / "source") as srv:
        url = f"{srv.url}boards/{BOARD}/plays"
        auth = {"Authorization": f"Bearer {BOARD_TOKEN}"}
        good = make_play("anh-1", "p", datetime(2026, 11, 20, tzinfo=UTC), 5)
        bad = {**make_play("anh-1", "p", datetime(2026, 11, 20, tzinfo=UTC), 5), "id": "nope"}
        typed = {**make_play("x", "p", datetime(2026, 11, 20, tzinfo=UTC), 5),
                 "duration_s": "long"}
        for _ in range(3):
            r = requests.post(url, json={"records": [good, bad, typed]}, headers=auth, timeout=5)
            assert r.status_code == 200
            assert r.json()["accepted"] == [good["id"]]
            reasons = {x["id"]: x["reason"] for x in r.json()["rejected"]}
            assert reasons == {"nope": "id must be a UUID",
                               typed["id"]: "duration_s must be a number or null"}
        assert srv.db.play_totals(BOARD)["records"] == 1
        r = requests.post(url, json={"records": [good]}, timeout=5)
        assert r.status_code == 401


# A stand-in for the player's writer: one record per transaction with store.add_play (what
# player.records.Writer does in its thread), printing each id once it is committed.
PLAYER = """
import sys, time, uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from content_sync.db import store
from tests.kit.status import make_play
conn = store.connect(Path(sys.argv[1]))
i = 0
while True:
    rec = make_play("anh-1", "thong-bao", datetime.now(UTC), 1.0)
    rec["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sys.argv[2]}-{i}"))
    store.add_play(conn, rec)
    print(rec["id"], flush=True)
    i += 1
    time.sleep(0.003)
"""

UPLOAD_LOOP = """
import sys, time
from pathlib import Path
from content_sync.report import outbox
from content_sync.db import store
from content_sync.net.http import make_session
from kiosk_config import load_config
config = load_config(Path(sys.argv[1]))
conn = store.connect(config.db_path)
session = make_session(config, retries=0)
while True:
    outbox.upload_plays_once(config, conn, session)
    time.sleep(0.02)
"""


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(p: subprocess.Popen[str]) -> list[str]:
    os.kill(p.pid, signal.SIGKILL)
    out, _ = p.communicate(timeout=10)
    return out.split()


def test_player_and_uploader_cut_off_together_lose_and_duplicate_nothing(
        tmp_path: Path) -> None:
    port = free_port()
    config, config_path = make_config(tmp_path / "box", f"http://127.0.0.1:{port}/")
    store.connect(config.db_path).close()
    data = tmp_path / "source"
    committed: list[str] = []
    with reference_server(data, port=port) as srv:
        player = _start(PLAYER, str(config.db_path), "run1")
        upl = _start(UPLOAD_LOOP, str(config_path))
        assert wait_until(lambda: len(server_ids(data)) >= 50, timeout=20)
        srv.stop()                       # the source goes away while both keep working
        time.sleep(0.5)
        committed += _kill(player)       # power cut: both processes die at once
        _kill(upl)
    with reference_server(data, port=port):  # power back, source back
        player = _start(PLAYER, str(config.db_path), "run2")
        upl = _start(UPLOAD_LOOP, str(config_path))
        assert wait_until(lambda: len(server_ids(data)) >= len(committed) + 50, timeout=20)
        committed += _kill(player)
        _kill(upl)                       # cut again, possibly mid-batch
        p = uploader(config_path)        # the next start of the daemon sends the rest
        out, err = p.communicate(timeout=60)
        assert '"remaining": 0' in out, out + err

    ids = server_ids(data)
    assert len(ids) == len(set(ids))                     # zero duplicated
    assert set(committed) <= set(ids)                    # zero lost
    assert len(set(ids) - set(committed)) <= 2           # at most the one unprinted per run
    print(f"{len(ids)} records on the server, {len(committed)} seen committed")
    conn = store.connect(config.db_path)
    assert store.outbox_size(conn) == 0
    assert conn.execute("SELECT sum(plays) FROM play_history").fetchone()[0] == len(ids)
    conn.close()


def test_history_older_than_its_retention_is_forgotten_and_recent_days_kept(
        tmp_path: Path) -> None:
    """Months unattended must not grow the database without bound: each day adds a
    history row per item played, and refused records pile up for a human."""
    port = free_port()
    config, _ = make_config(tmp_path / "box", f"http://127.0.0.1:{port}/")
    now = datetime.now(UTC)
    add_plays(config.db_path, 6, start=now - timedelta(days=outbox.HISTORY_DAYS + 30))
    add_plays(config.db_path, 6, start=now - timedelta(days=2))
    conn = store.connect(config.db_path)
    with reference_server(tmp_path / "source", port=port):
        session = make_session(config)
        assert outbox.upload_plays_once(config, conn, session).accepted == 12
        days = sorted({r[0] for r in conn.execute("SELECT day FROM play_history")})
        assert len(days) == 2  # the old day arrived in this run; it is forgotten by the next
        assert outbox.upload_plays_once(config, conn, session).ok
    left = {r[0] for r in conn.execute("SELECT day FROM play_history")}
    assert left == {days[1]}
    assert conn.execute("SELECT sum(plays) FROM play_history").fetchone()[0] == 6
    # Refused records: the newest REJECTED_KEEP stay.
    with store.transaction(conn):
        conn.executemany("INSERT INTO plays_rejected(id, record, reason, at) VALUES (?,?,?,?)",
                         [(f"r{i:05d}", "{}", "id must be a UUID",
                           f"2026-11-20T00:00:00.{i:06d}") for i in range(1005)])
    assert outbox.prune_history(conn, now.date(), keep_rejected=1000) == 5
    kept = [r[0] for r in conn.execute("SELECT id FROM plays_rejected ORDER BY id")]
    assert kept[0] == "r00005" and len(kept) == 1000
    assert outbox.prune_history(conn, now.date()) == 0  # nothing more: no write
    conn.close()
