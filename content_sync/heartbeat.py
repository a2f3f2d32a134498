"""The heartbeat: ``POST boards/{id}/status`` with what the province needs to know.

Kept small on purpose: :func:`build_status` makes the dict, :func:`send` posts it
and returns the server's answer (which may carry commands; acting on them is not
this module's job).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from content_sync import status_report
from content_sync.source import Source
from kiosk_config import Config


def build_status(config: Config, conn: sqlite3.Connection) -> dict[str, Any]:
    """The heartbeat body: every field of issue 5 (see ``status_report.build_status``)."""
    return status_report.build_status(config, conn)


def send(config: Config, conn: sqlite3.Connection, source: Source) -> dict[str, Any]:
    """Post one heartbeat; raises SourceUnreachable / SourceError on failure.

    The daemon uses ``status_report.run_heartbeat_once``, which also carries command
    results and runs the commands of the answer; this stays for one-off callers.
    """
    return source.post_status(config.board.id, build_status(config, conn))
