"""docs/ARCHITECTURE.md's module map names every package, and only packages that exist.

A package is a directory with an ``__init__.py`` under one of the project's top-level
packages; the map names it in backticks with a trailing slash, e.g. ``content_sync/board/``.
Adding a package without a line in the map (or removing one and leaving its line) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("content_sync", "player", "kiosk_config", "eboard")
NAMED = re.compile(r"`((?:" + "|".join(TOP) + r")(?:/\w+)*/)`")


def map_section() -> str:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index("\n## Module map\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def packages() -> set[str]:
    return {init.parent.relative_to(ROOT).as_posix() + "/"
            for top in TOP for init in (ROOT / top).rglob("__init__.py")}


def test_every_package_is_in_the_module_map() -> None:
    missing = packages() - set(NAMED.findall(map_section()))
    assert not missing, f"no line in docs/ARCHITECTURE.md's Module map for {sorted(missing)}"


def test_the_module_map_names_only_packages_that_exist() -> None:
    gone = set(NAMED.findall(map_section())) - packages()
    assert not gone, f"docs/ARCHITECTURE.md's Module map names missing packages {sorted(gone)}"


def test_the_map_sees_the_known_packages() -> None:
    """Guards the two tests above against a pattern or a walk that finds nothing."""
    found = packages()
    assert {"content_sync/", "content_sync/board/", "player/", "eboard/commands/"} <= found
