"""Alert state across polls and restarts, in table ``cap_alerts`` of the shared database.

Each CAP message is stored once under its key (sender, identifier, sent). States:

- ``active``      an Alert or Update that may be shown (area, status and time decide);
- ``superseded``  named in the ``references`` of a later Update;
- ``cancelled``   named in the ``references`` of a Cancel;
- ``withdrawn``   no longer listed by the feed (an Atom/RSS index lists active alerts);
- ``expired``     every info has passed its ``expires`` (or the no-expiry window);
- ``ignored``     Draft/System messages, Ack/Error, and the Cancel messages themselves.

A Cancel or Update may arrive before the message it names (or after a restart);
the named key is then kept as a row without a body, so the original is born
cancelled when it comes. Rows are pruned a while after they stop mattering.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from content_sync.cap.model import Alert
from content_sync.db import transaction

log = logging.getLogger(__name__)

SHOWABLE = "active"
KEEP_AFTER_END = timedelta(days=7)
KEEP_TOMBSTONE = timedelta(days=30)


@dataclass(frozen=True)
class StoredAlert:
    key: str
    origin: str
    alert: Alert


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _ends(alert: Alert, no_expiry: timedelta) -> datetime:
    """When the message stops mattering: its last expires, else sent + the no-expiry window."""
    return alert.expires or alert.sent + no_expiry


def known_origins(conn: sqlite3.Connection, feed: str) -> dict[str, str]:
    """origin (feed entry link or id) → key, for messages already stored with a body."""
    rows = conn.execute(
        "SELECT origin, key FROM cap_alerts WHERE feed=? AND origin<>'' AND body IS NOT NULL",
        (feed,),
    )
    return {r[0]: r[1] for r in rows}


def _mark(conn: sqlite3.Connection, feed: str, key: str, state: str, reason: str,
          now: str) -> None:
    row = conn.execute("SELECT state FROM cap_alerts WHERE key=?", (key,)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO cap_alerts(key, feed, state, first_seen, updated_at, reason)"
            " VALUES (?,?,?,?,?,?)", (key, feed, state, now, now, reason),
        )
        return
    if row[0] in ("active", "withdrawn", "expired"):
        conn.execute(
            "UPDATE cap_alerts SET state=?, updated_at=?, reason=? WHERE key=?",
            (state, now, reason, key),
        )
        if row[0] == "active":
            log.debug("CAP alert %s is now %s (%s)", _short(key), state, reason)


def _short(key: str) -> str:
    sender, _, rest = key.partition("\x1f")
    ident, _, sent = rest.partition("\x1f")
    return f"{ident} from {sender} sent {sent}"


def apply(conn: sqlite3.Connection, feed: str, alert: Alert, origin: str,
          now: datetime, no_expiry: timedelta) -> bool:
    """Store one message and apply its effect, in one transaction. False if already known."""
    key, at = alert.key, _iso(now)
    with transaction(conn):
        row = conn.execute(
            "SELECT state, body, feed, origin FROM cap_alerts WHERE key=?", (key,)
        ).fetchone()
        if row is not None and row["body"] is not None:
            # the same message seen again, maybe under another entry or another feed URL
            if row["feed"] != feed or (origin and row["origin"] != origin):
                conn.execute(
                    "UPDATE cap_alerts SET feed=?, origin=? WHERE key=?",
                    (feed, origin or row["origin"], key),
                )
            return False
        if alert.status in ("Draft", "System"):
            state, reason = "ignored", f"status {alert.status} is never shown"
        elif alert.msg_type in ("Alert", "Update"):
            state, reason = "active", ""
        else:
            state, reason = "ignored", f"msgType {alert.msg_type}"
        if row is not None:  # named by an earlier Cancel/Update: born cancelled/superseded
            state, reason = row["state"], "named by an earlier message"
        if alert.status not in ("Draft", "System") and alert.msg_type in ("Update", "Cancel"):
            verb = "superseded" if alert.msg_type == "Update" else "cancelled"
            for ref in alert.reference_keys():
                if ref != key:
                    _mark(conn, feed, ref, verb, f"{alert.msg_type} {alert.identifier}", at)
        conn.execute(
            "INSERT INTO cap_alerts(key, feed, origin, state, msg_type, status, sent, ends,"
            " body, first_seen, updated_at, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(key) DO UPDATE SET origin=excluded.origin, msg_type=excluded.msg_type,"
            " status=excluded.status, sent=excluded.sent, ends=excluded.ends,"
            " body=excluded.body, updated_at=excluded.updated_at",
            (key, feed, origin, state, alert.msg_type, alert.status, _iso(alert.sent),
             _iso(_ends(alert, no_expiry)), alert.model_dump_json(), at, at, reason),
        )
    if state == "active":
        log.debug("CAP alert %s received (%s, %s)", _short(key), alert.msg_type, alert.status)
    return True


def sync_listing(conn: sqlite3.Connection, feed: str, listed: set[str], now: datetime) -> None:
    """A feed lists the active alerts: withdraw those it dropped, restore those it lists again."""
    at = _iso(now)
    with transaction(conn):
        rows = conn.execute(
            "SELECT key, origin, state FROM cap_alerts WHERE feed=? AND origin<>''"
            " AND state IN ('active', 'withdrawn')", (feed,),
        ).fetchall()
        for r in rows:
            new = "active" if r["origin"] in listed else "withdrawn"
            if new != r["state"]:
                conn.execute("UPDATE cap_alerts SET state=?, updated_at=?, reason=? WHERE key=?",
                             (new, at, "no longer in the feed" if new == "withdrawn" else "",
                              r["key"]))
                log.debug("CAP alert %s is now %s", _short(r["key"]), new)


def expire(conn: sqlite3.Connection, feed: str, now: datetime) -> None:
    """Active alerts whose end has passed become expired; old rows are pruned."""
    at = _iso(now)
    with transaction(conn):
        for r in conn.execute(
            "SELECT key FROM cap_alerts WHERE feed=? AND state='active' AND ends<>''"
            " AND ends<=?", (feed, at),
        ).fetchall():
            conn.execute("UPDATE cap_alerts SET state='expired', updated_at=? WHERE key=?",
                         (at, r[0]))
            log.debug("CAP alert %s expired", _short(r[0]))
        conn.execute(
            "DELETE FROM cap_alerts WHERE (body IS NOT NULL AND state<>'active' AND ends<>''"
            " AND ends<?) OR (body IS NULL AND updated_at<?)",
            (_iso(now - KEEP_AFTER_END), _iso(now - KEEP_TOMBSTONE)),
        )


def active(conn: sqlite3.Connection, feed: str) -> list[StoredAlert]:
    """The active messages of ``feed``, oldest sent first."""
    rows = conn.execute(
        "SELECT key, origin, body FROM cap_alerts WHERE feed=? AND state='active'"
        " AND body IS NOT NULL ORDER BY sent, key", (feed,),
    ).fetchall()
    return [StoredAlert(r["key"], r["origin"], Alert.model_validate_json(r["body"]))
            for r in rows]


def states(conn: sqlite3.Connection, feed: str) -> dict[str, str]:
    """key → state for every stored message of ``feed`` (for reports and tests)."""
    rows = conn.execute("SELECT key, state FROM cap_alerts WHERE feed=?", (feed,))
    return {r[0]: r[1] for r in rows}
