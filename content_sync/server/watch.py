"""Manifests written into the data folder by another program become events.

``eboard publish --to DIR`` writes ``boards/{id}/manifest.json`` without the server;
the watcher learns of it from the kernel (inotify, through watchfiles) — nothing is
polled — reads the version, and offers it to the board's long-poll. A manifest the
server itself stored (PUT) was offered when it was stored; the watcher sees the same
version and does nothing. One full scan runs at start, for what changed while the
server was down.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from content_sync.publish import manifest_version_in
from content_sync.server.hub import EventHub
from content_sync.server.store import EventType, ops

log = logging.getLogger(__name__)
FALLBACK_SCAN_S = 2.0


class ManifestWatcher:
    def __init__(self, hub: EventHub, data_dir: Path) -> None:
        self.hub = hub
        self.boards_dir = data_dir / "boards"
        self.versions: dict[str, int] = {}
        self._stat: dict[str, tuple[float, int]] = {}

    async def offer(self, board: str, version: int) -> None:
        """``version`` is now the board's manifest: one event, however many see it."""
        if not version or version == self.versions.get(board):
            return
        self.versions[board] = version
        if await self.hub.publish(board, EventType.MANIFEST, {"version": version},
                                  dedup=f"manifest:{version}") is not None:
            log.info("board %s: manifest version %d is now offered", board, version)

    def _read(self, boards: list[str] | None) -> dict[str, int]:
        """Versions of the named boards' manifests (all when None) whose file changed."""
        paths = ([self.boards_dir / b / "manifest.json" for b in boards] if boards is not None
                 else list(self.boards_dir.glob("*/manifest.json")))
        found = {}
        for path in paths:
            board = path.parent.name
            try:
                st = path.stat()
                key = (st.st_mtime, st.st_size)
                if self._stat.get(board) == key:
                    continue
                version = manifest_version_in(path.read_bytes())
            except OSError:
                continue
            self._stat[board] = key
            found[board] = version
        return found

    async def _offer_all(self, found: dict[str, int]) -> None:
        for board, version in found.items():
            await self.offer(board, version)

    async def run(self) -> None:
        self.versions = await self.hub.store.read(ops.last_manifest_versions)
        while not self.boards_dir.is_dir():  # nothing published yet: nothing to watch
            await asyncio.sleep(FALLBACK_SCAN_S)
        await self._offer_all(await asyncio.to_thread(self._read, None))
        try:
            from watchfiles import awatch

            async for changes in awatch(self.boards_dir, debounce=50, step=20,
                                        recursive=True, ignore_permission_denied=True):
                boards = sorted({Path(p).parent.name for _, p in changes
                                 if p.endswith("/manifest.json")})
                if boards:
                    await self._offer_all(await asyncio.to_thread(self._read, boards))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # e.g. the kernel's inotify watch limit
            log.warning("cannot watch %s (%s); scanning it every %.0f s instead (raise "
                        "fs.inotify.max_user_watches to watch it)", self.boards_dir, e,
                        FALLBACK_SCAN_S)
            while True:
                await asyncio.sleep(FALLBACK_SCAN_S)
                await self._offer_all(await asyncio.to_thread(self._read, None))
