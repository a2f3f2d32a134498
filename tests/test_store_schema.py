"""The store's schema: TABLES names every table ensure_schema makes, so an upgrade that
adds a table reaches databases made by an older version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from content_sync.db import store


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")}


def test_tables_lists_every_table_the_schema_makes(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    store.ensure_schema(conn)
    assert tables(conn) == set(store.TABLES)


def test_a_missing_table_is_added_to_an_existing_database(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "b.db")
    conn.execute("DROP TABLE refused_media")
    conn.close()
    conn = store.connect(tmp_path / "b.db")
    assert "refused_media" in tables(conn)
    assert store.generation(conn) == 0
