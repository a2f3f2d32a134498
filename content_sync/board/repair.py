"""Media damaged on disk after activation: found, dropped and fetched again.

A media file is verified once, when it is downloaded. Afterwards a bad sector, a bit
flip or a technician's ``rm`` can damage it behind our back. So every sync run, also
when the board is up to date, :func:`check` looks at each media the board needs (the
active, pending and interim manifests): a cheap ``stat`` each run (missing, or not the
recorded size), and a full SHA-256 re-verification when ``full`` is asked (the engine
does it at its first run and then at most once a day; see :data:`FULL_EVERY_S`), which
also catches a same-size corruption. A damaged media loses its row and its file (row
first, as in cache.py), so the player skips its items meanwhile, and the engine fetches
it again through the usual download pipeline while the manifest stays active.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from content_sync.db import store

log = logging.getLogger(__name__)
FULL_EVERY_S = 24 * 3600
VERIFIED_AT = "sync.media_verified_at"  # meta key: last full re-verification (ISO, UTC)


def _damage(path: Path, sha: str, size: int, full: bool) -> str | None:
    """Why the file of ``sha`` is damaged, or None when it looks (or verifies) right."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "its file is gone from the cache"
    if st.st_size != size:
        return f"its file is {st.st_size} bytes, not the {size} verified at download"
    if full:
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != sha:
                return "its file no longer matches its SHA-256 (damaged on disk)"
    return None


def check(conn: sqlite3.Connection, cache_dir: Path, shas: set[str],
          full: bool, hashed: set[str] | None = None) -> dict[str, str]:
    """Those of ``shas`` recorded in the database whose file is damaged, with why.

    ``full``: verify every SHA-256; else only those in ``hashed`` (e.g. reported by the
    player, content_sync/db/damaged.py), the others by size. Their rows and files are
    removed, so the next fetch brings them again."""
    rows = {str(r[0]): int(r[1]) for r in conn.execute("SELECT sha256, size FROM media")}
    damaged: dict[str, str] = {}
    for sha in sorted(shas & rows.keys()):
        path = store.media_path(cache_dir, sha)
        try:
            why = _damage(path, sha, rows[sha], full or sha in (hashed or set()))
        except OSError as e:  # an unreadable sector: as damaged as a wrong byte
            why = f"its file cannot be read ({e.strerror or e})"
        if why is not None:
            damaged[sha] = why
            store.forget_media(conn, sha)
            path.unlink(missing_ok=True)
    if full:
        with store.transaction(conn):
            store.set_meta(conn, VERIFIED_AT, datetime.now(UTC).isoformat(timespec="seconds"))
    return damaged


def full_due(conn: sqlite3.Connection, now: datetime | None = None) -> bool:
    """Whether the last full re-verification is more than :data:`FULL_EVERY_S` ago."""
    raw = store.get_meta(conn, VERIFIED_AT)
    if raw is None:
        return True
    try:
        last = datetime.fromisoformat(raw)
    except ValueError:
        return True
    age = ((now or datetime.now(UTC)) - last).total_seconds()
    return age >= FULL_EVERY_S or age < 0  # a clock set back: verify again
