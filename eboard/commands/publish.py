"""``eboard publish``: sign an operator's playlist and put it where boards fetch it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from content_sync.protocol import KeyFileError, load_private_key
from content_sync.publish import PublishError, manifest_version_in, prepare, write_to_folder
from kiosk_config import SecretFileError, read_token


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="sign a playlist file (TOML) for a board and publish it with its media "
        "to a source folder or a reference source server",
        description="Read an operator's playlist TOML (see docs/PUBLISHING.md), copy its "
        "media by SHA-256, and write the signed manifest (DSSE, Ed25519).",
    )
    p.add_argument("playlist", type=Path, help="playlist TOML file")
    p.add_argument("--to", required=True, metavar="DIR_OR_URL",
                   help="source folder (or USB stick) or http(s):// URL of a source server")
    p.add_argument("--board", required=True, metavar="ID", help="board id, e.g. demo.board-01")
    p.add_argument("--key", required=True, type=Path, metavar="KEYFILE",
                   help="Ed25519 private key (from 'eboard keys generate')")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help="operator token file (mode 0600), for publishing to a URL")
    p.set_defaults(func=run, usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    if args.to.startswith(("http://", "https://")) and not args.token_file:
        args.usage_error("argument --token-file: publishing to a URL needs --token-file "
                         "FILE, the operator token (mode 0600)")
    try:
        key = load_private_key(args.key)
        if args.to.startswith(("http://", "https://")):
            from content_sync.publish import current_version, upload

            base = args.to if args.to.endswith("/") else args.to + "/"
            token = read_token(args.token_file)
            pub = prepare(args.playlist, args.board, key, current_version(base, args.board))
            upload(pub, base, token)
            where = f"{base}boards/{args.board}/manifest.json"
        else:
            root = Path(args.to.removeprefix("file://"))
            existing = root / "boards" / args.board / "manifest.json"
            previous = manifest_version_in(existing.read_bytes()) if existing.is_file() else 0
            pub = prepare(args.playlist, args.board, key, previous)
            where = str(write_to_folder(pub, root))
    except (PublishError, KeyFileError, SecretFileError) as e:
        print(f"eboard publish: {e}", file=sys.stderr)
        return 1
    if pub.warning:
        print(f"eboard publish: warning: {pub.warning}", file=sys.stderr)
    print(f"published version {pub.version} for {pub.board} with {len(pub.media)} media: {where}")
    return 0
