"""The sync daemon carries the status side: heartbeat with every field, plays job, command
events on the long-poll answered within seconds, screenshot job."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import requests

from content_sync.daemon import Daemon
from content_sync.db import player_requests, store
from tests.kit.status import (
    BOARD,
    OPERATOR_TOKEN,
    add_plays,
    make_config,
    reference_server,
    wait_until,
)

OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _result(url: str, cid: str) -> dict[str, Any] | None:
    for c in requests.get(f"{url}boards/{BOARD}/commands", headers=OP, timeout=5).json():
        if c["id"] == cid:
            return c["result"]
    return None


def test_daemon_sends_plays_heartbeats_and_answers_commands(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url, heartbeat_interval=3600,
                                screenshot_interval=0)
        add_plays(config.db_path, 40)
        level_before = logging.getLogger().level
        daemon = Daemon(config)
        daemon.start()
        try:
            assert wait_until(lambda: srv.db.play_totals(BOARD)["records"] == 40, timeout=15)
            assert wait_until(lambda: bool(srv.db.boards()), timeout=10)
            status = srv.db.boards()[0]["status"]
            assert status["format"] == "eboard.status/1" and status["board"] == BOARD
            # A command reaches the box on the long-poll, not at the next heartbeat (an hour
            # away): its result is on the server within seconds.
            r = requests.post(f"{srv.url}boards/{BOARD}/commands", headers=OP, timeout=5,
                              json={"command": "log_level",
                                    "args": {"level": "warning", "minutes": 1}})
            cid = r.json()["id"]
            assert wait_until(lambda: _result(srv.url, cid) is not None, timeout=15)
            result = _result(srv.url, cid)
            assert result is not None and result["ok"] and "warning" in result["detail"]
            # A screenshot command becomes a request the player answers.
            r = requests.post(f"{srv.url}boards/{BOARD}/commands", headers=OP, timeout=5,
                              json={"command": "screenshot"})
            conn = store.connect(config.db_path)
            assert wait_until(lambda: player_requests.has_pending(conn, "screenshot"))
            conn.close()
        finally:
            daemon.stop()
            logging.getLogger().setLevel(level_before)
