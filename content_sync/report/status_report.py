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

from content_sync.db import (
    HeartbeatDelivery,
    PlayerClock,
    PlayerScreen,
    PlayerState,
    PlayerStatus,
    PlayingNow,
    SyncStatus,
    player_requests,
    rows,
    store,
)
from content_sync.protocol import (
    STATUS_FORMAT,
    CacheReport,
    ClockReport,
    CommandResult,
    DiskReport,
    DisplayReport,
    Heartbeat,
    ManifestReport,
    MemoryReport,
    ModemReport,
    NetworkReport,
    OutboxReport,
    PlayerReport,
    Refusal,
    ScreenReport,
    ScreenshotReport,
    ScreenState,
    SyncReport,
)
from content_sync.report import outbox, sysinfo
from content_sync.report.remote_commands import Executor, apply_log_level
from content_sync.runtime import age_s
from kiosk_config import Config
from kiosk_config.version import __version__ as software_version

log = logging.getLogger(__name__)
PLAYER_STALE_S = 120  # the player rewrites its status at least this often while it runs


def _player(conn: sqlite3.Connection) -> PlayerReport:
    """The player's own status row, in the heartbeat's terms (all None: no row yet)."""
    p = rows.read(conn, PlayerStatus) or PlayerStatus()
    age = age_s(p.updated_at)
    cur, screen = p.current or PlayingNow(), p.screen or PlayerScreen()
    clock = p.clock or PlayerClock()
    return PlayerReport(
        running=None if age is None else (age <= PLAYER_STALE_S and p.state != PlayerState.STOPPED),
        updated_at=p.updated_at, state=p.state,
        item_id=cur.item_id, playlist_id=cur.playlist_id, item_type=cur.type,
        item_since=cur.started_at, priority=cur.priority,
        blanked=screen.blanked, geometry=screen.geometry,
        clock_ok=clock.ok, clock_reason=clock.reason,
        emergency=p.emergency, error=p.error,
        # clips the player died with, held back (content_sync/runtime/decoder_guard.py)
        clips_held=p.clips_held)


def _screen_state(conn: sqlite3.Connection, player: PlayerReport) -> ScreenReport:
    """on | blanked_by_schedule | off_by_command | None (unknown: no player status)."""
    forced_off = player_requests.screen_forced_off(conn)
    if forced_off:
        state: ScreenState | None = ScreenState.OFF_BY_COMMAND
    elif player.blanked is True:
        state = ScreenState.BLANKED_BY_SCHEDULE
    elif player.blanked is False and player.running:
        state = ScreenState.ON
    else:
        state = None  # no fresh word from the player: unknown, not guessed
    return ScreenReport(state=state, forced_off=forced_off)


REFUSALS_REPORTED = 10  # the newest refusals the heartbeat carries (the box keeps 200)


def _sync(conn: sqlite3.Connection, s: SyncStatus) -> SyncReport:
    return SyncReport(
        state=s.state, reason=s.reason, source=s.source, last_attempt=s.last_attempt,
        last_success=s.last_success, last_error=s.last_error, last_error_at=s.last_error_at,
        errors=s.errors, interim_version=s.interim_version, updated_at=s.updated_at,
        # Past refusals too (newest first, each with its time, subject and reason): a forged
        # or rolled-back manifest refused and then overtaken still reaches the province.
        recent_refusals=[Refusal.read(r) for r in store.recent_refusals(conn, REFUSALS_REPORTED)])


def _outbox(conn: sqlite3.Connection) -> OutboxReport:
    oldest = conn.execute("SELECT min(started_at) FROM plays").fetchone()[0]
    rejected = int(conn.execute("SELECT count(*) FROM plays_rejected").fetchone()[0])
    return OutboxReport(records=store.outbox_size(conn), folded_counts=outbox.counts_waiting(conn),
                        oldest=oldest, rejected=rejected,
                        last_error=store.get_meta(conn, "outbox.last_error") or None)


