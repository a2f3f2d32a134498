"""Waking this process's waiters for events that other server processes wrote.

On PostgreSQL every event insert notifies channel ``eboard_events`` at commit with
``{"id", "board", "event"}`` (the event left out when it is large); each process
listens on one connection of its own and bumps its hub — for its own events too, so
the hub learns of every event in commit order. After a
lost connection the listener catches up with one query (every board's newest id since
the last it knew), so an event written while it was away still wakes its board.
SQLite has one server process: nothing to listen to.
"""

from __future__ import annotations

import asyncio
import json
import logging

from content_sync.server.hub import EventHub
from content_sync.server.store import NOTIFY_CHANNEL, ops

log = logging.getLogger(__name__)
RETRY_S = (0.5, 1, 2, 5, 10)


def _libpq_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def listen(hub: EventHub, url: str) -> None:
    """Run until cancelled."""
    import psycopg

    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                    _libpq_dsn(url), autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                since = max(hub.latest.values(), default=0)
                hub.bump_all(await hub.store.read(ops.latest_events_since, since))
                if failures:
                    log.info("listening for other processes' events again")
                failures = 0
                async for note in conn.notifies():
                    try:
                        body = json.loads(note.payload)
                        event = body.get("event")
                        hub.bump(str(body["board"]), int(body["id"]),
                                 event if isinstance(event, dict) else None)
                    except (ValueError, KeyError, TypeError, AttributeError):
                        log.warning("ignored a malformed notification: %r", note.payload[:80])
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the database went away: retry, then catch up
            delay = RETRY_S[min(failures, len(RETRY_S) - 1)]
            if failures == 0:
                log.warning("lost the PostgreSQL notification channel (%s); other processes' "
                            "events reach this one's boards by retrying every %s s until "
                            "it is back", e, RETRY_S[-1])
            failures += 1
            await asyncio.sleep(delay)
