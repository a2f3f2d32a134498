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
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from content_sync.db import SchemaTooNew, store
from content_sync.report import build_status
from content_sync.runtime import human
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


def collect(config: Config) -> dict[str, Any]:
    db_path: Path = config.db_path
    info: dict[str, Any] = {"database": str(db_path)}
    if not db_path.exists():
        info["error"] = (f"no database at {db_path}: the sync daemon has not run yet "
                         "(systemctl status eboard-sync), or cache.dir points elsewhere")
        return info
    try:
        conn = store.connect(db_path)  # an older release's file: brought to this one's schema
        try:
            info.update(build_status(config, conn))
            info["recent_refusals"] = store.recent_refusals(conn, 5)
            info["heartbeat_error"] = store.get_meta(conn, "heartbeat.last_error") or None
        finally:
            conn.close()
    except SchemaTooNew as e:
        info["error"] = str(e)
    except sqlite3.Error as e:
        info["error"] = f"cannot read {db_path}: {e}; is the disk full or the file damaged?"
    return info


def _line(label: str, text: Any) -> None:
    print(f"{label + ':':<17}{text}")


def _printable(value: Any, limit: int = 200) -> str:
    """Text from the player (a publisher's or CAP issuer's headline) made safe for a
    terminal: control characters (escape sequences, newlines, bidi overrides) become
    spaces, and very long text is cut."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _ago(seconds: float) -> str:
    if seconds < -5:
        return f"{human(seconds)} in the future: check the clock"
    return f"{human(max(seconds, 0.0))} ago"


def _age_s(iso: Any, now: datetime) -> float | None:
    if not isinstance(iso, str) or not iso:
        return None
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (now - (t if t.tzinfo else t.replace(tzinfo=UTC))).total_seconds()


def _when(iso: Any, tz: tzinfo, now: datetime) -> str:
    """'2026-11-24 14:03:05 (local time, 3 min ago)' from a UTC ISO timestamp."""
    if not isinstance(iso, str) or not iso:
        return "an unknown time"
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return _printable(iso, 40)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    local = t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return f"{local} (local time, {_ago((now - t).total_seconds())})"


def emergency_line(player: dict[str, Any], tz: tzinfo,
                   now: datetime | None = None) -> tuple[bool, str]:
    """What ``eboard status`` says about an emergency: (prominent, line).

    Prominent lines (an emergency on screen, or one last reported by a player whose
    status is old) go to the top of the output; the quiet ones sit with the player."""
    now = now or datetime.now(UTC)
    e = player.get("emergency")
    if not isinstance(e, dict):
        if player.get("running") is None:
            return False, "unknown (the player has not written its status yet)"
        if player.get("running") is False:
            return False, "unknown (the player's status is stale; see 'player' above)"
        return False, "none"
    headline = _printable(e.get("headline") or "") or "(no headline)"
    level = e.get("risk_level")
    level_text = (f"risk level {level}" if isinstance(level, int) and not isinstance(level, bool)
                  else "no risk level")
    what = (f'"{headline}" (playlist {_printable(e.get("playlist_id") or "?", 80)}, '
            f"{level_text})")
    alarm = e.get("alarm")
    if isinstance(alarm, str) and alarm and alarm != "off":  # emergency.alarm = true
        what += f"; alarm sound: {_printable(alarm, 200)}"
    since = _when(e.get("since"), tz, now)
    if player.get("running"):
        return True, f"EMERGENCY on screen since {since}: {what}"
    if player.get("state") == "stopped":
        why = "the player reported that it stopped"
    else:
        age = _age_s(player.get("updated_at"), now)
        old = f" ({human(age)} old)" if age is not None and age >= 0 else ""
        why = f"the player's status is stale{old}: it is not running, or hung"
    return True, (f"EMERGENCY last reported on screen since {since}: {what}; NOT CONFIRMED "
                  f"NOW: {why}. Look at the board and check 'systemctl status eboard-player'")


def run(args: argparse.Namespace) -> int:
    config = config_or_exit(args)
    info = collect(config)
    if args.json:
        info.pop("command_results", None)
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return 0 if "error" not in info else 1
    _line("board", f"{config.board.id} ({config.board.name})")
    if "error" in info:
        _line("state", info["error"])
        return 1
    p = info["player"]
    prominent, emergency = emergency_line(p, config.tz)
    if prominent:
        print(emergency)
    m = info["manifest"]
    pending = f", pending {m['pending_version']}" if m["pending_version"] else ""
    _line("active manifest", f"{m['active_version'] or 'none'}{pending}")
    sync = info["sync"]
    _line("sync", f"{sync.get('state') or 'not run yet'}"
          f"{': ' + sync['reason'] if sync.get('reason') else ''} "
          f"(last success {sync.get('last_success') or 'never'})")
    for err in (sync.get("errors") or [])[:3]:
        _line("  error", err)
    if sync.get("last_error") and sync.get("state") != "up_to_date":
        _line("  last error", f"{sync['last_error']} at {sync.get('last_error_at')}")
    running = {True: "running", False: "NOT RUNNING (no status lately)", None: "unknown"}
    _line("player", f"{running[p['running']]}, updated {p['updated_at'] or 'never'}")
    _line("on screen", f"{p['item_id'] or '-'} of {p['playlist_id'] or '-'}"
          f"{' since ' + p['item_since'] if p['item_since'] else ''}")
    for held in p.get("clips_held") or []:
        if isinstance(held, dict):
            _line("  clip held back", f"{str(held.get('media'))[:12]}…: the player died "
                  f"{held.get('deaths')} times with it open; tried again after "
                  f"{held.get('until')}. Replace the clip at the source")
    if not prominent:
        _line("emergency", emergency)
    _line("screen", info["screen"]["state"] or "unknown")
    o = info["outbox"]
    folded = f", {o['folded_counts']} folded daily counts" if o["folded_counts"] else ""
    _line("outbox", f"{o['records']} proof-of-play records waiting{folded}"
          f"{' (oldest ' + o['oldest'] + ')' if o['oldest'] else ''}")
    if o["last_error"]:
        _line("  upload error", o["last_error"])
    if info["heartbeat_error"]:
        _line("heartbeat", f"not delivered: {info['heartbeat_error']}")
    c, d = info["cache"], info["disk"]
    _line("cache", f"{c['used_mb']} MB of {c['quota_mb']} MB quota")
    _line("disk free", f"{d['free_mb']} MB of {d['total_mb']} MB in {config.cache_dir}")
    clock = info["clock"]
    sync_text = {True: "synchronised", False: "NOT synchronised (check NTP)", None: "unknown"}
    _line("clock", f"{info['local_time']} {info['timezone']}, "
          f"{sync_text[clock['synchronised']]}")
    if clock.get("warning"):
        _line("  warning", clock["warning"])
    for r in info["recent_refusals"]:
        _line("  refused", f"{r['at']} {r['subject']}: {r['reason']}")
    return 0
