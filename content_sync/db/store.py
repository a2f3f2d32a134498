"""The shared SQLite database (WAL) in the cache directory.

Only content_sync writes manifests and media rows; the player writes proof-of-play
records into the outbox and its own status. ``generation`` in ``meta`` increases
with every activation, so the player's change check is one cheap query.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from content_sync.db import schema


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def media_dir(cache_dir: Path) -> Path:
    return cache_dir / "media"


def partial_dir(cache_dir: Path) -> Path:
    return cache_dir / "partial"


def media_path(cache_dir: Path, sha256: str) -> Path:
    return media_dir(cache_dir) / sha256


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with WAL, a busy timeout and full durability, brought to the
    current schema (content_sync/db/schema.py: one read when it is there already).
    ``readonly`` skips that (the caller only reads, and copes with a missing table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    if not readonly:
        try:
            schema.ensure(conn)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: all of it is on disk, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


def generation(conn: sqlite3.Connection) -> int:
    return int(get_meta(conn, "generation") or 0)


@dataclass(frozen=True)
class StoredManifest:
    version: int
    body: bytes
    keyid: str


def active_manifest(conn: sqlite3.Connection) -> StoredManifest | None:
    """What the screen shows: the interim manifest when there is one (an emergency ahead
    of its manifest's other media, content_sync/board/interim.py), else the active manifest."""
    return interim_manifest(conn) or complete_manifest(conn)


def complete_manifest(conn: sqlite3.Connection) -> StoredManifest | None:
    """The active manifest: the newest one whose every media is present and verified."""
    row = conn.execute(
        "SELECT m.version, m.body, m.keyid FROM manifests m "
        "JOIN meta ON meta.key='active_version' AND CAST(meta.value AS INTEGER)=m.version"
    ).fetchone()
    if row is None:
        return None
    return StoredManifest(int(row["version"]), bytes(row["body"]), str(row["keyid"]))


def active_version(conn: sqlite3.Connection) -> int:
    return int(get_meta(conn, "active_version") or 0)


def record_media(conn: sqlite3.Connection, sha256: str, size: int, mtype: str) -> None:
    now = utcnow()
    conn.execute(
        "INSERT INTO media(sha256, size, type, verified_at, last_used) VALUES (?,?,?,?,?) "
        "ON CONFLICT(sha256) DO UPDATE SET verified_at=excluded.verified_at",
        (sha256, size, mtype, now, now),
    )


def known_media(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT sha256 FROM media")}


def activate(
    conn: sqlite3.Connection, version: int, board: str, issued_at: str,
    body: bytes, keyid: str, media: list[str],
) -> None:
    """Make ``version`` active in one transaction, if every media is recorded."""
    with transaction(conn):
        if version <= active_version(conn):
            raise ValueError(f"version {version} is not above the active one")
        have = known_media(conn)
        missing = [m for m in media if m not in have]
        if missing:
            raise ValueError(f"{len(missing)} media not present, e.g. {missing[0]}")
        conn.execute("UPDATE manifests SET state='superseded' WHERE state IN ('active','pending')")
        conn.execute(
            "INSERT INTO manifests(version, board, state, issued_at, received_at, keyid, body)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(version) DO UPDATE SET state='active'",
            (version, board, "active", issued_at, utcnow(), keyid, body),
        )
        now = utcnow()
        conn.executemany(
            "UPDATE media SET last_used=? WHERE sha256=?", [(now, m) for m in media]
        )
        set_meta(conn, "active_version", str(version))
        conn.execute("DELETE FROM meta WHERE key='interim'")  # the complete one takes over
        bump_generation(conn)


def _interim(conn: sqlite3.Connection) -> dict[str, Any] | None:
    raw = get_meta(conn, "interim")
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("base") != active_version(conn):
        return None  # stale (cannot happen: activation clears it); never shown
    return data


def interim_manifest(conn: sqlite3.Connection) -> StoredManifest | None:
    data = _interim(conn)
    if data is None:
        return None
    return StoredManifest(int(data["version"]), str(data["body"]).encode("utf-8"),
                          str(data["keyid"]))


def interim_version(conn: sqlite3.Connection) -> int | None:
    data = _interim(conn)
    return None if data is None else int(data["version"])


def record_refusal(conn: sqlite3.Connection, subject: str, reason: str) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO refusals(at, subject, reason) VALUES (?,?,?)",
            (utcnow(), subject, reason),
        )
        conn.execute(
            "DELETE FROM refusals WHERE id NOT IN "
            "(SELECT id FROM refusals ORDER BY id DESC LIMIT 200)"
        )


def recent_refusals(conn: sqlite3.Connection, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at, subject, reason FROM refusals ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [dict(r) for r in rows]


def set_status(conn: sqlite3.Connection, component: str, data: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO status(component, updated_at, data) VALUES (?,?,?) "
        "ON CONFLICT(component) DO UPDATE SET updated_at=excluded.updated_at, data=excluded.data",
        (component, utcnow(), json.dumps(data, ensure_ascii=False, default=str)),
    )


def get_status(conn: sqlite3.Connection, component: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT updated_at, data FROM status WHERE component=?", (component,)
    ).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row["data"])
    data["updated_at"] = row["updated_at"]
    return data


def add_play(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    """Append one proof-of-play record to the outbox (its own transaction)."""
    conn.execute(
        "INSERT OR IGNORE INTO plays(id, item_id, playlist_id, manifest_version, started_at,"
        " ended_at, duration_s, outcome, detail) VALUES (:id, :item_id, :playlist_id,"
        " :manifest_version, :started_at, :ended_at, :duration_s, :outcome, :detail)",
        {"detail": "", **record},
    )


def pending_plays(conn: sqlite3.Connection, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM plays ORDER BY started_at LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def ack_plays(conn: sqlite3.Connection, ids: list[str]) -> None:
    with transaction(conn):
        conn.executemany("DELETE FROM plays WHERE id=?", [(i,) for i in ids])


def outbox_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM plays").fetchone()[0])


def bump_generation(conn: sqlite3.Connection) -> None:
    """Tell the player that what it should show may have changed (call in a transaction)."""
    set_meta(conn, "generation", str(generation(conn) + 1))


def replace_overlays(conn: sqlite3.Connection, source: str, playlists: dict[str, str]) -> None:
    """Replace every overlay playlist of ``source`` (e.g. 'cap') in one transaction.

    An overlay is a playlist JSON (the manifest's Playlist shape, text items only)
    that comes from a trusted local source such as a CAP feed rather than from the
    signed manifest. The player schedules overlays beside the manifest's playlists.
    """
    with transaction(conn):
        old = {r[0]: r[1] for r in conn.execute(
            "SELECT id, body FROM overlays WHERE source=?", (source,))}
        if old == playlists:
            return
        conn.execute("DELETE FROM overlays WHERE source=?", (source,))
        now = utcnow()
        conn.executemany(
            "INSERT INTO overlays(id, source, updated_at, body) VALUES (?,?,?,?)",
            [(pid, source, now, body) for pid, body in playlists.items()],
        )
        bump_generation(conn)


def overlays(conn: sqlite3.Connection) -> list[str]:
    """Every overlay playlist's JSON body, in a stable order."""
    return [r[0] for r in conn.execute("SELECT body FROM overlays ORDER BY source, id")]


# --- content_sync: pending manifests, refusals, cache bookkeeping -----------------------

def save_pending(
    conn: sqlite3.Connection, version: int, board: str, issued_at: str, body: bytes, keyid: str,
) -> list[int]:
    """Record ``version`` as pending; drop older pending ones. Returns the dropped versions."""
    with transaction(conn):
        dropped = [int(r[0]) for r in conn.execute(
            "SELECT version FROM manifests WHERE state='pending' AND version<?", (version,))]
        conn.execute("UPDATE manifests SET state='dropped', reason=? "
                     "WHERE state='pending' AND version<?",
                     (f"overtaken by version {version}", version))
        conn.execute(
            "INSERT INTO manifests(version, board, state, issued_at, received_at, keyid, body)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(version) DO NOTHING",
            (version, board, "pending", issued_at, utcnow(), keyid, body),
        )
    return dropped


def refuse_manifest(conn: sqlite3.Connection, version: int, reason: str) -> None:
    """Mark a pending manifest as refused (e.g. one of its media is a bomb)."""
    with transaction(conn):
        conn.execute("UPDATE manifests SET state='refused', reason=? WHERE version=?",
                     (reason, version))


def manifest_state(conn: sqlite3.Connection, version: int) -> tuple[str, str] | None:
    row = conn.execute("SELECT state, reason FROM manifests WHERE version=?",
                       (version,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1] or ""))


def manifest_body(conn: sqlite3.Connection, version: int) -> bytes | None:
    """The signed payload recorded for ``version`` (in any state), or None."""
    row = conn.execute("SELECT body FROM manifests WHERE version=?", (version,)).fetchone()
    return None if row is None else bytes(row[0])


def pending_version(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT max(version) FROM manifests WHERE state='pending'").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def referenced_media(conn: sqlite3.Connection) -> set[str]:
    """Media named by the active manifest or a pending one (never evicted)."""
    refs: set[str] = set()
    shown = interim_manifest(conn)
    bodies = [r[0] for r in conn.execute(
        "SELECT body FROM manifests WHERE state IN ('active','pending')")]
    for body in bodies + ([shown.body] if shown else []):
        try:
            media = json.loads(body).get("media", {})
        except (ValueError, AttributeError):
            continue
        if isinstance(media, dict):
            refs.update(media)
    return refs


def media_by_lru(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(sha256, size) of every recorded media, least recently used first."""
    return [(str(r[0]), int(r[1])) for r in conn.execute(
        "SELECT sha256, size FROM media ORDER BY last_used, sha256")]


def media_bytes(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(sum(size), 0) FROM media").fetchone()[0])


def forget_media(conn: sqlite3.Connection, sha256: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM media WHERE sha256=?", (sha256,))


def prune_manifests(conn: sqlite3.Connection, keep: int = 5) -> None:
    """Delete old superseded/dropped/refused manifests, keeping the newest ``keep``."""
    with transaction(conn):
        conn.execute(
            "DELETE FROM manifests WHERE state NOT IN ('active','pending') AND version NOT IN "
            "(SELECT version FROM manifests WHERE state NOT IN ('active','pending') "
            "ORDER BY version DESC LIMIT ?)", (keep,))


def refusal_seen(conn: sqlite3.Connection, subject: str, reason: str) -> bool:
    """Whether this exact refusal is already among the recorded ones (log it once)."""
    row = conn.execute("SELECT 1 FROM refusals WHERE subject=? AND reason=? LIMIT 1",
                       (subject, reason)).fetchone()
    return row is not None


def refuse_media(conn: sqlite3.Connection, sha256: str, reason: str) -> None:
    """Remember that these verified bytes must never be shown (so they are not refetched)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO refused_media(sha256, at, reason) VALUES (?,?,?) "
            "ON CONFLICT(sha256) DO UPDATE SET reason=excluded.reason",
            (sha256, utcnow(), reason))


def refused_media(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in conn.execute("SELECT sha256, reason FROM refused_media")}


def forget_refusals_like(conn: sqlite3.Connection, pattern: str) -> int:
    """Forget the refused media and refused manifests whose reason matches the SQL LIKE
    ``pattern`` (a refusal that was meant to end: a decoder guard's hold). A manifest
    forgotten so is processed again when the source offers it. Returns the rows dropped."""
    with transaction(conn):
        n = conn.execute("DELETE FROM refused_media WHERE reason LIKE ?", (pattern,)).rowcount
        n += conn.execute("DELETE FROM manifests WHERE state='refused' AND reason LIKE ?",
                          (pattern,)).rowcount
    return n
