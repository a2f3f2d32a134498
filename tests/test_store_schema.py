"""The store's schema: every table is declared in content_sync/db/schema.py, and an upgrade
that adds a table reaches databases made by an older version (see test_db_migrations.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from content_sync.db import schema, store


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")}


def test_a_new_file_gets_every_declared_table(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    assert schema.ensure(conn) is schema.Opened.CREATED
    assert len(tables(conn)) == sum(s.startswith("CREATE TABLE") for s in schema.SCHEMA)
    assert schema.stored_version(conn) == schema.SCHEMA_VERSION


def test_a_missing_table_is_added_to_an_existing_database(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "b.db")
    conn.execute("DROP TABLE refused_media")
    store.set_meta(conn, schema.VERSION_KEY, "1")  # as a box of the first release left it
    conn.close()
    conn = store.connect(tmp_path / "b.db")
    assert "refused_media" in tables(conn)
    assert store.generation(conn) == 0
