"""One poll of the CAP feed: fetch → parse → store state → overlay playlists.

The sync daemon calls :func:`poll_once` every ``cap.poll_interval`` seconds. Nothing
in a feed can stop it: a refused document or entry is recorded (once, when it first
appears) in the shared refusals table and the rest goes on; a feed that cannot be
reached leaves the alerts already known on screen until they expire.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import requests

from content_sync.cap import alerts
from content_sync.cap.area import BoardArea
from content_sync.cap.fetch import (
    FetchError,
    Validators,
    fetch,
    fetch_feed,
    inside_folder_of,
    make_session,
)
from content_sync.cap.model import Alert, CapError
from content_sync.cap.parse import (
    MAX_ENTRIES,
    Document,
    Entry,
    parse_alert,
    parse_document,
)
from content_sync.cap.signature import Trust, load_trust, settings_key
from content_sync.cap.to_playlist import to_playlist
from content_sync.db import CapStatus, rows, store
from kiosk_config import Config

log = logging.getLogger(__name__)
SOURCE = "cap"
MAX_REFUSALS_RECORDED = 20  # per poll, in the shared refusals table
MAX_REFUSALS_KEPT = 200  # remembered in the status, so each is recorded once


@dataclass
class PollResult:
    """What one poll did. ``error`` is the feed-level problem ('' when the feed was read)."""

    state: Literal["off", "ok", "error"]
    feed_url: str = ""
    error: str = ""
    entries: int = 0
    new: int = 0
    shown: list[str] = field(default_factory=list)
    described: dict[str, str] = field(default_factory=dict)  # pid → title, when shown
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state != "error"


def board_area(config: Config) -> BoardArea:
    cap = config.cap
    return BoardArea(
        geocodes=tuple(cap.geocodes),
        area_names=tuple(cap.area_names),
        position=(cap.latitude, cap.longitude) if cap.has_position else None,
    )


class _Poll:
    def __init__(self, config: Config, conn: sqlite3.Connection, now: datetime,
                 session: requests.Session, since: Validators) -> None:
        self.config, self.conn, self.now, self.session = config, conn, now, session
        self.cap = config.cap
        self.feed = self.cap.feed_url
        self.max_bytes = self.cap.max_document_kb * 1024
        self.no_expiry = timedelta(hours=self.cap.no_expiry_hours)
        self.result = PollResult("ok", feed_url=self.feed)
        self.refusals: list[tuple[str, str]] = []
        self.fetches = 0
        self.deferred = 0
        self.since = since
        self.validators = Validators()
        self.not_modified = False
        self.trust = Trust()
        self.trust_key = settings_key(self.cap.trusted_certs, self.cap.require_signature)

    def problem(self, subject: str, reason: str, refusal: bool) -> None:
        self.result.problems.append(f"{subject}: {reason}")
        if refusal:
            self.refusals.append((subject, reason))

    def read_feed(self) -> Document | None:
        try:
            self.trust = load_trust(self.cap.trusted_certs, self.cap.require_signature)
        except CapError as e:  # no alert is read unchecked: the known ones stay
            self.result.state, self.result.error = "error", str(e)
            return None
        try:
            data, self.validators = fetch_feed(
                self.feed, self.session, self.max_bytes, self.cap.allow_insecure_http,
                self.since,
            )
            if data is None:
                self.not_modified = True
                return None
            return parse_document(data, self.max_bytes, self.trust)
        except FetchError as e:
            self.result.state, self.result.error = "error", str(e)
        except CapError as e:
            self.result.state, self.result.error = "error", f"CAP feed {self.feed} refused: {e}"
            self.refusals.append((f"CAP feed {self.feed}", str(e)))
        return None

    def linked(self, entry: Entry, subject: str) -> Alert | None:
        """The full alert behind an entry's link, else the entry's index fields."""
        url = urljoin(self.feed, entry.link)
        if urlsplit(url).scheme != urlsplit(self.feed).scheme:
            if entry.alert is None:
                self.problem(subject, f"links to {url[:200]} with another scheme than the "
                             "feed; not followed", refusal=False)
            return entry.alert
        if urlsplit(url).scheme == "file" and not inside_folder_of(self.feed, url):
            self.problem(subject, f"links to {url[:200]}, outside the feed's folder; "
                         "not followed", refusal=True)
            return entry.alert
        if self.fetches >= self.cap.max_fetches_per_poll:
            self.deferred += 1
            return None  # next poll; the entry stays listed so nothing is withdrawn
        self.fetches += 1
        try:
            return parse_alert(
                fetch(url, self.session, self.max_bytes, self.cap.allow_insecure_http),
                self.max_bytes, self.trust,
            )
        except FetchError as e:
            self.deferred += entry.alert is None  # try again next poll
            self.problem(subject, str(e), refusal=False)
        except CapError as e:
            self.problem(subject, f"alert at {url[:200]} refused: {e}", refusal=True)
        return entry.alert  # fall back to the index fields, when the feed has them

    def entry(self, doc: Document, entry: Entry, known: dict[str, str]) -> None:
        origin = entry.ref if doc.kind == "feed" else ""
        subject = f"CAP feed {self.feed} entry {origin[:200]}" if origin else f"CAP {self.feed}"
        if entry.error:
            self.problem(subject, entry.error, refusal=True)
            return
        alert: Alert | None = None
        if entry.alert is not None and not entry.alert.from_index:
            alert = entry.alert
        elif origin and origin in known:
            return  # CAP messages are immutable: no need to read it again
        elif entry.link:
            alert = self.linked(entry, subject)
        else:
            alert = entry.alert
        if alert is not None and alerts.apply(
            self.conn, self.feed, alert, origin, self.now, self.no_expiry
        ):
            self.result.new += 1

    def run(self) -> None:
        doc = self.read_feed()
        if doc is not None:
            self.result.entries = len(doc.entries)
            if doc.dropped:
                self.problem(f"CAP feed {self.feed}", f"has {doc.dropped} entries beyond the "
                             f"first {MAX_ENTRIES}; they were not read", refusal=True)
            known = alerts.known_origins(self.conn, self.feed)
            for entry in doc.entries:
                try:
                    self.entry(doc, entry, known)
                except Exception as e:  # one bad entry never stops the others
                    log.exception("CAP entry %s failed", entry.ref)
                    self.problem(f"CAP feed {self.feed} entry {entry.ref[:200]}",
                                 f"could not be processed: {type(e).__name__}: {e}",
                                 refusal=False)
            if doc.kind == "feed":
                alerts.sync_listing(self.conn, self.feed, {e.ref for e in doc.entries}, self.now)
        alerts.expire(self.conn, self.feed, self.now)
        self.publish()

    def publish(self) -> None:
        board = board_area(self.config)
        playlists: dict[str, str] = {}
        for stored in alerts.active(self.conn, self.feed):
            try:
                shown = to_playlist(stored.alert, board, list(self.cap.languages),
                                    self.cap.show_test, self.config.tz, self.now,
                                    self.no_expiry, self.cap.advisory_share)
            except Exception as e:  # e.g. the player's Playlist model refused it
                self.problem(f"CAP alert {stored.alert.identifier[:200]}",
                             f"cannot be shown: {type(e).__name__}: {e}", refusal=True)
                continue
            if shown is not None:
                playlists[shown[0]] = shown[1]
                body = json.loads(shown[1])
                self.result.described[shown[0]] = (f"{body['title']!r} ({body['priority']}), "
                                                + _plan(body, self.config.tz, self.now))
        store.replace_overlays(self.conn, SOURCE, playlists)
        self.result.shown = sorted(playlists)


def _plan(body: dict[str, Any], tz: ZoneInfo, now: datetime) -> str:
    """When the player will show an overlay, for the log: 'on screen now until …' or
    'on screen from … until …' (board time zone)."""
    def when(text: str) -> str:
        return datetime.fromisoformat(text).astimezone(tz).strftime("%H:%M %d/%m/%Y")

    start, end = body["schedule"]["start"], body["schedule"]["end"]
    until = f"until {when(end)} ({tz.key})"
    if start and datetime.fromisoformat(start) > now:
        return f"on screen from {when(start)} {until}"
    return f"on screen now {until}"


def _report(conn: sqlite3.Connection, result: PollResult, poll: _Poll | None,
            before: CapStatus) -> None:
    """Record refusals and log the feed's state, only when they change."""
    refusals = poll.refusals if poll else []
    seen = set(before.refusals)
    now_seen = [f"{s}: {r}" for s, r in refusals]
    new = [(s, r, line) for (s, r), line in zip(refusals, now_seen, strict=True)
           if line not in seen]
    for subject, reason, line in new[:MAX_REFUSALS_RECORDED]:
        store.record_refusal(conn, subject, reason)
        log.warning("refused %s", line)
    if len(new) > MAX_REFUSALS_RECORDED:
        more = len(new) - MAX_REFUSALS_RECORDED
        store.record_refusal(conn, f"CAP feed {result.feed_url}",
                             f"{more} more entries refused; see eboard status")
        log.warning("refused %d more CAP entries", more)
    now_seen = now_seen[:MAX_REFUSALS_KEPT]
    if poll is not None and poll.not_modified:
        now_seen = list(seen)  # nothing was read again: the same refusals still stand
    if result.error != before.error:
        if result.error:
            log.warning("CAP feed problem: %s", result.error)
        elif before.state is not None:
            log.info("CAP feed %s read again", result.feed_url or "(off)")
    was = set(before.shown)
    for pid in result.shown:
        if pid not in was:
            log.info("CAP alert %s covers this board: %s", pid, result.described.get(pid, ""))
    for pid in sorted(was - set(result.shown)):
        log.info("CAP alert no longer on this board: %s", pid)
    # keep the validators only when everything the feed named was read: otherwise an
    # unchanged feed (304) would never give a failed link another chance
    validators = Validators()
    if poll is not None and not poll.deferred and result.state == "ok":
        validators = poll.since if poll.not_modified else poll.validators
    rows.write(conn, CapStatus(
        state=result.state, feed_url=result.feed_url, error=result.error,
        shown=result.shown, refusals=sorted(set(now_seen)),
        etag=validators.etag, last_modified=validators.last_modified,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        trust=poll.trust_key if poll is not None else "",
    ))


