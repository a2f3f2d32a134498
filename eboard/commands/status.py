"""``eboard status``: what a technician on site needs at a glance.

The same facts the province receives in the heartbeat (``status_report.build_status``):
active manifest, sync state and last errors, what is on screen and the screen state,
the proof-of-play outbox, disk and cache, clock, and whether the heartbeat gets through.
``--json`` prints the heartbeat body itself. Reads the database only.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from content_sync.db import PlayerState, SchemaTooNew, rows, store
from content_sync.protocol import Heartbeat, PlayerReport, Refusal
from content_sync.report import build_heartbeat
from content_sync.runtime import age_s, human
from eboard.commands.common import add_config_option, config_or_exit
from kiosk_config import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="show the box's state: active manifest, sync state and last errors, "
        "what is on screen, outbox size, disk",
    )
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print JSON (the heartbeat body)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class BoxStatus:
    """What ``eboard status`` shows: the heartbeat the box would send now, and more."""

    database: Path
    heartbeat: Heartbeat | None = None  # None with an error
    recent_refusals: list[Refusal] = field(default_factory=list)
    heartbeat_error: str | None = None  # why the last heartbeat was not delivered
    error: str | None = None  # why the database could not be read

    def to_json(self) -> dict[str, Any]:
        """``--json``: the heartbeat body, with the database and the newest refusals."""
        if self.heartbeat is None:
            return {"database": str(self.database), "error": self.error}
        return {"database": str(self.database), **self.heartbeat.to_json(),
                "recent_refusals": [r.to_json() for r in self.recent_refusals],
                "heartbeat_error": self.heartbeat_error}


def collect(config: Config) -> BoxStatus:
    db_path: Path = config.db_path
    if not db_path.exists():
        return BoxStatus(db_path, error=(
            f"no database at {db_path}: the sync daemon has not run yet "
            "(systemctl status eboard-sync), or cache.dir points elsewhere"))
    try:
        conn = store.connect(db_path)  # an older release's file: brought to this one's schema
        try:
            delivery = rows.heartbeat_delivery(conn)
            return BoxStatus(db_path, build_heartbeat(config, conn),
                             [Refusal.read(r) for r in store.recent_refusals(conn, 5)],
                             delivery.error if delivery else None)
        finally:
            conn.close()
    except SchemaTooNew as e:
        return BoxStatus(db_path, error=str(e))
    except sqlite3.Error as e:
        return BoxStatus(db_path, error=f"cannot read {db_path}: {e}; is the disk full or "
                         "the file damaged?")


def _line(label: str, text: Any) -> None:
    print(f"{label + ':':<17}{text}")


def _printable(value: Any, limit: int = 200) -> str:
    """Text from the player (a publisher's or CAP issuer's headline) made safe for a
    terminal: control characters (escape sequences, newlines, bidi overrides) become
    spaces, and very long text is cut."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _ago(seconds: float, future_ok: bool = False) -> str:
    if seconds < -5:
        if future_ok:
            return f"in {human(seconds)}"
        return f"{human(seconds)} in the future: check the clock"
    return f"{human(max(seconds, 0.0))} ago"