def build_heartbeat(config: Config, conn: sqlite3.Connection,
                    command_results: list[dict[str, Any]] | None = None) -> Heartbeat:
    """Every heartbeat field (DESIGN.md §2 dynamic part; docs/STATUS.md)."""
    sync = rows.read(conn, SyncStatus) or SyncStatus()
    player = _player(conn)
    quota_mb = config.cache.quota_mb
    used_mb = round(store.media_bytes(conn) / 1048576, 1)
    local = sysinfo.local_time(config.tz)
    modem = sysinfo.modem()
    return Heartbeat(
        format=STATUS_FORMAT, board=config.board.id, name=config.board.name,
        software_version=software_version,
        sent_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        local_time=local["local_time"], utc_offset_s=local["utc_offset_s"],
        monotonic_s=local["monotonic_s"],
        timezone=config.timezone, uptime_s=sysinfo.uptime_s(), boot_time=sysinfo.boot_time(),
        heartbeat_interval_s=config.status.heartbeat_interval,
        clock=ClockReport(synchronised=sysinfo.clock_synchronised(),
                          skew_to_source_s=sync.clock_skew_s, warning=sync.clock_warning),
        manifest=ManifestReport(active_version=store.active_version(conn) or None,
                                pending_version=store.pending_version(conn),
                                offered_version=sync.offered_version),
        sync=_sync(conn, sync),
        player=player,
        screen=_screen_state(conn, player),
        display=DisplayReport(geometry=config.display.geometry,
                              rotation=config.display.rotation, actual=player.geometry),
        cache=CacheReport(used_mb=used_mb, quota_mb=quota_mb,
                          percent=round(100 * used_mb / quota_mb, 1) if quota_mb else None),
        disk=DiskReport.read(sysinfo.disk(config.cache_dir)),
        memory=MemoryReport.read(sysinfo.memory()),
        cpu_temperature_c=sysinfo.cpu_temperature_c(),
        load=sysinfo.load_average(),
        network=NetworkReport.read(sysinfo.network()),
        modem=None if modem is None else ModemReport.read(modem),
        outbox=_outbox(conn),
        screenshot=ScreenshotReport(uploaded_at=store.get_meta(conn, "screenshot.uploaded_at"),
                                    interval_s=config.status.screenshot_interval),
        log_level=apply_log_level(conn, config) or config.log_level,
        command_results=[CommandResult.read(r) for r in command_results or []],
    )


def build_status(config: Config, conn: sqlite3.Connection,
                 command_results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The heartbeat's JSON body (:func:`build_heartbeat`, as sent)."""
    return build_heartbeat(config, conn, command_results).to_json()


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
        _record_delivery(conn, error)
        return HeartbeatResult(False, error)
    executor.mark_reported([r["id"] for r in results])
    _record_delivery(conn, None)
    commands = answer.get("commands") if isinstance(answer, dict) else None
    handled = executor.handle(commands or [])
    return HeartbeatResult(True, None, handled, len(results))


def _record_delivery(conn: sqlite3.Connection, error: str | None) -> None:
    """Record whether this heartbeat got through (``eboard doctor``, ``eboard status``
    read it); log only the changes."""
    previous = rows.heartbeat_delivery(conn) or HeartbeatDelivery()
    changed = (error or "") != (previous.error or "")
    if changed and error:
        log.warning("heartbeat not delivered: %s", error)
    elif changed:
        log.info("heartbeat delivered again")
    now = store.utcnow()
    row = HeartbeatDelivery(
        last_attempt=now, last_delivered=previous.last_delivered if error else now,
        error=error or None,
        error_since=None if not error else (previous.error_since if previous.error else now))
    with store.transaction(conn):
        rows.write(conn, row)
        if changed:  # what the previous release reads (a box downgraded again)
            store.set_meta(conn, rows.LEGACY_HEARTBEAT_ERROR, error or "")
