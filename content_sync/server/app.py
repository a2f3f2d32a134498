"""The reference source server (eboard/1) as an ASGI application (Starlette).

One event loop holds every board's long-poll as a parked future, so thousands of idle
boards cost memory, not threads; the store's reads run on a few threads and its writes
by group commit (``store``); manifests written into the folder by other programs
arrive from the kernel (``watch``); on PostgreSQL, other server processes' events
arrive by ``LISTEN`` (``listen``). Routes: ``static`` (manifests, media),
``board_routes`` (what boards call), ``operator_routes`` (what operators call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from content_sync.server import board_routes, operator_routes, static
from content_sync.server.guard import BOARD_REQUESTS_PER_MINUTE, BoardBudget
from content_sync.server.http import BODY_IDLE_S
from content_sync.server.hub import EventHub
from content_sync.server.listen import listen
from content_sync.server.metrics import Metrics
from content_sync.server.store import AsyncStore, Engine, Store, ops
from content_sync.server.tokens import Tokens
from content_sync.server.watch import ManifestWatcher

log = logging.getLogger(__name__)
# ~2 KB a heartbeat: 10,000 boards at one a minute write ~1.2 GB an hour of history
KEEP_HEARTBEATS_S = 6 * 3600
PRUNE_EVERY_S = 600.0


@dataclass
class SourceServer:
    """Everything one server process runs, reachable from a route as
    ``request.app.state.source``."""

    data_dir: Path
    tokens: Tokens
    db: Store
    long_poll_max: float = 25.0
    watch_folder: bool = True
    keep_heartbeats_s: float = KEEP_HEARTBEATS_S
    body_idle_s: float = BODY_IDLE_S
    budget: BoardBudget = field(default_factory=BoardBudget)
    metrics: Metrics = field(default_factory=Metrics)
    store: AsyncStore = field(init=False)
    hub: EventHub = field(init=False)
    watcher: ManifestWatcher = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    manage_gc: bool = False  # the process is ours (``serve``): collect on our schedule

    async def start(self) -> None:
        await asyncio.to_thread(self.db.migrate)
        self.store = AsyncStore(self.db, on_commit=self.metrics.committed)
        self.store.start()
        self.hub = EventHub(self.store, notified=self.db.kind is Engine.POSTGRESQL)
        await self.hub.start()
        self.watcher = ManifestWatcher(self.hub, self.data_dir)
        if self.watch_folder:
            self._task(self.watcher.run(), "manifest-watcher")
        else:
            self.watcher.versions = await self.store.read(ops.last_manifest_versions)
        if self.db.kind is Engine.POSTGRESQL:
            self._task(listen(self.hub, self.db.url), "pg-listen")
        self._task(self._prune(), "prune-heartbeats")
        self.metrics.live(self._live)
        self.metrics.watch_gc()
        if self.manage_gc:
            self._task(collect_garbage(), "gc")
        log.info("source server on %s: %d boards' events known, store %r",
                 self.data_dir, len(self.hub.latest), self.db)

    def _task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)

    def _live(self) -> dict[str, tuple[str, float]]:
        return {
            "eboard_source_longpolls_parked": ("Long-polls waiting for an event",
                                               self.hub.waiting),
            "eboard_source_boards_with_events": ("Boards with an event stored",
                                                 len(self.hub.latest)),
            "eboard_source_refused_budget": ("Requests refused by a board's budget (429)",
                                             self.budget.refused),
            "eboard_source_answered_from_memory": ("Woken long-polls answered without a "
                                                   "query", self.hub.answered_from_memory),
        }

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("server task %s stopped: %r", task.get_name(), task.exception())

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            cutoff = (datetime.now(UTC) - timedelta(seconds=self.keep_heartbeats_s)).isoformat(
                timespec="milliseconds")
            try:
                while await self.store.write(ops.prune_heartbeats, cutoff, 5000) >= 5000:
                    await asyncio.sleep(0.1)
            except Exception:
                log.exception("pruning old heartbeats failed; trying again in %.0f s",
                              PRUNE_EVERY_S)

    async def stop(self) -> None:
        self.metrics.unwatch_gc()
        self.hub.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.close()
        self.db.close()


GC_YOUNG_S = 0.5
GC_MIDDLE_EVERY = 6  # young collections
GC_FULL_S = 900.0


async def collect_garbage() -> None:
    """Python's collector on a schedule instead of on allocation counts.

    With 10,000 boards connected the heap holds a few million objects, most of them
    long-lived (connections, parked long-polls); left automatic, a full collection
    (the event loop standing still while it walks them all) came every few seconds
    under load. Here: the young generation every 0.5 s and the middle one every 3 s
    (each walks only what survived since the last: tens of milliseconds), everything
    every 15 minutes; what startup made is frozen out of the walk. A parked long-poll
    lives 25 s and so reaches the old generation, where its end frees it (reference
    counts) without a walk.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        n = 0
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(GC_YOUNG_S)
            n += 1
            if time.monotonic() - last_full >= GC_FULL_S:
                gc.collect(2)
                last_full = time.monotonic()
            else:
                gc.collect(1 if n % GC_MIDDLE_EVERY == 0 else 0)
    finally:
        gc.enable()


def create_app(data_dir: Path, tokens: Tokens | None = None, long_poll_max: float = 25.0,
               store: str | Path | None = None, watch_folder: bool = True,
               board_requests_per_minute: int = BOARD_REQUESTS_PER_MINUTE,
               body_idle_s: float = BODY_IDLE_S,
               keep_heartbeats_s: float = KEEP_HEARTBEATS_S,
               manage_gc: bool = False) -> Starlette:
    """The server for ``data_dir``; its store is ``store`` (a PostgreSQL URL or a SQLite
    file), by default ``data_dir/.server/server.db``."""
    data_dir = data_dir.resolve()
    source = SourceServer(
        data_dir=data_dir, tokens=tokens or Tokens(),
        db=Store(store or data_dir / ".server" / "server.db", background_checkpoint=True),
        long_poll_max=long_poll_max, watch_folder=watch_folder,
        budget=BoardBudget(board_requests_per_minute), body_idle_s=body_idle_s,
        keep_heartbeats_s=keep_heartbeats_s, manage_gc=manage_gc)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await source.start()
        try:
            yield
        finally:
            await source.stop()

    routes = [
        Route("/boards/{board}/manifest.json", static.manifest, methods=["GET", "HEAD"]),
        Route("/media/{name}", static.media, methods=["GET", "HEAD"]),
        *board_routes.ROUTES,
        *operator_routes.ROUTES,
        Route("/metrics", source.metrics.endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.source = source
    return app
