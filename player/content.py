"""What the player can show: the active manifest and the overlays, read from SQLite.

No Qt here. Reading is cheap: ``generation`` is polled and the rest is read only
when it changes. A manifest or overlay that no longer parses is logged and left
out; it never stops the screen.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from content_sync.db import store
from content_sync.protocol import manifest as mf
from player.schedule import OverlayPlaylist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Content:
    generation: int = -1
    version: int = 0  # active manifest version, 0 = none
    issued_at: datetime | None = None
    playlists: tuple[mf.Playlist, ...] = ()
    ticker: tuple[mf.TickerLine, ...] = ()
    media_types: dict[str, str] = field(default_factory=dict)
    available: frozenset[str] = frozenset()  # media present in the cache

    def media_type(self, sha: str | None) -> str:
        return self.media_types.get(sha or "", "")


def open_db(path: Path) -> tuple[sqlite3.Connection, bool]:
    """The shared database for the player: (connection, writable).

    On a cache it cannot write (disk full, remounted read-only) the player still
    shows what is there: it reads through a read-only connection, or, where SQLite
    cannot even create its shared-memory file, as an immutable file.
    """
    try:
        conn = store.connect(path)
        store.generation(conn)
        return conn, True
    except (sqlite3.Error, OSError) as e:
        first = e
    if not path.is_file():
        raise first
    for query in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            store.generation(conn)
        except sqlite3.Error:
            continue
        log.error("cannot open %s for writing (%s); showing its content read-only, "
                  "proof of play waits in memory", path, first)
        return conn, False
    raise first


def load(conn: sqlite3.Connection, cache_dir: Path, gen: int | None = None) -> Content:
    """Everything schedulable now: manifest playlists first, then overlays."""
    gen = store.generation(conn) if gen is None else gen
    stored = store.active_manifest(conn)
    playlists: list[mf.Playlist] = []
    ticker: tuple[mf.TickerLine, ...] = ()
    media_types: dict[str, str] = {}
    version = 0
    issued_at = None
    if stored is not None:
        try:
            m = mf.parse(stored.body)
        except mf.ManifestError as e:
            log.error("active manifest %s cannot be read: %s", stored.version, e)
        else:
            version, issued_at = m.version, m.issued_at
            playlists.extend(m.playlists)
            ticker = m.ticker
            media_types = {sha: info.type for sha, info in m.media.items()}
    seen = {pl.id for pl in playlists}
    for body in store.overlays(conn):
        try:
            pl: mf.Playlist = OverlayPlaylist.model_validate_json(body)
        except ValidationError as e:
            log.error("an overlay playlist was left out: %s", e.errors()[0]["msg"])
            continue
        if pl.id in seen:
            log.warning("overlay playlist %r has the id of another playlist; left out", pl.id)
            continue
        seen.add(pl.id)
        playlists.append(pl)
    needed = {it.media for pl in playlists for it in pl.items if it.media}
    available = frozenset(m for m in needed if store.media_path(cache_dir, m).is_file())
    missing = needed - available
    if missing:
        log.warning("%d media file(s) missing from the cache, e.g. %s", len(missing),
                    sorted(missing)[0][:12])
    return Content(gen, version, issued_at, tuple(playlists), ticker, media_types, available)


def ticker_text(content: Content, now: datetime, separator: str = "     •     ") -> str:
    lines = [
        t.text for t in content.ticker
        if (t.valid_from is None or t.valid_from <= now)
        and (t.valid_until is None or now < t.valid_until)
    ]
    return separator.join(" ".join(line.split()) for line in lines)
