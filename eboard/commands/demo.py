"""``eboard demo``: run the whole chain locally with bundled demo content."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the reference source with demo content, the sync daemon and the player; "
        "without a display the player runs under Xvfb and saves screenshots to demo-output/",
    )
    p.add_argument("--duration", type=float, default=0,
                   help="stop everything after this many seconds (0 = until Ctrl-C)")
    p.add_argument("--screenshot-interval", type=float, default=5.0,
                   help="seconds between screenshots when running under Xvfb (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eboard.demo import run_demo

    return run_demo(args.duration, screenshot_interval=args.screenshot_interval)
