"""The README's command list names every subcommand of `eboard` (it lacked doctor and
report), one line each, and no command that is gone."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from eboard.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def commands() -> set[str]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_readme_lists_every_command_once() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("The `eboard` command", 1)[1].split("```", 2)[1]
    listed = re.findall(r"^eboard ([a-z][a-z-]*)", block, re.M)
    assert sorted(listed) == sorted(commands()), listed
