"""``eboard serve-source``: run the reference source server (eboard/1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-source",
        help="run the reference source server: serves a published folder (manifests, media) "
        "and takes heartbeats, events long-polls and operator uploads",
    )
    p.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="published source folder"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument(
        "--tokens",
        type=Path,
        metavar="FILE",
        help="TOML file of bearer tokens: operator = '…' and [boards] id = '…'",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="the server's database: a PostgreSQL URL (postgresql://user@host/db; several "
        "server processes may share it) or a SQLite file (default DIR/.server/server.db)",
    )
    p.add_argument(
        "--max-connections", type=int, default=30_000, metavar="N",
        help="connections held at once (each idle board holds one; default 30000)",
    )
    p.add_argument(
        "--keep-heartbeats", type=float, metavar="HOURS",
        help="hours of heartbeat history kept (default 6; each board's latest is always "
        "kept; ~2 KB a heartbeat, one a minute per board)",
    )
    p.add_argument(
        "--no-watch", action="store_true",
        help="do not watch DIR for manifests written by `eboard publish --to DIR` (when "
        "every publish goes through this server's HTTP API, or another process watches)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from content_sync.server import serve
    except ImportError as e:
        print(f"eboard serve-source: the server's libraries are not installed ({e.name}); "
              "install them with: pip install 'eboard[server]'", file=sys.stderr)
        return 2
    serve(args.data, args.host, args.port, args.tokens, store=args.store,
          max_connections=args.max_connections, watch_folder=not args.no_watch,
          keep_heartbeats_h=args.keep_heartbeats)
    return 0
