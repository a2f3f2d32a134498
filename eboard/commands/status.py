"""``eboard status``: what a technician on site needs at a glance."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from content_sync import store
from eboard.commands.common import add_config_option, config_or_exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status",
        help="show the box's state: active manifest, sync state and last errors, "
        "player, outbox size, disk",
    )
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def collect(db_path: Path, cache_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"database": str(db_path)}
    if not db_path.exists():
        info["error"] = f"no database at {db_path}: the sync daemon has not run yet"
        return info
    conn = store.connect(db_path)
    try:
        info["active_version"] = store.active_version(conn) or None
        info["sync"] = store.get_status(conn, "sync")
        info["player"] = store.get_status(conn, "player")
        info["outbox"] = store.outbox_size(conn)
        info["recent_refusals"] = store.recent_refusals(conn, 5)
    except sqlite3.Error as e:
        info["error"] = f"cannot read {db_path}: {e}"
    finally:
        conn.close()
    try:
        usage = shutil.disk_usage(cache_dir)
        info["disk_free_mb"] = usage.free // (1024 * 1024)
    except OSError:
        info["disk_free_mb"] = None
    return info


def run(args: argparse.Namespace) -> int:
    config = config_or_exit(args)
    info = collect(config.db_path, config.cache_dir)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return 0 if "error" not in info else 1
    print(f"board:           {config.board.id} ({config.board.name})")
    if "error" in info:
        print(f"state:           {info['error']}")
        return 1
    print(f"active manifest: {info['active_version'] or 'none'}")
    sync = info.get("sync") or {}
    print(f"sync:            {sync.get('state', 'unknown')} (updated {sync.get('updated_at', '-')})")
    for err in (sync.get("last_errors") or [])[:3]:
        print(f"  error:         {err}")
    player = info.get("player") or {}
    print(f"player:          {player.get('screen', 'unknown')}; on screen: "
          f"{player.get('item_id') or '-'} (updated {player.get('updated_at', '-')})")
    print(f"outbox:          {info['outbox']} proof-of-play records waiting")
    print(f"disk free:       {info['disk_free_mb']} MB in {config.cache_dir}")
    for r in info["recent_refusals"]:
        print(f"  refused:       {r['at']} {r['subject']}: {r['reason']}")
    return 0
