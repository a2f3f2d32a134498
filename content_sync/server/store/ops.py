"""What the server reads and writes, as functions of one open connection.

Each write function runs inside the transaction its caller opened (the group commit
of ``AsyncStore`` puts many in one); none commits. The SQL is SQLAlchemy Core, so the
same function runs on SQLite and PostgreSQL; the one dialect difference (the upsert
construct) is chosen by the connection's dialect. The statements a heartbeat runs are
built once (with bound parameters) and reused: building a statement costs more than
SQLAlchemy's compiled cache saves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from content_sync.server.store import tables as t
from content_sync.server.store.kinds import CommandState

NOTIFY_CHANNEL = "eboard_events"
EVENTS_LOCK = 0x0EB0E7  # pg_advisory_xact_lock: events commit in the order of their ids
NOTIFY_MAX = 7000  # bytes of a notification payload (PostgreSQL's limit is 8000)
MAX_EVENTS = 100  # per long-poll answer
MAX_OPEN_COMMANDS = 50


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _insert(conn: Connection, table: Any) -> Any:
    mod = postgresql if conn.dialect.name == "postgresql" else sqlite
    return mod.insert(table)


@cache
def _board_upsert(dialect: str) -> Any:
    mod = postgresql if dialect == "postgresql" else sqlite
    up = mod.insert(t.boards)
    return up.on_conflict_do_update(
        index_elements=["board"],
        set_={"last_seen": up.excluded.last_seen, "last_status": up.excluded.last_status})


_HEARTBEAT = t.heartbeats.insert()
_OPEN_COMMANDS = (select(t.commands.c.id, t.commands.c.command, t.commands.c.delivered_at)
                  .where(t.commands.c.board == bindparam("b"), t.commands.c.result.is_(None))
                  .order_by(t.commands.c.created_at).limit(MAX_OPEN_COMMANDS))
_EVENTS_AFTER = (select(t.events.c.id, t.events.c.type, t.events.c.data)
                 .where(t.events.c.board == bindparam("b"), t.events.c.id > bindparam("after"))
                 .order_by(t.events.c.id).limit(MAX_EVENTS))


# --- events ------------------------------------------------------------------------------

def add_event(conn: Connection, board: str, etype: str, data: dict[str, Any],
              dedup: str | None = None) -> int | None:
    """The new event's id; None when an event with this ``dedup`` key exists already.

    On PostgreSQL the commit also notifies every server process (``NOTIFY``, with the
    event when it fits), whose listeners wake the board's waiters there. Event inserts
    of all processes take one lock until commit, so events commit in the order of
    their ids: a board that has seen id N has seen every event of its below N."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENTS_LOCK})
    stmt = _insert(conn, t.events).values(
        board=board, type=etype, data=_dumps(data), at=now_iso(), dedup=dedup)
    if dedup is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["board", "dedup"])
    row = conn.execute(stmt.returning(t.events.c.id)).first()
    if row is None:
        return None
    event_id = int(row[0])
    if postgres:
        note = _dumps({"id": event_id, "board": board,
                       "event": {"id": event_id, "type": etype, **data}})
        if len(note.encode()) > NOTIFY_MAX:
            note = _dumps({"id": event_id, "board": board})
        conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                     {"channel": NOTIFY_CHANNEL, "payload": note})
    return event_id


def events_after(conn: Connection, board: str, after: int) -> list[dict[str, Any]]:
    rows = conn.execute(_EVENTS_AFTER, {"b": board, "after": after})
    return [{"id": int(r.id), "type": r.type, **json.loads(r.data)} for r in rows]


def latest_events(conn: Connection) -> dict[str, int]:
    """Each board's newest event id (what its long-poll waits to pass)."""
    rows = conn.execute(select(t.events.c.board, func.max(t.events.c.id))
                        .group_by(t.events.c.board))
    return {str(b): int(i) for b, i in rows}


def latest_events_since(conn: Connection, after: int) -> dict[str, int]:
    rows = conn.execute(select(t.events.c.board, func.max(t.events.c.id))
                        .where(t.events.c.id > after).group_by(t.events.c.board))
    return {str(b): int(i) for b, i in rows}


def last_manifest_versions(conn: Connection) -> dict[str, int]:
    """Each board's newest offered manifest version, as the events table says."""
    newest = (select(func.max(t.events.c.id)).where(t.events.c.type == "manifest")
              .group_by(t.events.c.board))
    rows = conn.execute(select(t.events.c.board, t.events.c.data)
                        .where(t.events.c.id.in_(newest.scalar_subquery())))
    out = {}
    for board, data in rows:
        try:
            out[str(board)] = int(json.loads(data).get("version", 0))
        except (ValueError, TypeError, AttributeError):
            continue
    return out


# --- heartbeats --------------------------------------------------------------------------

def store_heartbeat(conn: Connection, board: str, data: dict[str, Any],
                    received_at: str | None = None) -> None:
    body = _dumps(data)
    now = received_at or now_iso()
    conn.execute(_HEARTBEAT, {"board": board, "received_at": now, "data": body})
    conn.execute(_board_upsert(conn.dialect.name),
                 {"board": board, "last_seen": now, "last_status": body})


