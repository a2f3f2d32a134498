"""Fetching the media a manifest needs: bounded parallelism, retries, content checks.

Workers download, verify and check; nothing here writes to the database. The
engine syncs the file system once and records what was fetched in one transaction;
a file that reached ``media/`` without its row (a crash in between) is re-verified
by hash and adopted next time, so no byte is fetched twice.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from content_sync.board import download, media_check
from content_sync.board.source import Source, SourceError, SourceUnreachable
from content_sync.protocol import MediaInfo
from content_sync.runtime import DecoderGuard
from kiosk_config import Config

log = logging.getLogger(__name__)
ATTEMPTS = 3
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0


class Reporter(Protocol):
    """Progress of one sync's downloads (called from worker threads: be thread-safe)."""

    def begin(self, files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self, sha: str, error: str | None) -> None: ...

    def end(self) -> None: ...


@dataclass
class Outcome:
    done: set[str] = field(default_factory=set)
    refused: list[tuple[str, str]] = field(default_factory=list)  # bad for good: remembered
    rejected: list[tuple[str, str]] = field(default_factory=list)  # wrong bytes from the source
    errors: list[str] = field(default_factory=list)
    disk_full: bool = False
    offline: bool = False
    bytes: int = 0
    held: list[tuple[str, str]] = field(default_factory=list)  # held back for now: not fetched

    def merge(self, other: Outcome) -> Outcome:
        """Both fetches as one (e.g. an emergency's media first, then the rest)."""
        return Outcome(self.done | other.done, self.refused + other.refused,
                       self.rejected + other.rejected, self.errors + other.errors,
                       self.disk_full or other.disk_full, self.offline or other.offline,
                       self.bytes + other.bytes, self.held + other.held)


def backoff(attempt: int, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S) -> float:
    """Capped exponential backoff with full jitter (attempt 0, 1, 2 …)."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


def fetch_all(config: Config, source: Source, need: dict[str, MediaInfo],
              reporter: Reporter | None = None,
              stopping: threading.Event | None = None,
              guard: DecoderGuard | None = None,
              held: Mapping[str, str] | None = None) -> Outcome:
    """Download, verify and check every media in ``need`` into the cache's media/.

    With a ``guard``, each check (a decode in this process, for images) is noted while it
    runs (content_sync/runtime/decoder_guard.py). Those of ``need`` in ``held`` (the plan's
    held-back files, plan.py) come back in ``Outcome.held`` with the reason given, without
    being fetched: a hold ends (the guard tries the file again after it), so it is never
    a refusal, which is remembered for good.

    When ``stopping`` is set (the daemon got SIGTERM), every download ends after its
    current chunk (a bandwidth-cap pause is cut short too); partial files stay for
    the next start, and what did not finish is simply not in ``done``.
    """
    out = Outcome()
    stop = threading.Event()
    halt = stopping or threading.Event()
    limiter = download.limiter_for(config.source.bandwidth_limit_kbps)
    counted = threading.Lock()
    received = [0]

    def pause(seconds: float) -> None:
        if halt.wait(seconds):
            raise download.Stopped()

    if limiter:
        limiter.sleep = pause

    def progress(n: int) -> None:  # called after each chunk is written
        with counted:
            received[0] += n
        if reporter:
            reporter.advance(n)
        if halt.is_set():
            raise download.Stopped()

    def checker(sha: str, info: MediaInfo) -> Callable[[Path], None]:
        check = functools.partial(media_check.check, mtype=info.type)
        if guard is None:
            return check

        def guarded(path: Path) -> None:
            guard.opened(sha)
            try:
                check(path)
            finally:
                guard.closed(sha)
        return guarded

    def one(sha: str, info: MediaInfo) -> tuple[str, str]:
        if held and sha in held:
            return "held", held[sha]
        for attempt in range(ATTEMPTS):
            if stop.is_set() or halt.is_set():
                return "skipped", "stopped"
            try:
                source.fetch_media(config.cache_dir, sha, info.size, limiter, progress,
                                   checker(sha, info))
            except download.Stopped:
                return "skipped", "stopped"
            except media_check.ContentRefused as e:
                return "refused", f"({info.type}) {e}"
            except media_check.CheckInterrupted as e:  # no answer: not a refusal
                if attempt == ATTEMPTS - 1:
                    return "error", f"media {sha[:12]}… ({info.type}): {e}"
                halt.wait(backoff(attempt))
                continue
            except download.DiskFull as e:
                stop.set()
                return "disk_full", str(e)
            except download.MediaError as e:
                if e.offline:
                    return "offline", str(e)
                if e.permanent:
                    return "rejected", str(e)
                if attempt == ATTEMPTS - 1:
                    return "error", str(e)
                halt.wait(backoff(attempt))
                continue
            except (SourceUnreachable, SourceError) as e:
                return "offline", str(e)
            return "ok", ""
        return "error", "gave up"

    if reporter:
        reporter.begin(len(need), sum(i.size for i in need.values()))
    workers = min(config.source.max_parallel_downloads, max(1, len(need)))
    with ThreadPoolExecutor(workers, thread_name_prefix="eboard-dl") as pool:
        futures = {pool.submit(one, sha, info): sha for sha, info in need.items()}
        for fut in as_completed(futures):
            sha = futures[fut]
            kind, message = fut.result()
            if kind == "ok":
                out.done.add(sha)
            elif kind == "refused":
                out.refused.append((sha, message))
            elif kind == "held":
                out.held.append((sha, message))
            elif kind != "skipped":
                if kind == "rejected":
                    out.rejected.append((sha, message))
                out.errors.append(message)
                out.disk_full |= kind == "disk_full"
                out.offline |= kind == "offline"
            if reporter:
                reporter.file_done(sha, None if kind == "ok" else message)
    if reporter:
        reporter.end()
    out.bytes = received[0]
    return out
