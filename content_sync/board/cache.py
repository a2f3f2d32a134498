"""The media cache: byte quota, least-recently-used eviction, partial and orphan clean-up.

Media referenced by the active manifest or a pending one is never evicted. A row is
deleted before its file, so a power cut in between leaves an orphan file (removed by
:func:`clean_orphans`), never a row without its file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from content_sync.board import durability, plan
from content_sync.db import store
from content_sync.protocol import SHA256_RE, MediaInfo

log = logging.getLogger(__name__)


def partial_bytes(cache_dir: Path) -> int:
    d = store.partial_dir(cache_dir)
    if not d.is_dir():
        return 0
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file() and not p.is_symlink())


def evict(conn: sqlite3.Connection, cache_dir: Path, sha: str) -> None:
    store.forget_media(conn, sha)
    store.media_path(cache_dir, sha).unlink(missing_ok=True)


def make_room(conn: sqlite3.Connection, cache_dir: Path, needed: int, quota: int,
              keep: set[str]) -> bool:
    """Evict unreferenced media (LRU first, as :func:`plan.room` decides) until ``needed``
    more bytes fit in ``quota``.

    Returns whether they fit. ``keep`` is added to what the database says is referenced.
    """
    use = plan.CacheUse(tuple(store.media_by_lru(conn)),
                        store.media_bytes(conn) + partial_bytes(cache_dir),
                        frozenset(store.referenced_media(conn) | keep))
    decided = plan.room(use, needed, quota)
    for sha, size in decided.evict:
        evict(conn, cache_dir, sha)
        log.info("evicted media %s… (%d bytes, least recently used) to stay within the "
                 "cache quota", sha[:12], size)
    return decided.fits


def clean_partials(cache_dir: Path, keep: set[str]) -> int:
    """Delete partial downloads (and their sidecars) of media not in ``keep``."""
    d = store.partial_dir(cache_dir)
    if not d.is_dir():
        return 0
    removed = 0
    for p in d.iterdir():
        name = p.name.split(".", 1)[0]
        if name not in keep:
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def clean_orphans(conn: sqlite3.Connection, cache_dir: Path) -> int:
    """Delete files in media/ that the database does not know (e.g. after a power cut)."""
    d = store.media_dir(cache_dir)
    if not d.is_dir():
        return 0
    known = store.known_media(conn)
    removed = 0
    for p in d.iterdir():
        if p.name not in known or not SHA256_RE.match(p.name):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def adopt(cache_dir: Path, need: dict[str, MediaInfo]) -> set[str]:
    """Those of ``need`` already in media/ with the right size and hash (no row yet:
    a crash between rename and record). A file that does not verify is deleted."""
    found = set()
    for sha, info in need.items():
        p = store.media_path(cache_dir, sha)
        try:
            if p.stat().st_size == info.size:
                with open(p, "rb") as f:
                    if hashlib.file_digest(f, "sha256").hexdigest() == sha:
                        found.add(sha)
                        continue
        except FileNotFoundError:
            continue
        p.unlink(missing_ok=True)
    return found


def record(conn: sqlite3.Connection, cache_dir: Path, media: dict[str, MediaInfo]) -> None:
    """Make the fetched files durable (one sync of the file system holding media/), then
    record them in one transaction."""
    if not media:
        return
    durability.sync_filesystem(store.media_dir(cache_dir))
    with store.transaction(conn):
        for sha, info in media.items():
            store.record_media(conn, sha, info.size, info.type)


def missing_files(conn: sqlite3.Connection, cache_dir: Path, shas: set[str]) -> set[str]:
    """Those of ``shas`` recorded in the database whose file is gone; their rows are removed."""
    try:
        present = set(os.listdir(store.media_dir(cache_dir)))  # one directory read, not N stats
    except FileNotFoundError:
        present = set()
    gone = shas - present
    for s in gone:
        store.forget_media(conn, s)
    return gone


def adopt_and_record(conn: sqlite3.Connection, cache_dir: Path,
                     need: Mapping[str, MediaInfo]) -> set[str]:
    """:func:`adopt` those of ``need`` found in media/, and :func:`record` them."""
    adopted = adopt(cache_dir, dict(need))
    record(conn, cache_dir, {s: need[s] for s in adopted})
    return adopted


def reconcile(conn: sqlite3.Connection, cache_dir: Path,
              media: Mapping[str, MediaInfo]) -> frozenset[str]:
    """Those of ``media`` in the cache, once the cache and its rows agree: a row whose file
    is gone is dropped, a file without its row adopted by hash; then orphan files and the
    partial downloads of media no longer missing are removed."""
    have = store.known_media(conn) & set(media)
    have -= missing_files(conn, cache_dir, have)
    adopted = adopt_and_record(conn, cache_dir, {s: media[s] for s in sorted(set(media) - have)})
    clean_orphans(conn, cache_dir)
    clean_partials(cache_dir, keep=set(media) - have - adopted)
    return frozenset(have | adopted)
