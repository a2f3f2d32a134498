"""``eboard keys generate``: make an Ed25519 signing key pair for publishing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from content_sync.protocol import KeyFileError, generate_keys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="manage signing keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = ksub.add_parser(
        "generate",
        help="write an Ed25519 key pair: eboard-signing.key (private, mode 0600) and "
        "eboard-signing.pub (give it to boards as source.trusted_keys)",
    )
    gen.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the pair")
    gen.add_argument("--force", action="store_true", help="replace an existing pair")
    gen.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    try:
        priv, pub = generate_keys(args.out, force=args.force)
    except KeyFileError as e:
        print(f"eboard keys generate: {e}", file=sys.stderr)
        return 1
    print(f"private key: {priv} (mode 0600; keep it at the publisher, never on a board)")
    print(f"public key:  {pub} (list it in source.trusted_keys on every board)")
    return 0
