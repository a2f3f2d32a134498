"""Media the player could not show: a hint for the sync side to re-verify them at once.

The player only reads the cache; when an image or text media fails to decode (or a clip
fails), its ``Writer`` thread records the media here. The next sync run
(content_sync/board/engine.py) takes the reports, re-verifies those files by SHA-256 at once
(not only at the daily full check, content_sync/board/repair.py) and fetches again the ones
that are wrong. A media that verifies but still does not decode (a decompression bomb,
a format the player refuses) just leaves the table. No HTTP here: the player imports it.
"""

from __future__ import annotations

import sqlite3

from content_sync.db import store


def report(conn: sqlite3.Connection, sha256: str, reason: str) -> None:
    """Record that ``sha256`` could not be shown (one transaction; the last reason wins)."""
    with store.transaction(conn):
        conn.execute("INSERT INTO damaged_media(sha256, at, reason) VALUES (?,?,?) "
                     "ON CONFLICT(sha256) DO UPDATE SET at=excluded.at, reason=excluded.reason",
                     (sha256, store.utcnow(), reason[:500]))


def take(conn: sqlite3.Connection) -> dict[str, str]:
    """The reported media (sha256 → reason), removed from the table. Reads only (no
    write) when the player reported nothing."""
    if conn.execute("SELECT 1 FROM damaged_media LIMIT 1").fetchone() is None:
        return {}
    with store.transaction(conn):
        got = {str(r[0]): str(r[1]) for r in
               conn.execute("SELECT sha256, reason FROM damaged_media")}
        conn.execute("DELETE FROM damaged_media")
    return got
