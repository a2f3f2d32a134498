"""The events long-poll (``GET boards/{id}/events``): a publish reaches the board at once.

It runs in its own thread of the sync daemon. A new manifest announced calls
``on_manifest`` (the daemon kicks its poll); a command event calls ``on_command`` at once
(the daemon runs it and sends a heartbeat soon after, with the result). After a failure
it reconnects with a backoff capped at about a minute (:func:`events_delay`), and at once
when a poll reaches the source (:meth:`EventsChannel.link_is_back`). A source without an
events channel (a folder, a plain web server) is asked again every ten minutes, and
polling alone carries the board meanwhile. Logs record the channel's transitions only.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from content_sync.board.source import Source, SourceError, SourceUnreachable
from content_sync.db import store
from kiosk_config import Config

log = logging.getLogger(__name__)

WAIT_S = 25.0  # one long-poll (DESIGN.md §2: about 25 s)
RECHECK_S = 600.0  # a source without an events channel is asked again this often
RETRY_BASE_S = 15.0
RETRY_CAP_S = 60.0  # the push channel is down at most about a minute after an outage
RESTART_S = 60.0  # after an unexpected error in the loop itself
AFTER_KEY = "sync.events_after"  # meta: the last event id taken, across restarts


class ChannelState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    FAILING = "failing"
    ABSENT = "absent"  # the source has no events channel


def events_delay(failures: int) -> float:
    """Seconds before the events long-poll reconnects after ``failures`` failures in a
    row: exponential from 15 s, capped at about a minute, jittered so that a thousand
    boards coming back after an outage do not reconnect together."""
    return min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


class EventsChannel:
    """The long-poll loop; :meth:`run` is the thread's target."""

    def __init__(self, config: Config, source: Source, stopping: threading.Event,
                 on_manifest: Callable[[], None],
                 on_command: Callable[[sqlite3.Connection, dict[str, Any]], None]) -> None:
        self.config = config
        self.source = source
        self.stopping = stopping
        self.on_manifest = on_manifest
        self.on_command = on_command
        self.state = ChannelState.UNKNOWN
        self._link_back = threading.Event()

    def link_is_back(self) -> None:
        """A poll reached the source: a failing channel reconnects now, not after its wait."""
        if self.state == ChannelState.FAILING:
            self._link_back.set()

    def wake(self) -> None:
        """Out of any wait (the daemon is stopping)."""
        self._link_back.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._loop()
                return
            except Exception as e:
                log.exception("events long-poll stopped by %s; restarting it in %d s",
                              e, int(RESTART_S))
                self.stopping.wait(RESTART_S)

    def _loop(self) -> None:
        conn = store.connect(self.config.db_path)
        try:
            self._listen(conn)
        finally:
            conn.close()

    def _listen(self, conn: sqlite3.Connection) -> None:
        after = int(store.get_meta(conn, AFTER_KEY) or 0)
        failures = 0
        self._link_back.clear()
        board, every = self.config.board.id, self.config.source.poll_interval
        while not self.stopping.is_set():
            try:
                got = self.source.events(board, after, WAIT_S)
            except (SourceUnreachable, SourceError) as e:
                failures += 1
                if self.state != ChannelState.FAILING:
                    log.warning("events long-poll failing (%s); polling every %d s meanwhile",
                                e, every)
                self.state = ChannelState.FAILING
                if self._link_back.wait(events_delay(failures)):
                    self._link_back.clear()  # a poll got through: reconnect now, from scratch
                    failures = 0
                continue
            if got is None:
                if self.state != ChannelState.ABSENT:
                    log.info("the source has no events channel; polling every %d s", every)
                self.state = ChannelState.ABSENT
                self.stopping.wait(RECHECK_S)
                continue
            if self.state != ChannelState.UP:
                log.info("events long-poll connected: a publish reaches this board at once")
            self.state, failures = ChannelState.UP, 0
            nxt, events = got
            active = store.active_version(conn)
            for ev in events:
                if ev.type == "manifest" and (ev.version is None or ev.version > active):
                    log.info("event %d: manifest version %s announced", ev.id, ev.version)
                    self.on_manifest()
                elif ev.type == "command" and ev.command is not None:
                    self.on_command(conn, ev.command)
            if nxt != after:
                after = nxt
                with store.transaction(conn):
                    store.set_meta(conn, AFTER_KEY, str(after))