def _parse(iso: Any) -> datetime | None:
    """An ISO 8601 time as the rows and the heartbeat carry it (naive means UTC)."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _at(iso: Any, tz: tzinfo) -> str:
    """'2026-11-24 14:03:05': the box's local time, without the zone, which the first
    line names once (:func:`zone`); junk is shown as it is, made printable."""
    t = _parse(iso)
    if t is None:
        return _printable(iso, 40) if iso else "an unknown time"
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _when(iso: Any, tz: tzinfo, now: datetime, future_ok: bool = False) -> str:
    """'2026-11-24 14:03:05 (3 min ago)': local time, as :func:`_at`, and how long ago."""
    t = _parse(iso)
    if t is None:
        return _at(iso, tz)
    return f"{_at(iso, tz)} ({_ago((now - t).total_seconds(), future_ok)})"


def zone(tz: tzinfo, name: str, now: datetime) -> str:
    """'+07 (Asia/Ho_Chi_Minh)': the zone every time of the screen is written in."""
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
    text = f"{sign}{minutes // 60:02d}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    return f"{text} ({name})"


def emergency_line(player: PlayerReport, tz: tzinfo,
                   now: datetime | None = None) -> tuple[bool, str]:
    """What ``eboard status`` says about an emergency: (prominent, line).

    Prominent lines (an emergency on screen, or one last reported by a player whose
    status is old) go to the top of the output; the quiet ones sit with the player."""
    now = now or datetime.now(UTC)
    e = player.emergency
    if e is None:
        if player.running is None:
            return False, "unknown (the player has not written its status yet)"
        if player.running is False:
            return False, "unknown (the player's status is stale; see 'player' above)"
        return False, "none"
    headline = _printable(e.headline or "") or "(no headline)"
    level = e.risk_level
    level_text = f"risk level {level}" if level is not None else "no risk level"
    what = f'"{headline}" (playlist {_printable(e.playlist_id or "?", 80)}, {level_text})'
    alarm = e.alarm
    if alarm and alarm != "off":  # emergency.alarm = true
        what += f"; alarm sound: {_printable(alarm, 200)}"
    since = _when(e.since, tz, now)
    if player.running:
        return True, f"EMERGENCY on screen since {since}: {what}"
    if player.state == PlayerState.STOPPED:
        why = "the player reported that it stopped"
    else:
        age = age_s(player.updated_at, now)
        old = f" ({human(age)} old)" if age is not None and age >= 0 else ""
        why = f"the player's status is stale{old}: it is not running, or hung"
    return True, (f"EMERGENCY last reported on screen since {since}: {what}; NOT CONFIRMED "
                  f"NOW: {why}. Look at the board and check 'systemctl status eboard-player'")


def run(args: argparse.Namespace) -> int:
    config = config_or_exit(args)
    box = collect(config)
    if args.json:
        data = box.to_json()
        data.pop("command_results", None)
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return 0 if box.heartbeat is not None else 1
    tz, now = config.tz, datetime.now(UTC)
    _line("board", f"{config.board.id} ({config.board.name}); times are local time, "
          f"{zone(tz, config.timezone, now)}")
    hb = box.heartbeat
    if hb is None:
        _line("state", box.error)
        return 1
    p = hb.player
    prominent, emergency = emergency_line(p, tz, now)
    if prominent:
        print(emergency)
    m = hb.manifest
    pending = f", pending {m.pending_version}" if m.pending_version else ""
    _line("active manifest", f"{m.active_version or 'none'}{pending}")
    sync = hb.sync
    last_success = _when(sync.last_success, tz, now) if sync.last_success else "never"
    _line("sync", f"{sync.state or 'not run yet'}"
          f"{': ' + sync.reason if sync.reason else ''}; last success {last_success}")
    for err in (sync.errors or [])[:3]:
        _line("  error", err)
    if sync.last_error and sync.state != "up_to_date":
        _line("  last error", f"{sync.last_error} at {_when(sync.last_error_at, tz, now)}")
    running = {True: "running", False: "NOT RUNNING (no status lately)", None: "unknown"}
    updated = _when(p.updated_at, tz, now) if p.updated_at else "never"
    _line("player", f"{running[p.running]}, updated {updated}")
    _line("on screen", f"{p.item_id or '-'} of {p.playlist_id or '-'}"
          f"{' since ' + _when(p.item_since, tz, now) if p.item_since else ''}")
    for held in p.clips_held or []:
        _line("  clip held back", f"{str(held.media)[:12]}…: the player died "
              f"{held.deaths} times with it open; tried again after "
              f"{_when(held.until, tz, now, future_ok=True)}. Replace the clip at the source")
    if not prominent:
        _line("emergency", emergency)
    _line("screen", hb.screen.state or "unknown")
    o = hb.outbox
    folded = f", {o.folded_counts} folded daily counts" if o.folded_counts else ""
    _line("outbox", f"{o.records} proof-of-play records waiting{folded}"
          f"{' (oldest ' + _when(o.oldest, tz, now) + ')' if o.oldest else ''}")
    if o.last_error:
        _line("  upload error", o.last_error)
    if box.heartbeat_error:
        _line("heartbeat", f"not delivered: {box.heartbeat_error}")
    c, d = hb.cache, hb.disk
    _line("cache", f"{c.used_mb} MB of {c.quota_mb} MB quota")
    _line("disk free", f"{d.free_mb} MB of {d.total_mb} MB in {config.cache_dir}")
    clock = hb.clock
    sync_text = {True: "synchronised", False: "NOT synchronised (check NTP)", None: "unknown"}
    _line("clock", f"{_at(hb.local_time, tz)}, {sync_text[clock.synchronised]}")
    if clock.warning:
        _line("  warning", clock.warning)
    for r in box.recent_refusals:
        _line("  refused", f"{_at(r.at, tz)} {r.subject}: {r.reason}")
    return 0
