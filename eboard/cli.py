"""The ``eboard`` command. Each subcommand lives in ``eboard.commands.<name>``.

A command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed args and returning an exit status.
Modules are imported lazily by name so that ``eboard sync`` never loads Qt.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from eboard import __version__, logsetup

COMMANDS = [
    "config_cmd",
    "keys",
    "publish",
    "serve_source",
    "sync",
    "play",
    "status",
    "report",
    "demo",
    "doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eboard",
        description="Player, sync daemon and reference source for public electronic "
        "bulletin boards (bảng tin điện tử công cộng).",
    )
    parser.add_argument("--version", action="version", version=f"eboard {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"eboard.commands.{name}")
        module.register(sub)
    return parser


def setup_logging(verbose: bool) -> None:
    """Journal-friendly logging with flood control (eboard.logsetup)."""
    logsetup.setup_logging(verbose)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
