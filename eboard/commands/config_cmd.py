"""``eboard config check``: print the effective config and every problem."""

from __future__ import annotations

import argparse
import sys

from eboard.commands.common import add_config_option
from kiosk_config import load, render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="check and show the box's configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = csub.add_parser(
        "check",
        help="print the effective config (secrets masked) with each problem beside its key; "
        "exit 1 on any problem",
    )
    add_config_option(check)
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    result = load(args.config)
    print(f"# files applied: {', '.join(map(str, result.files)) or '(defaults only)'}")
    print(render(result), end="")
    if result.problems:
        print(f"\n{len(result.problems)} problem(s):", file=sys.stderr)
        for p in result.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("# config OK", file=sys.stderr)
    return 0
