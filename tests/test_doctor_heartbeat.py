"""`eboard doctor`'s heartbeat line after real heartbeats to the real reference server.

The doctor reads what the sync daemon records of a heartbeat's delivery
(content_sync/db/rows.py ``HeartbeatDelivery``): OK with its age after one got
through, the error after one did not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report.status_report import run_heartbeat_once
from eboard.cli import main
from tests.kit.status import BOARD, make_config, reference_server

SKIP = ("--skip", "video,display,units,clock")


@pytest.fixture(autouse=True)
def _drop_cli_log_handler() -> Iterator[None]:
    """main() installs its logging handler on the root logger; take it off again."""
    yield
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_eboard", False)]:
        root.removeHandler(h)


def heartbeat_line(capsys: pytest.CaptureFixture[str], config: Path) -> str:
    main(["doctor", "--config", str(config), *SKIP])
    lines = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()]
    (found,) = [f"{p[0]} {p[2]}" for p in lines if len(p) == 3 and p[1] == "heartbeat"]
    return found


def test_doctor_sees_the_heartbeat_the_server_received(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, path = make_config(tmp_path / "box", srv.url)
        conn = store.connect(config.db_path)
        result = run_heartbeat_once(config, conn, make_session(config))
        assert result.ok, result.error
        (board,) = srv.db.boards()
        assert board["board"] == BOARD  # the server has it
        line = heartbeat_line(capsys, path)
        assert re.fullmatch(r"OK last heartbeat \d+(\.\d+)? s ago", line), line

    # The server is gone: the next heartbeat fails, and the doctor says why.
    result = run_heartbeat_once(config, conn, make_session(config, retries=0))
    assert not result.ok
    line = heartbeat_line(capsys, path)
    assert line.startswith(f"WARN last heartbeat not delivered: {result.error}"), line
    assert re.search(r"; last delivered \d+(\.\d+)? s ago$", line), line
    conn.close()
