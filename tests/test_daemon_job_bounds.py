"""The daemon's HTTP jobs are bounded per run (content_sync/daemon.py ``job_bounds``): a
source that answers every batch of plays slowly, but each within its own budget, ends
the plays job at its bound instead of holding it for twenty batches (the watchdog's
limit, JOB_STALL_S, is ten minutes). A real daemon against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from content_sync.daemon import Daemon
from content_sync.db import store
from tests.kit.hostile_link import Behaviour, Seen, hostile_server, status
from tests.kit.status import add_plays, make_config, wait_until

ANSWER_DELAY_S = 0.5  # each batch answered this late: well within its budget


def _slow_plays(seen: Seen, index: int) -> Behaviour:
    if seen.path.endswith("/plays"):
        ids = [r["id"] for r in json.loads(seen.body)["records"]]
        answer = status(200, json.dumps({"accepted": ids}).encode())

        def late(conn: socket.socket, s: Seen, stop: threading.Event) -> None:
            if not stop.wait(ANSWER_DELAY_S):
                answer(conn, s, stop)
        return late
    if "/events" in seen.path:
        return status(200, b'{"next": 0, "events": []}')
    if seen.path.endswith("/status"):
        return status(200, b'{"commands": []}')
    return status(404, b"{}")


def test_a_slow_source_ends_the_plays_job_at_its_bound(tmp_path: Path) -> None:
    with hostile_server(_slow_plays) as (url, srv):
        config, _ = make_config(tmp_path / "box", url, heartbeat_interval=3600,
                                screenshot_interval=0)
        add_plays(config.db_path, 20 * 500)  # twenty batches: ten seconds at this pace
        daemon = Daemon(config)
        daemon.job_bounds["plays"] = 2.0
        daemon.start()
        conn = store.connect(config.db_path)
        try:
            assert wait_until(lambda: "bound" in (store.get_meta(conn, "outbox.last_error")
                                                  or ""), timeout=60)
            error = store.get_meta(conn, "outbox.last_error") or ""
            assert "plays job's bound of 2 s" in error
            assert srv.count("POST", "/plays") < 20  # the rest waits for the next run
            assert store.outbox_size(conn) > 0
        finally:
            conn.close()
            daemon.stop()