def _has_overlays(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM overlays WHERE source=? LIMIT 1",
                        (SOURCE,)).fetchone() is not None


def poll_once(config: Config, conn: sqlite3.Connection, now: datetime | None = None,
              session: requests.Session | None = None) -> PollResult:
    """Poll ``config.cap.feed_url`` once and replace the 'cap' overlays. Never raises for
    anything a feed or the network can do; see ``PollResult`` for what happened.

    With CAP off (no ``feed_url``) it clears the overlays an earlier feed left, and
    writes nothing when there is nothing to clear: the daemon calls it once at start
    for that, so turning CAP off takes its alerts off the screen at once."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("poll_once needs an aware 'now', e.g. datetime.now(UTC)")
    before = rows.read(conn, CapStatus) or CapStatus()
    if not config.cap.feed_url:
        result = PollResult("off")
        if before.state in (None, "off") and not _has_overlays(conn):
            return result  # nothing was ever shown, or it is cleared already
        store.replace_overlays(conn, SOURCE, {})
        _report(conn, result, None, before)
        return result
    since = Validators()
    trust = settings_key(config.cap.trusted_certs, config.cap.require_signature)
    if before.feed_url == config.cap.feed_url and before.trust == trust:
        since = Validators(before.etag, before.last_modified)
    own = session is None
    sess = session or make_session(config)
    try:
        poll = _Poll(config, conn, now, sess, since)
        poll.run()
    finally:
        if own:
            sess.close()
    _report(conn, poll.result, poll, before)
    return poll.result
