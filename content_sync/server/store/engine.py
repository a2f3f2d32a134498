"""One engine per store URL: SQLite (WAL, a file beside the data) or PostgreSQL.

SQLite: pysqlite is put in autocommit and each transaction starts with ``BEGIN
IMMEDIATE`` (SQLAlchemy's documented recipe), so a writer takes the lock when it
begins instead of failing half-way when another connection wrote meanwhile.
PostgreSQL: psycopg 3, a small pool per process.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from content_sync.server.store.kinds import Engine as EngineKind

SQLITE_BUSY_MS = 10_000


def url_for(target: str | Path) -> str:
    """A SQLAlchemy URL for a PostgreSQL URL or a SQLite file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith(("postgresql+", "sqlite:")):
        return text
    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+pysqlite:///{path}"


def kind_of(url: str) -> EngineKind:
    return EngineKind.POSTGRESQL if make_url(url).get_backend_name() == "postgresql" \
        else EngineKind.SQLITE


def make_engine(url: str, pool_size: int = 4, for_reading: bool = False,
                background_checkpoint: bool = False) -> Engine:
    """``background_checkpoint``: SQLite's writer connections leave the WAL checkpoint
    to ``Store.checkpoint`` (run by the server on a thread of its own), so a commit
    never waits for pages to be copied back into the database file."""
    if kind_of(url) is EngineKind.POSTGRESQL:
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                             pool_pre_ping=True, pool_recycle=3600)
    engine = create_engine(url, poolclass=QueuePool, pool_size=pool_size,
                           max_overflow=pool_size,
                           connect_args={"check_same_thread": False,
                                         "timeout": SQLITE_BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit: we say BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA synchronous=FULL")  # an accepted play survives a power cut
        if background_checkpoint and not for_reading:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    if not for_reading:  # readers stay in autocommit: each SELECT its own snapshot
        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
