"""Helpers shared by subcommands: the --config option and loading the config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk_config import Config, ConfigError, load_config


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="extra config file applied last, over /etc/eboard/eboard.toml and conf.d/*.toml",
    )


def config_or_exit(args: argparse.Namespace) -> Config:
    """Load the config; on problems print each one and exit with status 2."""
    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as e:
        print("eboard: the configuration has problems; nothing was started:", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        print("Run 'eboard config check' to see the effective config.", file=sys.stderr)
        raise SystemExit(2) from None
