"""The heartbeat: what the province sees of a board, and the commands it answers with.

:func:`build_status` gathers every field from the shared database (sync and player
status, outbox, manifests) and from the machine (:mod:`content_sync.report.sysinfo`). A
value that cannot be read is None, never a guess. :func:`run_heartbeat_once` posts
it to ``POST boards/{id}/status``, marks the command results it carried as
reported, and hands the commands of the answer to the executor.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from content_sync.db import player_requests, store
from content_sync.report import outbox, sysinfo
from content_sync.report.remote_commands import Executor, apply_log_level
from kiosk_config import Config
from kiosk_config.version import __version__ as software_version

log = logging.getLogger(__name__)
FORMAT = "eboard.status/1"
PLAYER_STALE_S = 120  # the player rewrites its status at least this often while it runs


def _age_s(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    except (TypeError, ValueError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _player(conn: sqlite3.Connection) -> dict[str, Any]:
    """The player's own status (player/window.py ``status()``), in the heartbeat's terms."""
    p = store.get_status(conn, "player")
    if p is None:
        return {"running": None, "updated_at": None, "state": None, "item_id": None,
                "playlist_id": None, "item_type": None, "item_since": None, "priority": None,
                "blanked": None, "geometry": None, "clock_ok": None, "clock_reason": None,
                "emergency": None, "error": None, "clips_held": None}
    age = _age_s(p.get("updated_at"))
    cur = _dict(p.get("current"))
    screen = _dict(p.get("screen"))
    clock = _dict(p.get("clock"))
    geometry = None
    if all(isinstance(screen.get(k), int) for k in ("width", "height", "x", "y")):
        geometry = f"{screen['width']}x{screen['height']}+{screen['x']}+{screen['y']}"
    return {
        "running": None if age is None else (age <= PLAYER_STALE_S
                                             and p.get("state") != "stopped"),
        "updated_at": p.get("updated_at"),
        "state": p.get("state"),
        "item_id": cur.get("item_id"),
        "playlist_id": cur.get("playlist_id"),
        "item_type": cur.get("type"),
        "item_since": cur.get("started_at"),
        "priority": cur.get("priority"),
        "blanked": screen.get("blanked"),
        "geometry": geometry,
        "clock_ok": clock.get("ok"),
        "clock_reason": clock.get("reason"),
        "emergency": p.get("emergency"),
        "error": p.get("error"),
        # clips the player died with, held back (content_sync/runtime/decoder_guard.py)
        "clips_held": p.get("clips_held"),
    }


def _screen_state(conn: sqlite3.Connection, player: dict[str, Any]) -> dict[str, Any]:
    """on | blanked_by_schedule | off_by_command | None (unknown: no player status)."""
    forced_off = player_requests.screen_forced_off(conn)
    if forced_off:
        state: str | None = "off_by_command"
    elif player.get("blanked") is True:
        state = "blanked_by_schedule"
    elif player.get("blanked") is False and player.get("running"):
        state = "on"
    else:
        state = None  # no fresh word from the player: unknown, not guessed
    return {"state": state, "forced_off": forced_off}


REFUSALS_REPORTED = 10  # the newest refusals the heartbeat carries (the box keeps 200)


def _sync(conn: sqlite3.Connection) -> dict[str, Any]:
    s = store.get_status(conn, "sync") or {}
    data = {k: s.get(k) for k in ("state", "reason", "source", "last_attempt", "last_success",
                                  "last_error", "last_error_at", "errors", "interim_version",
                                  "updated_at")}
    # Past refusals too (newest first, each with its time, subject and reason): a forged or
    # rolled-back manifest that was refused and then overtaken still reaches the province.
    data["recent_refusals"] = store.recent_refusals(conn, REFUSALS_REPORTED)
    return data


def _outbox(conn: sqlite3.Connection) -> dict[str, Any]:
    oldest = conn.execute("SELECT min(started_at) FROM plays").fetchone()[0]
    rejected = int(conn.execute("SELECT count(*) FROM plays_rejected").fetchone()[0])
    return {"records": store.outbox_size(conn), "folded_counts": outbox.counts_waiting(conn),
            "oldest": oldest, "rejected": rejected,
            "last_error": store.get_meta(conn, "outbox.last_error") or None}


def build_status(config: Config, conn: sqlite3.Connection,
                 command_results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every heartbeat field (DESIGN.md §2 dynamic part, issue 5)."""
    sync_raw = store.get_status(conn, "sync") or {}
    player = _player(conn)
    skew = sync_raw.get("clock_skew_s")
    quota_mb = config.cache.quota_mb
    used_mb = round(store.media_bytes(conn) / 1048576, 1)
    return {
        "format": FORMAT,
        "board": config.board.id,
        "name": config.board.name,
        "software_version": software_version,
        "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        **sysinfo.local_time(config.tz),
        "timezone": config.timezone,
        "uptime_s": sysinfo.uptime_s(),
        "boot_time": sysinfo.boot_time(),
        "heartbeat_interval_s": config.status.heartbeat_interval,
        "clock": {"synchronised": sysinfo.clock_synchronised(),
                  "skew_to_source_s": skew if isinstance(skew, int | float) else None,
                  "warning": sync_raw.get("clock_warning")},
        "manifest": {"active_version": store.active_version(conn) or None,
                     "pending_version": store.pending_version(conn),
                     "offered_version": sync_raw.get("offered_version")},
        "sync": _sync(conn),
        "player": player,
        "screen": _screen_state(conn, player),
        "display": {"geometry": config.display.geometry, "rotation": config.display.rotation,
                    "actual": player.get("geometry")},
        "cache": {"used_mb": used_mb, "quota_mb": quota_mb,
                  "percent": round(100 * used_mb / quota_mb, 1) if quota_mb else None},
        "disk": sysinfo.disk(config.cache_dir),
        "memory": sysinfo.memory(),
        "cpu_temperature_c": sysinfo.cpu_temperature_c(),
        "load": sysinfo.load_average(),
        "network": sysinfo.network(),
        "modem": sysinfo.modem(),
        "outbox": _outbox(conn),
        "screenshot": {"uploaded_at": store.get_meta(conn, "screenshot.uploaded_at"),
                       "interval_s": config.status.screenshot_interval},
        "log_level": apply_log_level(conn, config) or config.log_level,
        "command_results": command_results or [],
    }


