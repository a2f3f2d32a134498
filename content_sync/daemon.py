"""The sync daemon: APScheduler jobs for polling, heartbeats and CAP, plus the long-poll.

- ``poll``: one sync run; it re-schedules itself after each run, at the poll
  interval with random jitter when all is well, or with capped exponential backoff
  after a failure (offline, source error, incomplete). One instance at a time.
- ``heartbeat``: every ``status.heartbeat_interval`` s (jittered):
  ``status_report.run_heartbeat_once`` sends every status field with the results of
  remote commands and runs the commands of the answer (``remote_commands``).
- ``plays``: proof-of-play outbox upload (and folding over the bound), ``outbox``.
- ``screenshot``: asks the player for one when due and uploads a new one.
- ``cap``: every ``cap.poll_interval`` s when a CAP feed is configured; without one,
  once at start, so that the alerts an earlier feed left on screen are taken off
  (``content_sync.cap.poll_once`` clears them when CAP is off) rather than staying
  until they expire.
- the events long-poll (content_sync/board/events_channel.py) runs in its own thread:
  it kicks ``poll`` when a new manifest is announced and runs ``command`` events at
  once (their results go in a heartbeat sent soon after).
- ``collect``: a full garbage collection every ``COLLECT_EVERY_S`` s (see below).
- Each periodic job that speaks HTTP (heartbeat, plays, screenshot, CAP) is bounded:
  its requests end by its period after it starts, or one request's budget if that is
  longer (``job_bounds``; content_sync/net/deadline.py), so a slow source skips at most
  one run of it and never holds a job long enough for the watchdog (``JOB_STALL_S``).
  The ``poll`` job is not: its downloads are paced by their size instead.
- ``alive`` (under systemd's ``WatchdogSec=``): beats the watchdog, so pings stop when
  the scheduler stops running jobs or a job shows no progress for ``JOB_STALL_S``
  (each download chunk counts), and systemd restarts the daemon.

APScheduler plans on the wall clock: after a step back by a day it would hold every
job for a day; after a step forward every job is late and runs at once. A thread
(``eboard-clock``) watches the wall clock against the monotonic one and moves each
job's next run by the step (``replan_jobs``), so the time left until it stays.

Why a collection a minute: each request that fails while the link is down leaves an
exception whose traceback holds its frames, a reference cycle. CPython frees cycles in
its oldest generation only when that generation has grown by a quarter (here some 15,000
objects, minutes of flapping), and Python's memory arenas then stay at the high-water
mark of that garbage: in a 70-minute soak the daemon's resident memory crept by 1.6 MiB
from minute 5 to 60 and was still rising; with this job it stays level (docs/RELIABILITY.md).
A full collection costs 11-30 ms on 2 cores (45,000 objects), once a minute.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from content_sync.board import (
    ChannelState,
    Engine,
    EventsChannel,
    Source,
    SyncResult,
    SyncState,
    open_source,
)
from content_sync.cap import poll_once as poll_cap
from content_sync.db import store
from content_sync.net import job_bound
from content_sync.report import Executor, outbox, screenshot_upload, status_report
from content_sync.runtime import JUMP_S, ClockWatch, sdnotify
from kiosk_config import Config

__all__ = ["Daemon"]

log = logging.getLogger(__name__)
RETRY_BASE_S = 15.0
RETRY_CAP_S = 900.0
# Sync states in which the source answered: the link works (the events channel may retry).
SOURCE_ANSWERED = frozenset({SyncState.UP_TO_DATE, SyncState.REFUSED, SyncState.INCOMPLETE,
                             SyncState.NO_SPACE})
STARTUP_SPREAD_S = 15.0
SCREENSHOT_CHECK_S = 5
JOB_STALL_S = 600.0  # a job without progress this long is hung: systemd restarts us
STOP_WAIT_S = 10.0  # SIGTERM: how long jobs may take to end (systemd allows 90 s)
COLLECT_EVERY_S = 60.0  # a full garbage collection: see the module's docstring
CLOCK_CHECK_S = 1.0  # how often eboard-clock compares the wall and monotonic clocks


def next_delay(config: Config, result: SyncResult, failures: int) -> float:
    """Seconds until the next poll: jittered interval, or capped exponential backoff."""
    interval = float(config.source.poll_interval)
    jitter = config.source.poll_jitter
    if failures == 0 or result.state in (SyncState.REFUSED, SyncState.BUSY):
        return interval * random.uniform(1 - jitter, 1 + jitter)
    cap = max(interval, RETRY_CAP_S)
    base = min(RETRY_BASE_S, interval / 4)  # a short poll interval retries sooner too
    return min(cap, base * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


class Daemon:
    def __init__(self, config: Config, source: Source | None = None) -> None:
        self.config = config
        self.source = source or open_source(config)
        self.conn = store.connect(config.db_path)
        self.stopping = threading.Event()
        self.engine = Engine(config, self.conn, self.source, self.stopping)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(8)},  # one per job: none waits
            # A late job runs (once: coalesce) however late it is: with a grace time, a
            # wall clock stepped forward past it (NTP after a boot on a flat RTC battery)
            # made APScheduler drop the poll's one-shot job, and polling stopped for good.
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self._stopped = False
        self._poll_idle = threading.Event()
        self._poll_idle.set()
        self.failures = 0
        self.last_result: SyncResult | None = None
        self._kick_lock = threading.Lock()
        self._again = threading.Event()
        self.events = EventsChannel(config, self.source, self.stopping,
                                    on_manifest=self.kick, on_command=self._command_event)
        self._events_thread: threading.Thread | None = None
        self._clock_thread: threading.Thread | None = None
        self.watchdog = sdnotify.WatchdogThread()
        self.job_stall_s = JOB_STALL_S
        self.collect_every_s = COLLECT_EVERY_S
        self._running: dict[str, float] = {}  # job → last sign of progress (monotonic)
        # job → seconds its requests may take in all, per run (set at start, if not here)
        self.job_bounds: dict[str, float] = {}
        src = config.source
        self.request_budget_s = src.connect_timeout + 2 * src.read_timeout
        self._stall_logged = False

    # --- liveness: the watchdog pings only while the scheduler runs jobs and no job hangs --

    def _touch(self, job: str) -> None:
        self._running[job] = time.monotonic()

    def _tracked(self, job: str, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            self._touch(job)
            try:
                fn()
            finally:
                self._running.pop(job, None)
        return run

    @staticmethod
    def _collect() -> None:
        gc.collect()

    def stalled(self) -> list[str]:
        """Jobs that have shown no progress for ``job_stall_s`` (a download chunk counts)."""
        now = time.monotonic()
        return sorted(j for j, t in list(self._running.items()) if now - t > self.job_stall_s)

    def _alive(self) -> None:
        """A scheduler job: it runs only if the scheduler thread and its executor work,
        and it beats the watchdog only if no other job is stuck."""
        stuck = self.stalled()
        if not stuck:
            self.watchdog.beat()
            self._stall_logged = False
        elif not self._stall_logged:
            self._stall_logged = True
            log.error("job %s made no progress for %.0f s; watchdog pings stop so that "
                      "systemd restarts eboard-sync", ", ".join(stuck), self.job_stall_s)

    # --- jobs ------------------------------------------------------------------------------

    def _poll(self) -> None:
        self._poll_idle.clear()
        self._touch("poll")
        try:
            self._poll_loop()
        finally:
            self._running.pop("poll", None)
            self._poll_idle.set()

    def _poll_loop(self) -> None:
        while not self.stopping.is_set():
            self._again.clear()
            self._touch("poll")
            try:
                result = self.engine.sync_once(_Progress(lambda: self._touch("poll")))
            except Exception as e:  # never let one bad run stop the polling for good
                log.exception("sync run failed: %s; will retry with backoff", e)
                result = SyncResult(SyncState.FAILED, f"sync run failed: {e}")
            self.last_result = result
            if result.state in SOURCE_ANSWERED:
                self.events.link_is_back()  # a failing events channel retries at once
            ok = result.state in (SyncState.UP_TO_DATE, SyncState.REFUSED, SyncState.BUSY)
            self.failures = 0 if ok else self.failures + 1
            sdnotify.status(f"sync {result.state.value}; active version {result.active_version}")
            with self._kick_lock:
                if self._again.is_set():
                    continue
                if not self.stopping.is_set():
                    delay = next_delay(self.config, result, self.failures)
                    self.scheduler.add_job(self._poll, "date", id="poll", replace_existing=True,
                                           run_date=datetime.now() + timedelta(seconds=delay))
                return

    def kick(self) -> None:
        """Sync as soon as possible (a new manifest was announced)."""
        with self._kick_lock:
            self._again.set()
            # JobLookupError: running now; it loops once more because of _again
            with contextlib.suppress(JobLookupError):
                self.scheduler.modify_job("poll", next_run_time=datetime.now())

    def _executor(self, conn: Any) -> Executor:
        return Executor(self.config, conn, sync_now=self._sync_now_command)

    def _sync_now_command(self) -> str:
        self.kick()
        return "sync started at once"

    def _heartbeat(self) -> None:
        session = getattr(self.source, "session", None)
        if session is None:
            return
        conn = store.connect(self.config.db_path)
        try:  # logs its own transitions (delivered / not delivered)
            status_report.run_heartbeat_once(self.config, conn, session, self._executor(conn))
        finally:
            conn.close()

    def _heartbeat_soon(self, seconds: float = 3.0) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job("heartbeat",
                                      next_run_time=datetime.now() + timedelta(seconds=seconds))

    def _plays(self) -> None:
        session = getattr(self.source, "session", None)
        conn = store.connect(self.config.db_path)
        try:
            if session is None:  # a folder source: fold over the bound, nothing to send
                outbox.fold_if_needed(conn, self.config.status.outbox_max_records,
                                      self.config.tz)
            else:
                outbox.upload_plays_once(self.config, conn, session)
        finally:
            conn.close()

    def _screenshot(self) -> None:
        session = getattr(self.source, "session", None)
        if session is None:
            return
        conn = store.connect(self.config.db_path)
        try:
            screenshot_upload.screenshot_job(self.config, conn, session)
        finally:
            conn.close()

    def _cap(self) -> None:
        conn = store.connect(self.config.db_path)
        try:
            poll_cap(self.config, conn)
        finally:
            conn.close()

    def _command_event(self, conn: Any, command: dict[str, Any]) -> None:
        if self._executor(conn).handle([command]):
            self._heartbeat_soon()  # its result reaches the operator in seconds

    @property
    def events_state(self) -> ChannelState:
        """Of the events long-poll: unknown, up, failing or absent."""
        return self.events.state

    # --- the wall clock jumps ---------------------------------------------------------------

    def _watch_clock(self) -> None:
        watch = ClockWatch(datetime.now().astimezone(), "sync jobs planned again")
        while not self.stopping.wait(CLOCK_CHECK_S):
            self.replan_jobs(watch.drift(datetime.now().astimezone()))

    def replan_jobs(self, drift: float = 0.0) -> None:
        """Keep every job's next run within its period of now, as the wall clock steps.

        After a step of ``drift`` seconds (seen by the watch), a job whose next run is no
        longer plausible (overdue, or further than its period) is moved by the step, so
        the time left until it is what it was. Without a step seen, a job further than
        its period runs now: two opposite steps within one watch interval look like
        none, but leave jobs planned between them a step away. A job already plausible
        on the new clock is left alone (the scheduler may have woken between the step
        and the watch, run it late and planned it again).
        """
        poll_period = max(self.config.source.poll_interval
                          * (1 + self.config.source.poll_jitter), RETRY_CAP_S)
        for job in self.scheduler.get_jobs():
            nxt = job.next_run_time
            if nxt is None:
                continue
            now = datetime.now(nxt.tzinfo)
            trigger = job.trigger
            period = (trigger.interval.total_seconds() + float(trigger.jitter or 0)
                      if isinstance(trigger, IntervalTrigger) else poll_period)
            left = (nxt - now).total_seconds()
            if -JUMP_S <= left <= period + JUMP_S:
                continue
            if drift:
                moved = min(max(nxt + timedelta(seconds=drift), now),
                            now + timedelta(seconds=period))
            elif left > period + JUMP_S:
                moved = now
            else:
                continue  # overdue with no step seen: the scheduler runs it now
            with contextlib.suppress(JobLookupError):  # a date job that just ran
                job.modify(next_run_time=moved)

    # --- life cycle ------------------------------------------------------------------------

    def _every(self, job: str, fn: Callable[[], None], seconds: float, **kw: Any) -> None:
        self.scheduler.add_job(self._tracked(job, fn), "interval", id=job, seconds=seconds,
                               next_run_time=datetime.now(), **kw)

    def _bounded(self, job: str, fn: Callable[[], None], period: float) -> Callable[[], None]:
        """``fn`` with every request it makes ending by the job's bound."""
        bound = self.job_bounds.setdefault(job, max(float(period), self.request_budget_s))

        def run() -> None:
            with job_bound(bound, job):
                fn()
        return run

    def start(self) -> None:
        now = datetime.now()
        # After a province-wide power cut every box boots at once: spread the first poll.
        spread = min(STARTUP_SPREAD_S, self.config.source.poll_interval
                     * self.config.source.poll_jitter)
        self.scheduler.add_job(self._poll, "date", id="poll",
                               run_date=now + timedelta(seconds=random.uniform(0, spread)))
        hb = self.config.status.heartbeat_interval
        if self.source.has_events:
            self._every("heartbeat", self._bounded("heartbeat", self._heartbeat, hb), hb,
                        jitter=max(1, hb // 10))
            self._every("screenshot", self._bounded("screenshot", self._screenshot,
                                                    SCREENSHOT_CHECK_S), SCREENSHOT_CHECK_S)
        plays_every = max(30, hb)
        self._every("plays", self._bounded("plays", self._plays, plays_every), plays_every,
                    jitter=max(1, hb // 10))
        self._every("collect", self._collect, self.collect_every_s)
        cap_cfg: Any = getattr(self.config, "cap", None)
        if getattr(cap_cfg, "feed_url", ""):
            cap_every = int(cap_cfg.poll_interval)
            self._every("cap", self._bounded("cap", self._cap, cap_every), cap_every)
        else:  # CAP turned off: clear what the last feed left on screen, once
            self.scheduler.add_job(self._tracked("cap", self._cap), "date", id="cap",
                                   run_date=now)
        if self.watchdog.interval is not None:  # systemd's WatchdogSec= is set
            self.scheduler.add_job(self._alive, "interval", id="alive", next_run_time=now,
                                   seconds=max(0.1, min(5.0, self.watchdog.stale_after / 4)))
        self.scheduler.start()
        if self.config.source.long_poll and self.source.has_events:
            self._events_thread = threading.Thread(target=self.events.run,
                                                   name="eboard-events", daemon=True)
            self._events_thread.start()
        self._clock_thread = threading.Thread(target=self._watch_clock,
                                              name="eboard-clock", daemon=True)
        self._clock_thread.start()
        self.watchdog.start()
        sdnotify.ready("eboard sync started")
        log.info("sync daemon started for board %s, source %s", self.config.board.id,
                 self.source.url)

    def stop(self, wait: float = STOP_WAIT_S) -> bool:
        """Stop the jobs; a download in flight ends after its current chunk (its partial
        file resumes at the next start). True when the sync run ended within ``wait`` s."""
        if self._stopped:
            return self._poll_idle.is_set()
        self._stopped = True
        self.stopping.set()
        self.events.wake()  # out of the events thread's backoff
        sdnotify.stopping()
        # No job left to be due: the scheduler thread, woken just before the shutdown,
        # would otherwise hand one to the stopped executor (a logged RuntimeError).
        self.scheduler.remove_all_jobs()
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        self.watchdog.stop()
        return self._poll_idle.wait(wait)

    def run_forever(self) -> int:
        """Run until SIGTERM or SIGINT. A download in flight is cut and resumes next start."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.start()
        self.stopping.wait()  # the watchdog is beaten by the "alive" job
        log.info("sync daemon stopping: ending downloads after their current chunk")
        deadline = time.monotonic() + STOP_WAIT_S
        self.stop(STOP_WAIT_S)
        stuck = []
        for t in threading.enumerate():  # job and download threads (not daemon threads)
            if t is not threading.current_thread() and not t.daemon:
                t.join(max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    stuck.append(t)
        self.engine.guard.stop()  # a clean exit: no file is being decoded any more
        if stuck:  # e.g. a read blocked on a dead connection until its timeout
            log.warning("sync daemon stopped with %d job(s) still blocked (%s); exiting "
                        "anyway: partial files resume at the next start", len(stuck),
                        ", ".join(t.name for t in stuck))
            logging.shutdown()
            os._exit(0)
        log.info("sync daemon stopped")
        return 0


class _Progress:
    """A sync reporter that only notes progress (each chunk of each download)."""

    def __init__(self, touch: Callable[[], None]) -> None:
        self.touch = touch

    def begin(self, files: int, total_bytes: int) -> None:
        self.touch()

    def advance(self, nbytes: int) -> None:
        self.touch()

    def file_done(self, sha: str, error: str | None) -> None:
        self.touch()

    def end(self) -> None:
        self.touch()

