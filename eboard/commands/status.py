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
from pathlib import Path
from typing import Any

from content_sync import status_schema, store
from content_sync.status_report import build_status
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


def _has_status_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                       "('play_counts','plays_rejected','player_requests')").fetchone()
    return int(row[0]) == 3


def collect(config: Config) -> dict[str, Any]:
    db_path: Path = config.db_path
    info: dict[str, Any] = {"database": str(db_path)}
    if not db_path.exists():
        info["error"] = (f"no database at {db_path}: the sync daemon has not run yet "
                         "(systemctl status eboard-sync), or cache.dir points elsewhere")
        return info
    try:
        conn = store.connect(db_path, readonly=True)
        try:
            if not _has_status_tables(conn):  # first run of this version: add its tables
                status_schema.ensure(conn)
            info.update(build_status(config, conn))
            info["recent_refusals"] = store.recent_refusals(conn, 5)
            info["heartbeat_error"] = store.get_meta(conn, "heartbeat.last_error") or None
        finally:
            conn.close()
    except sqlite3.Error as e:
        info["error"] = f"cannot read {db_path}: {e}; is the disk full or the file damaged?"
    return info


def _line(label: str, text: Any) -> None:
    print(f"{label + ':':<17}{text}")


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
    p = info["player"]
    running = {True: "running", False: "NOT RUNNING (no status lately)", None: "unknown"}
    _line("player", f"{running[p['running']]}, updated {p['updated_at'] or 'never'}")
    _line("on screen", f"{p['item_id'] or '-'} of {p['playlist_id'] or '-'}"
          f"{' since ' + p['item_since'] if p['item_since'] else ''}")
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
