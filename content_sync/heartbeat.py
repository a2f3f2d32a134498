"""The heartbeat: ``POST boards/{id}/status`` with what the province needs to know.

Kept small on purpose: :func:`build_status` makes the dict, :func:`send` posts it
and returns the server's answer (which may carry commands; acting on them is not
this module's job).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from content_sync import store
from content_sync.source import Source
from eboard import __version__
from kiosk_config import Config

SYNC_KEYS = ("state", "reason", "last_success", "last_error", "last_error_at",
             "offered_version", "clock_skew_s", "clock_warning", "cache_bytes")


def build_status(config: Config, conn: sqlite3.Connection) -> dict[str, Any]:
    """The heartbeat body: board, software, active manifest, sync state, errors, outbox."""
    sync = store.get_status(conn, "sync") or {}
    return {
        "board": config.board.id,
        "software": f"eboard {__version__}",
        "sent_at": store.utcnow(),
        "active_version": store.active_version(conn) or None,
        "pending_version": store.pending_version(conn),
        "sync": {k: sync.get(k) for k in SYNC_KEYS},
        "errors": sync.get("errors", []),
        "refusals": store.recent_refusals(conn, 5),
        "player": store.get_status(conn, "player"),
        "outbox": store.outbox_size(conn),
    }


def send(config: Config, conn: sqlite3.Connection, source: Source) -> dict[str, Any]:
    """Post one heartbeat; raises SourceUnreachable / SourceError on failure."""
    return source.post_status(config.board.id, build_status(config, conn))