def prune_heartbeats(conn: Connection, older_than: str, limit: int = 20_000) -> int:
    """Delete at most ``limit`` heartbeats received before ``older_than`` (a board's
    newest stays in ``boards.last_status``); returns how many went."""
    ids = (select(t.heartbeats.c.id).where(t.heartbeats.c.received_at < older_than)
           .order_by(t.heartbeats.c.received_at).limit(limit))
    result = conn.execute(delete(t.heartbeats).where(t.heartbeats.c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount or 0)


def boards(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.boards).order_by(t.boards.c.board))
    return [{"board": r.board, "last_seen": r.last_seen,
             "status": json.loads(r.last_status or "{}")} for r in rows]


# --- proof of play -----------------------------------------------------------------------

def store_plays(conn: Connection, board: str, records: list[dict[str, Any]],
                counts: list[dict[str, Any]]) -> None:
    """Insert records and folded counts; an id already stored is left as it is."""
    now = now_iso()
    if records:
        conn.execute(_insert(conn, t.plays).on_conflict_do_nothing(index_elements=["id"]),
                     [{**r, "board": board, "received_at": now} for r in records])
    if counts:
        conn.execute(_insert(conn, t.play_counts).on_conflict_do_nothing(
            index_elements=["id"]), [{**c, "board": board, "received_at": now} for c in counts])


def play_totals(conn: Connection, board: str) -> dict[str, Any]:
    rec = conn.execute(select(func.count(), func.coalesce(func.sum(t.plays.c.duration_s), 0))
                       .where(t.plays.c.board == board)).one()
    cnt = conn.execute(select(func.coalesce(func.sum(t.play_counts.c.plays), 0),
                              func.coalesce(func.sum(t.play_counts.c.seconds), 0))
                       .where(t.play_counts.c.board == board)).one()
    return {"records": int(rec[0]), "seconds": float(rec[1]),
            "folded_plays": int(cnt[0]), "folded_seconds": float(cnt[1])}


# --- screenshots -------------------------------------------------------------------------

def record_screenshot(conn: Connection, board: str, size: int) -> None:
    up = _insert(conn, t.screenshots).values(board=board, received_at=now_iso(), size=size)
    conn.execute(up.on_conflict_do_update(
        index_elements=["board"],
        set_={"received_at": up.excluded.received_at, "size": up.excluded.size}))


def screenshots(conn: Connection) -> dict[str, str]:
    return {str(b): str(at) for b, at in
            conn.execute(select(t.screenshots.c.board, t.screenshots.c.received_at))}


def screenshot_at(conn: Connection, board: str) -> str | None:
    row = conn.execute(select(t.screenshots.c.received_at)
                       .where(t.screenshots.c.board == board)).first()
    return str(row[0]) if row else None


# --- remote commands ---------------------------------------------------------------------

def add_command(conn: Connection, board: str, command: dict[str, Any]) -> None:
    conn.execute(t.commands.insert().values(
        id=command["id"], board=board, command=_dumps(command),
        created_at=command["created_at"]))


def open_commands(conn: Connection, board: str, now: str) -> list[dict[str, Any]]:
    """Commands without a result that have not expired, oldest first; marks delivery."""
    rows = conn.execute(_OPEN_COMMANDS, {"b": board}).all()
    out = []
    undelivered = []
    for r in rows:
        cmd = json.loads(r.command)
        if str(cmd.get("expires_at") or "9999") > now:
            out.append(cmd)
            if r.delivered_at is None:
                undelivered.append(r.id)
    if undelivered:
        conn.execute(update(t.commands).where(t.commands.c.id.in_(undelivered))
                     .values(delivered_at=now))
    return out


def record_results(conn: Connection, board: str, results: list[dict[str, Any]]) -> int:
    """Store each result once per command of this board; returns how many were new."""
    n = 0
    for res in results:
        done = conn.execute(
            update(t.commands)
            .where(and_(t.commands.c.id == str(res.get("id")), t.commands.c.board == board,
                        t.commands.c.result.is_(None)))
            .values(result=_dumps(res)))
        n += int(done.rowcount or 0)
    return n


def commands(conn: Connection, board: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(t.commands.c.command, t.commands.c.created_at, t.commands.c.delivered_at,
               t.commands.c.result)
        .where(t.commands.c.board == board)
        .order_by(t.commands.c.created_at.desc()).limit(limit))
    now = now_iso()
    out = []
    for r in rows:
        cmd = json.loads(r.command)
        result = json.loads(r.result) if r.result else None
        if result is not None:
            state = CommandState.ANSWERED
        elif str(cmd.get("expires_at") or "9999") <= now:
            state = CommandState.EXPIRED if r.delivered_at is None \
                else CommandState.EXPIRED_UNANSWERED
        else:
            state = CommandState.DELIVERED if r.delivered_at else CommandState.QUEUED
        out.append({**cmd, "state": str(state), "delivered_at": r.delivered_at,
                    "result": result})
    return out


def heartbeat_exchange(conn: Connection, board: str, data: dict[str, Any],
                       now: str | None = None) -> list[dict[str, Any]]:
    """One heartbeat in one write: store it, record the command results it carries,
    and return the board's open commands (marked delivered)."""
    now = now or now_iso()
    store_heartbeat(conn, board, data, now)
    results = data.get("command_results")
    if isinstance(results, list):
        record_results(conn, board, [r for r in results if isinstance(r, dict)])
    return open_commands(conn, board, now)
