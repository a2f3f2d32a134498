"""Shared test set-up: Qt offscreen, no reading of the machine's /etc/eboard, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_etc(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point EBOARD_ETC at an empty folder so tests never read the box's real config."""
    etc = tmp_path_factory.mktemp("etc-eboard")
    monkeypatch.setenv("EBOARD_ETC", str(etc))
    return etc


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (tests/kit/postgres.py), one per test session,
    started the first time a test asks for it; an error if PostgreSQL is not installed."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(postgres: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """The DSN of a database of this test's own in ``postgres``, dropped after it
    (with the connections still open to it)."""
    with postgres.fresh_database(request.node.name) as dsn:
        yield dsn
