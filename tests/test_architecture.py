"""The design's one-way dependencies, enforced by reading every module's imports.

An allow-list: each package names the first-party packages (through their faces) and the
third-party distributions it may import; anything else fails. kiosk_config ← content_sync
← player; content_sync never imports Qt or the player; the player imports only what its
process needs (the shared database, the protocol's types, the runtime helpers) and never
the HTTP side. Across packages, imports go through a package's face: ``from
content_sync.board import Engine`` where ``Engine`` is in ``content_sync.board.__all__``,
never ``content_sync.board.engine``. Tests, benchmarks and fuzzers may import the rooms.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# package -> what it may import besides the standard library and itself
ALLOWED: dict[str, set[str]] = {
    "kiosk_config": {"pydantic"},
    "content_sync.protocol": {"cryptography", "pydantic"},
    "content_sync.db": {"content_sync.protocol", "sqlite_utils"},
    "content_sync.runtime": set(),
    "content_sync.net": {"kiosk_config", "requests", "urllib3"},
    "content_sync.board": {"content_sync.db", "content_sync.net", "content_sync.protocol",
                           "content_sync.runtime", "kiosk_config", "PIL", "requests", "urllib3"},
    "content_sync.report": {"content_sync.board", "content_sync.db", "content_sync.net",
                            "content_sync.protocol", "content_sync.runtime", "kiosk_config",
                            "requests"},
    "content_sync.cap": {"content_sync.db", "content_sync.net", "content_sync.protocol",
                         "kiosk_config", "cryptography", "defusedxml", "lxml", "pydantic",
                         "requests", "signxml"},
    "content_sync.publish": {"content_sync.protocol", "cryptography", "requests"},
    # the server (the `server` extra): ASGI app and server, store, migrations, templates
    "content_sync.server": {"content_sync.protocol", "content_sync.publish",
                            "content_sync.runtime", "alembic", "jinja2",
                            "markupsafe", "prometheus_client", "psycopg", "sqlalchemy",
                            "starlette", "uvicorn",
                            "watchfiles"},
    # content_sync/daemon.py: the sync process, scheduling the rooms' jobs (and bounding
    # the requests of each, content_sync.net)
    "content_sync": {"content_sync.board", "content_sync.cap", "content_sync.db",
                     "content_sync.net", "content_sync.report", "content_sync.runtime",
                     "kiosk_config", "apscheduler"},
    "player": {"content_sync.db", "content_sync.protocol", "content_sync.runtime",
               "kiosk_config", "PIL", "PySide6", "pydantic", "vlc"},
    "eboard": {"content_sync.board", "content_sync.daemon", "content_sync.db",
               "content_sync.net", "content_sync.protocol", "content_sync.publish",
               "content_sync.report", "content_sync.runtime", "content_sync.server",
               "kiosk_config", "player", "requests"},
}
FIRST_PARTY = ("kiosk_config", "content_sync", "player", "eboard")


def owner(path: Path) -> str:
    """The package a module belongs to: ``content_sync.board`` for content_sync/board/x.py."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "content_sync" and len(parts) > 2:
        return f"content_sync.{parts[1]}"
    return parts[0]


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every absolute import of a file; names empty for ``import x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def package_of(module: str) -> str:
    """What an imported module counts as: a first-party package or a top-level distribution."""
    parts = module.split(".")
    if parts[0] == "content_sync" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def all_modules() -> list[Path]:
    return [p for top in FIRST_PARTY for p in modules(top)]


def test_every_package_has_an_allow_list() -> None:
    assert {owner(p) for p in all_modules()} <= set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_are_allowed(package: str) -> None:
    offences = []
    for path in all_modules():
        if owner(path) != package:
            continue
        for module, _ in imported(path):
            if module.split(".")[0] in STDLIB:
                continue
            pkg = package_of(module)
            if pkg == package or pkg in ALLOWED[package]:
                continue
            offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_other_packages_import_the_face_only() -> None:
    """``from content_sync.X import name`` with name in X's ``__all__``; no room by path."""
    offences = []
    for path in all_modules():
        mine = owner(path)
        for module, names in imported(path):
            pkg = package_of(module)
            if not pkg.startswith("content_sync.") or pkg == mine:
                continue
            where = f"{path.relative_to(ROOT)}: {module}"
            if module != pkg:
                offences.append(f"{where} is a room of {pkg}; import its face")
                continue
            face = set(getattr(importlib.import_module(pkg), "__all__", ()))
            offences.extend(f"{where} has no {n} in __all__" for n in names if n not in face)
    assert offences == []


def test_a_face_exports_only_what_it_has() -> None:
    for path in sorted((ROOT / "content_sync").glob("*/__init__.py")):
        pkg = f"content_sync.{path.parent.name}"
        face = importlib.import_module(pkg)
        assert hasattr(face, "__all__"), f"{pkg} has no __all__"
        assert [n for n in face.__all__ if not hasattr(face, n)] == []


def test_the_player_does_not_load_the_http_side() -> None:
    """Importing every face the player uses pulls in neither requests nor Flask, nor the
    cryptography library (~8 MB) of the signature checks it never makes."""
    code = ("import sys, player.app, content_sync.db, content_sync.protocol, "
            "content_sync.runtime; "
            "print(sorted(m for m in ('requests', 'urllib3', 'flask', 'waitress', "
            "'content_sync.net', 'content_sync.board', 'cryptography') if m in sys.modules))")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_sync_daemon_does_not_load_the_server() -> None:
    """The box carries no server: the sync process's imports pull in none of the server
    extra's libraries (a board's environment and update bundle stay small)."""
    code = ("import sys, content_sync.daemon, eboard.cli; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'sqlalchemy', 'alembic', "
            "'psycopg', 'limits', 'watchfiles', 'content_sync.server') if m in sys.modules))")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_modules_stay_small() -> None:
    big = []
    for package in FIRST_PARTY:
        for path in modules(package):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > 500:
                big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert big == [], "split these modules (the habit is ~400 lines)"
