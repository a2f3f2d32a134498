"""Sync once, as a pipeline: fetch → verify → parse → diff → download → record → activate.

Each step either moves the board forward or stops with a reason a technician can act
on. Nothing here ever deletes what is active: the previous manifest keeps playing
until a new one is complete and verified, and activation is one SQLite transaction.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from content_sync.board import cache, interim, plan, repair
from content_sync.board.fetch import Outcome, Reporter, fetch_all
from content_sync.board.offered import fetch as fetch_offered
from content_sync.board.source import Source, SourceError, SourceUnreachable, open_source
from content_sync.db import SyncStatus, damaged, rows, store
from content_sync.protocol import dsse, keys, manifest
from content_sync.runtime import CHECK_NOTE, DecoderGuard
from kiosk_config import Config

log = logging.getLogger(__name__)
MB = 1024 * 1024
SKEW_WARN_S = 300


class SyncState(StrEnum):
    IDLE = "idle"                # not run yet
    UP_TO_DATE = "up_to_date"    # the active manifest is the newest the source offers
    INCOMPLETE = "incomplete"    # a newer manifest waits for media (will retry)
    REFUSED = "refused"          # the newest offered manifest was refused
    OFFLINE = "offline"          # the source cannot be reached; playing what is active
    SOURCE_ERROR = "source_error"  # the source answered, but wrongly (404, 401, 500 …)
    NO_SPACE = "no_space"        # disk full or cache quota too small
    BUSY = "busy"                # another sync process holds the lock
    FAILED = "failed"            # the run itself failed (disk or database error, a bug)


@dataclass
class SyncResult:
    state: SyncState
    reason: str = ""
    active_version: int = 0
    offered_version: int | None = None
    pending_version: int | None = None
    clock_skew_s: float | None = None
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == SyncState.UP_TO_DATE


@contextmanager
def sync_lock(cache_dir: Path) -> Iterator[bool]:
    """An exclusive lock on the cache: one sync at a time across processes."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "sync.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Engine:
    """Syncs one board from one source into one cache. Not thread-safe: one run at a time."""

    def __init__(self, config: Config, conn: sqlite3.Connection,
                 source: Source | None = None,
                 stopping: threading.Event | None = None) -> None:
        self.config = config
        self.stopping = stopping  # set: downloads end after their chunk (partials kept)
        self.conn = conn
        self.source = source or open_source(config)
        self.board = config.board.id
        self.cache_dir = config.cache_dir
        self.trusted = keys.load_trusted(config.source.trusted_keys)
        self._verified = False  # a full re-verification of the media at the first run
        # Files this process died checking (a decoder crash) are held back; started at
        # the first run, under the cache's lock.
        self.guard = DecoderGuard(self.cache_dir / CHECK_NOTE, "sync", "file")
        self._guard_started = False

    # --- the pipeline -----------------------------------------------------------------

    def sync_once(self, reporter: Reporter | None = None) -> SyncResult:
        with sync_lock(self.cache_dir) as locked:
            if not locked:
                return SyncResult(SyncState.BUSY, "another eboard sync is running on this cache",
                                  store.active_version(self.conn))
            if not self._guard_started:
                self._guard_started = True
                self.guard.start()
                # A hold was once also written as a refusal for good (before 0.3): forget
                # those, so the file is tried again when its hold ends, as it says.
                if store.forget_refusals_like(self.conn, self.guard.reason_pattern()):
                    log.info("forgot refusals that were holds of the decoder guard; their "
                             "files are tried again when the hold ends")
            previous = rows.read(self.conn, SyncStatus) or SyncStatus()
            try:
                result = self._run(reporter)
            except Exception as e:  # whatever failed, the run ends in a state and a reason
                log.exception("sync run failed")
                result = SyncResult(SyncState.FAILED, (
                    f"sync run failed: {type(e).__name__}: {e}; the active content keeps "
                    "playing; the traceback is in the journal (journalctl -u eboard-sync)"))
            result.active_version = store.active_version(self.conn)
            result.pending_version = store.pending_version(self.conn)
            self._log_transition(previous, result)
            self._write_status(previous, result)
            return result

    def _run(self, reporter: Reporter | None) -> SyncResult:
        try:
            offered = fetch_offered(self.conn, self.source, self.board, self.trusted)
        except SourceUnreachable as e:
            return SyncResult(SyncState.OFFLINE, f"{e}; playing the active content meanwhile")
        except SourceError as e:
            return SyncResult(SyncState.SOURCE_ERROR, str(e))
        skew = None
        if offered.server_date is not None:
            skew = round((offered.server_date - datetime.now(UTC)).total_seconds(), 1)
        if offered.verified is None:
            result = self._refuse(f"manifest of board {self.board} from {self.source.url}",
                                  offered.refusal)
        else:
            result = self._process(offered.verified, reporter)
        result.clock_skew_s = skew
        return result

    def _refuse(self, subject: str, reason: str, offered: int | None = None) -> SyncResult:
        if not store.refusal_seen(self.conn, subject, reason):
            store.record_refusal(self.conn, subject, reason)
            log.warning("refused %s: %s", subject, reason)
        return SyncResult(SyncState.REFUSED, f"refused {subject}: {reason}",
                          offered_version=offered)

    def _process(self, verified: dsse.Verified, reporter: Reporter | None) -> SyncResult:
        where = f"manifest of board {self.board} from {self.source.url}"
        try:
            m = manifest.parse(verified.body)
        except manifest.ManifestError as e:
            return self._refuse(where, str(e))
        subject = f"manifest version {m.version}"
        if m.board != self.board:
            return self._refuse(subject, f"it is for board {m.board!r}, not this board "
                                f"{self.board!r}; the source published it in the wrong place",
                                m.version)
        for skip in m.skipped:  # an item of a newer kind: left out, the rest plays
            what = f"{subject} playlist {skip.playlist!r} item {skip.item!r}"
            if not store.refusal_seen(self.conn, what, skip.reason):
                store.record_refusal(self.conn, what, skip.reason)
                log.warning("%s: %s", what, skip.reason)
        self._check_media()
        active = store.active_version(self.conn)
        if m.version < active:
            return self._refuse(subject, f"not above the active version {active} (rollback)",
                                m.version)
        known = store.manifest_body(self.conn, m.version)
        if known is not None and known != verified.body:
            what = "the active version" if m.version == active else "a version received before"
            return self._refuse(subject, f"{what}, but its content differs from what was "
                                f"received under version {m.version} (a rollback: a version "
                                "is never reused); publish the change under a new version",
                                m.version)
        if m.version == active:  # the very manifest that is active: repair what it lacks
            return self._repair(m, reporter)
        too_far = manifest.version_too_far(m.version, active, int(time.time() * 1000))
        if too_far is not None:
            return self._refuse(subject, too_far, m.version)
        state = store.manifest_state(self.conn, m.version)
        if state is not None and state[0] == "refused":
            return SyncResult(SyncState.REFUSED, f"refused {subject}: {state[1]}",
                              offered_version=m.version)
        for v in store.save_pending(self.conn, m.version, m.board, m.issued_at.isoformat(),
                                    verified.body, verified.keyid):
            log.info("pending manifest version %d dropped: overtaken by version %d",
                     v, m.version)
        return self._complete(m, verified, reporter)

    def _refuse_pending(self, m: manifest.Manifest, reason: str) -> SyncResult:
        store.refuse_manifest(self.conn, m.version, reason)
        if store.interim_version(self.conn) == m.version and interim.clear_interim(self.conn):
            log.warning("the emergencies of manifest version %d are off screen again: the "
                        "manifest was refused", m.version)
        return self._refuse(f"manifest version {m.version}", reason, m.version)

    def _limits(self) -> plan.Limits:
        return plan.Limits(self.config.source.max_media_mb, self.config.cache.quota_mb)

    def _held(self) -> dict[str, str]:
        return {sha: self.guard.reason(sha) for sha in self.guard.held()}

    def _complete(self, m: manifest.Manifest, verified: dsse.Verified,
                  reporter: Reporter | None) -> SyncResult:
        refusal = plan.admit(m, store.refused_media(self.conn), self._limits())
        if refusal is not None:
            return self._refuse_pending(m, refusal.reason)
        wanted = set(m.media)
        present = cache.reconcile(self.conn, self.cache_dir, m.media)
        p = plan.plan(m, plan.Board(present, self._held(),
                                    interim.due(self.conn, verified.body)))
        if p.interim is plan.Interim.NOW:
            interim.show(self.conn, m.version, verified.keyid, verified.body)
        outcome = None
        if p.missing:
            if not cache.make_room(self.conn, self.cache_dir, p.needed_bytes,
                                   self._limits().quota_bytes, wanted):
                return SyncResult(
                    SyncState.NO_SPACE,
                    f"version {m.version} needs {p.needed_bytes / MB:.1f} MB "
                    f"more but cache.quota_mb = {self.config.cache.quota_mb} is full of content "
                    "still in use; raise cache.quota_mb", offered_version=m.version)
            outcome = self._fetch(m, verified, p, reporter)
            cache.record(self.conn, self.cache_dir, {s: m.media[s] for s in outcome.done})
            if outcome.refused:
                sha, reason = outcome.refused[0]
                for s, r in outcome.refused:
                    store.refuse_media(self.conn, s, r)
                return self._refuse_pending(m, f"media {sha[:12]}… {reason}")
            if outcome.held:  # the manifest stays pending: tried again when the hold ends
                sha, reason = outcome.held[0]
                return self._refuse(f"manifest version {m.version}",
                                    f"media {sha[:12]}… {reason}", m.version)
            for sha, reason in outcome.rejected:  # hash or size mismatch: retried later
                self._refuse(f"media {sha[:12]}… of manifest version {m.version}", reason)
            if outcome.disk_full:
                cache.clean_partials(self.cache_dir, keep=set())
                return self._with_counts(SyncResult(
                    SyncState.NO_SPACE, f"disk full in {self.cache_dir} while downloading "
                    f"version {m.version}; free space or lower cache.quota_mb. "
                    "Playing the active content meanwhile", offered_version=m.version,
                    errors=outcome.errors), outcome)
            missing = [s for s in p.missing if s not in outcome.done]
            if missing:
                first = outcome.errors[0] if outcome.errors else "not downloaded"
                if self.stopping is not None and self.stopping.is_set():
                    first = "stopped with the daemon; partial files resume at the next start"
                state = (SyncState.OFFLINE if outcome.offline else SyncState.INCOMPLETE)
                return self._with_counts(SyncResult(
                    state, f"version {m.version} waits for {len(missing)} of {len(wanted)} "
                    f"media ({first}); will retry", offered_version=m.version,
                    errors=outcome.errors), outcome)
        try:
            store.activate(self.conn, m.version, m.board, m.issued_at.isoformat(),
                           verified.body, verified.keyid, sorted(wanted))
        except ValueError as e:  # another process raced us; the next run settles it
            return SyncResult(SyncState.INCOMPLETE, f"activation of version {m.version} "
                              f"failed: {e}", offered_version=m.version)
        store.prune_manifests(self.conn)
        log.info("activated manifest version %d (%d media)", m.version, len(wanted))
        result = SyncResult(SyncState.UP_TO_DATE, f"version {m.version} activated",
                            offered_version=m.version)
        return self._with_counts(result, outcome)

    def _check_media(self) -> dict[str, str]:
        """Drop the media the board needs whose file is damaged (content_sync/board/repair.py):
        a stat each run, a full SHA-256 at the first run and then once a day, and at
        once for the media the player could not show (content_sync/db/damaged.py)."""
        full = not self._verified or repair.full_due(self.conn)
        reported = damaged.take(self.conn)
        for sha, why in reported.items():
            log.info("the player could not show media %s… (%s); verifying it", sha[:12], why)
        bad = repair.check(self.conn, self.cache_dir, store.referenced_media(self.conn),
                           full, set(reported))
        self._verified = self._verified or full
        for sha, why in bad.items():
            subject, reason = f"media {sha[:12]}… in the cache", f"{why}; fetching it again"
            if not store.refusal_seen(self.conn, subject, reason):
                store.record_refusal(self.conn, subject, reason)
                log.warning("%s: %s", subject, reason)
        if bad:
            with store.transaction(self.conn):
                store.bump_generation(self.conn)  # the player drops their items meanwhile
        return bad

    def _repair(self, m: manifest.Manifest, reporter: Reporter | None) -> SyncResult:
        """The offered manifest is the active one: fetch again what it needs but lacks
        (damaged on disk); it stays active meanwhile and its other items play."""
        wanted = set(m.media)
        lost = wanted - store.known_media(self.conn)
        if not lost:
            return SyncResult(SyncState.UP_TO_DATE, f"version {m.version} is active and the "
                              "newest the source offers", offered_version=m.version)
        what = f"{len(lost)} media of the active version {m.version}"
        adopted = cache.adopt_and_record(self.conn, self.cache_dir,
                                         {s: m.media[s] for s in sorted(lost)})
        # Its emergencies are on screen already: no interim, one stage.
        p = plan.plan(m, plan.Board(frozenset((wanted - lost) | adopted), self._held()))
        outcome = None
        if p.missing:
            if not cache.make_room(self.conn, self.cache_dir, p.needed_bytes,
                                   self._limits().quota_bytes, wanted):
                return SyncResult(SyncState.NO_SPACE, f"{what} must be fetched again but "
                                  f"cache.quota_mb = {self.config.cache.quota_mb} is full",
                                  offered_version=m.version)
            outcome = self._fetch(m, None, p, reporter)
            cache.record(self.conn, self.cache_dir, {s: m.media[s] for s in outcome.done})
            for sha, reason in outcome.refused + outcome.held + outcome.rejected:
                self._refuse(f"media {sha[:12]}… of manifest version {m.version}", reason)
        back = adopted | (outcome.done if outcome else set())
        if back:
            with store.transaction(self.conn):
                store.bump_generation(self.conn)  # their items play again
            log.info("fetched again %d damaged media of the active version %d",
                     len(back), m.version)
        missing = [s for s in p.missing if outcome is None or s not in outcome.done]
        if not missing:
            return self._with_counts(SyncResult(
                SyncState.UP_TO_DATE, f"version {m.version} is active; {what} fetched again "
                "after damage on disk", offered_version=m.version), outcome)
        assert outcome is not None
        first = outcome.errors[0] if outcome.errors else "not downloaded"
        state = (SyncState.NO_SPACE if outcome.disk_full else
                 SyncState.OFFLINE if outcome.offline else SyncState.INCOMPLETE)
        return self._with_counts(SyncResult(
            state, f"version {m.version} is active but {len(missing)} of its media, damaged "
            f"on disk, wait to be fetched again ({first}); their items are skipped meanwhile",
            offered_version=m.version, errors=outcome.errors), outcome)

    def _fetch(self, m: manifest.Manifest, verified: dsse.Verified | None, p: plan.SyncPlan,
               reporter: Reporter | None) -> Outcome:
        """Fetch the plan's stages in order. After the first of two (an emergency's own
        media), what arrived is recorded and, all there, the interim goes on screen; a
        full disk or a refused media ends the run there."""
        out = Outcome()
        for i, stage in enumerate(p.stages):
            got = fetch_all(self.config, self.source, {s: m.media[s] for s in stage},
                            reporter, self.stopping, self.guard,
                            held={s: p.held[s] for s in stage if s in p.held})
            out = out.merge(got)
            if i == 0 and p.interim is plan.Interim.AFTER_FIRST and verified is not None:
                cache.record(self.conn, self.cache_dir, {s: m.media[s] for s in got.done})
                if got.done == set(stage):
                    interim.show(self.conn, m.version, verified.keyid, verified.body)
            if got.disk_full or got.refused or got.held:
                break
        return out

    @staticmethod
    def _with_counts(result: SyncResult, outcome: Any) -> SyncResult:
        if outcome is not None:
            result.downloaded_files = len(outcome.done)
            result.downloaded_bytes = outcome.bytes
        return result

    # --- status and logs ---------------------------------------------------------------

    def _log_transition(self, previous: SyncStatus, r: SyncResult) -> None:
        if r.state == SyncState.REFUSED:
            return  # already logged once by _refuse
        if previous.state == r.state and previous.reason == r.reason:
            return
        level = logging.INFO if r.state == SyncState.UP_TO_DATE else logging.WARNING
        log.log(level, "sync %s: %s", r.state.value, r.reason)
        if r.clock_skew_s is not None and abs(r.clock_skew_s) > SKEW_WARN_S and \
                previous.clock_warning is None:
            log.warning("%s", clock_warning(r.clock_skew_s))

    def _write_status(self, previous: SyncStatus, r: SyncResult) -> None:
        now = store.utcnow()
        row = SyncStatus(
            state=r.state.value, reason=r.reason, source=self.source.url,
            active_version=r.active_version, pending_version=r.pending_version,
            interim_version=store.interim_version(self.conn),
            offered_version=r.offered_version,
            last_attempt=now,
            last_success=now if r.ok else previous.last_success,
            last_error=previous.last_error if r.ok else r.reason,
            last_error_at=previous.last_error_at if r.ok else now,
            errors=(r.errors or ([] if r.ok or not r.reason else [r.reason]))[:10],
            clock_skew_s=r.clock_skew_s,
            clock_warning=(clock_warning(r.clock_skew_s) if r.clock_skew_s is not None
                           and abs(r.clock_skew_s) > SKEW_WARN_S else None),
            downloaded_bytes=r.downloaded_bytes,
            cache_bytes=store.media_bytes(self.conn),
        )
        with store.transaction(self.conn):
            rows.write(self.conn, row)


def clock_warning(skew: float) -> str:
    way = "behind" if skew > 0 else "ahead of"
    return (f"the box's clock is {abs(skew):.0f} s {way} the source's Date header; "
            "check NTP (timedatectl) or the RTC battery")
