"""``eboard play``: placeholder until implemented."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("play", help="(not yet implemented)")
    p.set_defaults(func=lambda args: 1)
