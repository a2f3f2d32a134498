"""The server's store behind one interface, on SQLite or PostgreSQL.

``Store`` is the synchronous handle (migrations, tools, tests): each call its own
transaction. ``AsyncStore`` is what the server's event loop uses: reads run on a few
threads; writes go through a *group commit* — every write asked for while the
previous transaction was committing goes into the next one — so a thousand heartbeats
a second cost a few dozen transactions (and fsyncs), and a write's caller is answered
only once its transaction has committed (an accepted play is stored). The writer
gathers for up to ``GATHER_S`` before a small batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect, text

from content_sync.server.store import ops
from content_sync.server.store.engine import kind_of, make_engine, url_for
from content_sync.server.store.kinds import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_RELEASE = "0001"  # a v0.1.0 server.db has these tables and no alembic_version
MIGRATION_LOCK = 0x0EB0A4D  # pg_advisory_xact_lock key: one process migrates at a time
MAX_BATCH = 500
# A transaction costs ~0.35 ms beyond its writes (BEGIN IMMEDIATE, COMMIT, fsync) and
# a heartbeat ~0.12 ms inside one: a few milliseconds of gathering make the batches
# several times larger, which the writer thread (holding the GIL) pays for in CPU.
GATHER_S = 0.01
GATHER_ENOUGH = 64
CHECKPOINT_EVERY_S = 1.0


class Record(tuple[Any, ...]):
    """A row read by ``Store.execute``: by position or by column name, and ``dict(r)``."""

    _keys: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._keys.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._keys


class Store:
    """A synchronous, thread-safe handle on the server database."""

    def __init__(self, target: str | Path, pool_size: int = 4,
                 background_checkpoint: bool = False) -> None:
        self.url = url_for(target)
        self.kind = kind_of(self.url)
        self.background_checkpoint = background_checkpoint and self.kind is Engine.SQLITE
        self.engine = make_engine(self.url, pool_size=2 if self.kind is Engine.SQLITE
                                  else pool_size,
                                  background_checkpoint=self.background_checkpoint)
        # SQLite reads need no write lock: a second engine without BEGIN IMMEDIATE
        self._reader = make_engine(self.url, pool_size=pool_size, for_reading=True) \
            if self.kind is Engine.SQLITE else self.engine

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)})"

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a first-release file is stamped)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self.kind is Engine.POSTGRESQL:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            names = set(inspect(conn).get_table_names())
            if "events" in names and "alembic_version" not in names:
                log.info("%r: a first-release server database; taking it over", self)
                command.stamp(cfg, FIRST_RELEASE)
            command.upgrade(cfg, "head")

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file without blocking writers (SQLite)."""
        with self._reader.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        with self._reader.connect() as conn:
            return fn(conn, *args)

    def write(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args)

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[Record]:
        """Raw SQL in the driver's own parameter style (tools and tests)."""
        with self.engine.begin() as conn:
            result = conn.exec_driver_sql(sql, args)
            if not result.returns_rows:
                return []
            keys = tuple(result.keys())
            out = []
            for row in result:
                rec = Record(row)
                rec._keys = keys
                out.append(rec)
            return out

    # conveniences for tools and tests
    def boards(self) -> list[dict[str, Any]]:
        return self.read(ops.boards)

    def play_totals(self, board: str) -> dict[str, Any]:
        return self.read(ops.play_totals, board)

    def store_heartbeat(self, board: str, data: dict[str, Any]) -> None:
        self.write(ops.store_heartbeat, board, data)

    def commands(self, board: str) -> list[dict[str, Any]]:
        return self.read(ops.commands, board)

    def close(self) -> None:
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()


class AsyncStore:
    """The store for the event loop: reads on threads, writes by group commit."""

    def __init__(self, store: Store, readers: int = 4,
                 on_commit: Callable[[float, int], None] | None = None) -> None:
        """``on_commit(seconds, writes)``: told after each group commit (writer thread)."""
        self.store = store
        self.on_commit = on_commit
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="store-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="group-commit")
        if self.store.background_checkpoint:
            self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="store-checkpoint")
            self._checkpoints = loop.create_task(self._checkpoint(), name="wal-checkpoint")

    async def _checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await loop.run_in_executor(self._checkpointer, self.store.checkpoint)
            except Exception as e:  # the next one will do; say so once in a while
                log.warning("WAL checkpoint of %r failed: %s", self.store, e)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.store.read, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, args, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if len(self._pending) < GATHER_ENOUGH:
                await asyncio.sleep(GATHER_S)
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                outcomes = await loop.run_in_executor(self._writer, self._commit, batch)
                for (_fn, _args, fut), (ok, value) in zip(batch, outcomes, strict=True):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)

    def _commit(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]
                ) -> list[tuple[bool, Any]]:
        """All of ``batch`` in one transaction; if that fails, each in its own, so one
        bad write fails alone."""
        started = time.monotonic()
        try:
            with self.store.engine.begin() as conn:
                values = [fn(conn, *args) for fn, args, _ in batch]
            if self.on_commit is not None:
                self.on_commit(time.monotonic() - started, len(batch))
            return [(True, v) for v in values]
        except Exception as e:
            if len(batch) == 1:
                return [(False, e)]
        outcomes: list[tuple[bool, Any]] = []
        for item in batch:
            outcomes.extend(self._commit([item]))
        return outcomes

    async def close(self) -> None:
        while self._pending:  # what was asked is written before the store goes
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            self._checkpointer.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)

