"""The design's one-way dependencies, enforced by reading every module's imports.

kiosk_config ← content_sync ← player: kiosk_config imports neither other part;
content_sync never imports Qt or player; the player never speaks HTTP.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "kiosk_config": ("content_sync", "player", "eboard", "PySide6", "requests", "vlc"),
    "content_sync": ("player", "eboard", "PySide6", "vlc"),
    "player": ("requests", "urllib3", "urllib.request", "http.client", "eboard",
               "content_sync.net.http", "content_sync.board.source", "content_sync.board.fetch",
               "content_sync.server", "flask", "waitress"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_one_way_dependencies(package: str) -> None:
    assert modules(package), f"no modules found in {package}/"
    offences = []
    for path in modules(package):
        for name in imports_of(path):
            for banned in FORBIDDEN[package]:
                if name == banned or name.startswith(banned + "."):
                    offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offences == []


def test_modules_stay_small() -> None:
    big = []
    for package in (*FORBIDDEN, "eboard"):
        for path in modules(package):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > 500:
                big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert big == [], "split these modules (the habit is ~400 lines)"
