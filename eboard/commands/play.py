"""``eboard play``: the player window (Qt). Imports Qt only when it runs."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from eboard import malloc_tuning
from eboard.commands.common import add_config_option, config_or_exit


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, e.g. 30"
                                         ) from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="show the active content on the screen (the player)",
        description="Show the board: the active manifest's playlists from the cache "
        "database (written by 'eboard sync'), in the window of display.geometry or full "
        "screen, with header, ticker and emergency banners. Records proof of play and the "
        "player's status in the database. Never talks to the network.",
        epilog="Example: eboard play --config /etc/eboard/eboard.toml --duration 30 "
        "--screenshot-dir demo-output",
    )
    add_config_option(p)
    p.add_argument("--duration", type=_positive, metavar="S",
                   help="stop by itself after S seconds (default: run until stopped)")
    p.add_argument("--screenshot-dir", type=Path, metavar="DIR",
                   help="save a PNG of the screen (including video) into DIR every interval")
    p.add_argument("--screenshot-interval", type=_positive, default=5.0, metavar="S",
                   help="seconds between screenshots (default: 5)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    malloc_tuning.tune()  # before Qt and libVLC start their threads
    config = config_or_exit(args)
    from content_sync.db import SchemaTooNew

    try:
        from player.content import open_db

        open_db(config.db_path)[0].close()
    except SchemaTooNew as e:
        print(f"eboard play: {e}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:
        print(f"eboard play: cannot open the database {config.db_path}: {e}. Check cache.dir "
              "and that this user may write there (the player records proof of play).",
              file=sys.stderr)
        return 1
    from player.app import run

    return run(config, duration=args.duration, screenshot_dir=args.screenshot_dir,
               screenshot_interval=args.screenshot_interval)
