"""``eboard serve-source``: run the reference source server (eboard/1)."""

from __future__ import annotations

import argparse
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from content_sync.server import serve

    serve(args.data, args.host, args.port, args.tokens)
    return 0