@dataclass
class HeartbeatResult:
    ok: bool
    error: str | None = None
    commands: list[str] = field(default_factory=list)  # ids acted on from the answer
    results_reported: int = 0


def status_url(config: Config) -> str:
    return f"{config.source.url}boards/{config.board.id}/status"


def run_heartbeat_once(config: Config, conn: sqlite3.Connection, session: requests.Session,
                       executor: Executor | None = None) -> HeartbeatResult:
    """Send one heartbeat with pending command results; run the commands of the answer."""
    if not config.source.url.startswith("http"):
        return HeartbeatResult(False, "the source is a folder (file://): no status endpoint")
    executor = executor or Executor(config, conn)
    results = executor.results_to_report()
    body = build_status(config, conn, results)
    try:
        resp = outbox.post_json(session, status_url(config), body,
                                (config.source.connect_timeout, config.source.read_timeout))
        if resp.status_code != 200:
            raise ValueError(f"{status_url(config)} answered HTTP {resp.status_code}: "
                             f"{resp.text.strip()[:200]}")
        answer = resp.json()
    except (requests.RequestException, ValueError, RecursionError) as e:  # nested too deep
        error = outbox.failure(e, status_url(config))
        _log_transition(conn, error)
        return HeartbeatResult(False, error)
    executor.mark_reported([r["id"] for r in results])
    _log_transition(conn, None)
    commands = answer.get("commands") if isinstance(answer, dict) else None
    handled = executor.handle(commands or [])
    return HeartbeatResult(True, None, handled, len(results))


def _log_transition(conn: sqlite3.Connection, error: str | None) -> None:
    previous = store.get_meta(conn, "heartbeat.last_error") or ""
    if (error or "") == previous:
        return
    if error:
        log.warning("heartbeat not delivered: %s", error)
    else:
        log.info("heartbeat delivered again")
    with store.transaction(conn):
        store.set_meta(conn, "heartbeat.last_error", error or "")
