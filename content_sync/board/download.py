"""Downloading one media file: stream to a partial file, resume, verify, rename.

A media file is named by its SHA-256, so it is immutable: a partial file left by a
cut connection, a power cut or a killed process is resumed with ``Range`` (guarded
by ``If-Range`` with the validator the server gave first). When every byte is in,
size and SHA-256 are checked and the file is renamed into ``media/``; a mismatch
deletes the partial so that the next attempt starts clean.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import requests
import urllib3

from content_sync.board import durability, wrong_bytes
from content_sync.db import media_path, partial_dir
from content_sync.net import short_reason

CHUNK = 256 * 1024
Progress = Callable[[int], None]
Check = Callable[[Path], None]  # raises to refuse a verified file


class MediaError(Exception):
    """A media file could not be fetched or was wrong; the message says which and why.

    ``permanent`` is True when retrying cannot help (the bytes with this hash are bad),
    False for transport problems worth another try later.
    """

    def __init__(self, message: str, permanent: bool = False, offline: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.offline = offline


class DiskFull(Exception):
    """The cache file system is full (ENOSPC)."""


class Stopped(Exception):
    """The daemon is stopping: the download ended after its current chunk, its partial
    file and validator kept, so that the next start resumes it with ``Range``."""


class RateLimiter:
    """A token bucket shared by every download: at most ``rate`` bytes per second.

    ``clock`` and ``sleep`` can be replaced (tests use a simulated clock).
    """

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, CHUNK)
        self.clock, self.sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, n: int) -> float:
        """Take ``n`` bytes' worth of tokens, sleeping as needed; return the sleep."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


def limiter_for(kbps: int) -> RateLimiter | None:
    """``source.bandwidth_limit_kbps`` (kilobits per second; 0 = no cap)."""
    return RateLimiter(kbps * 1000 / 8) if kbps > 0 else None


def _sidecar(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def _write_sidecar(partial: Path, data: dict[str, str]) -> None:
    side = _sidecar(partial)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, side)


def _read_sidecar(partial: Path) -> dict[str, str]:
    try:
        data = json.loads(_sidecar(partial).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def reject_partial(partial: Path) -> None:
    """Discard wrong bytes, remembering the answer that brought them (wrong_bytes.py):
    once the same answer came twice, the next attempts ask conditionally, for a day.

    The bytes go first: a power cut between the two must not leave the wrong partial to
    be found again at the next start, which would "confirm" the answer without a second
    download. Losing the marker instead costs one fresh download."""
    side = _read_sidecar(partial)
    discard_partial(partial)
    wrong_bytes.remember(partial, side.get("url", ""), side.get("etag", ""),
                         side.get("last_modified", ""))


def discard_partial(partial: Path) -> None:
    for p in (partial, _sidecar(partial)):
        p.unlink(missing_ok=True)


def _hash_existing(partial: Path) -> tuple[hashlib._Hash, int]:
    h = hashlib.sha256()
    n = 0
    try:
        length = partial.stat().st_size  # read no further than that (a device never ends)
        with open(partial, "rb") as f:
            while n < length and (block := f.read(min(1024 * 1024, length - n))):
                h.update(block)
                n += len(block)
    except FileNotFoundError:
        pass
    return h, n


class _Stall:
    """Detects a slow drip: fewer than ``min_bytes`` in any ``window`` seconds."""

    def __init__(self, window: float, min_bytes: int) -> None:
        self.window, self.min_bytes = window, min_bytes
        self.start = time.monotonic()
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.start >= self.window:
            if self.count < self.min_bytes:
                raise MediaError(
                    f"transfer stalled: {self.count} bytes in {now - self.start:.0f} s "
                    "(slow or stuck connection); will resume later"
                )
            self.start, self.count = now, 0


def _append(chunks: Iterable[bytes], partial: Path, h: hashlib._Hash, have: int, size: int,
            sha: str, limiter: RateLimiter | None, progress: Progress | None,
            stall: _Stall | None) -> int:
    """Append ``chunks`` to the partial file; return the new length."""
    try:
        with open(partial, "ab") as f:
            for chunk in chunks:
                if not chunk:
                    continue
                if have + len(chunk) > size:
                    reject_partial(partial)
                    raise MediaError(
                        f"media {sha[:12]}…: source sent more than the {size} bytes the "
                        "manifest lists (size mismatch)", permanent=True)
                f.write(chunk)
                h.update(chunk)
                have += len(chunk)
                if progress:
                    progress(len(chunk))
                if limiter:
                    limiter.consume(len(chunk))
                if stall:
                    stall.add(len(chunk))
            f.flush()
            # No fsync per file: the disk starts writing now, while the next files come;
            # the engine waits for it all once, before recording what it fetched (a file
            # that a power cut damaged has no row yet, and is re-verified when adopted).
            durability.start_writeback(f.fileno())
    except OSError as e:
        if e.errno == errno.ENOSPC:
            discard_partial(partial)
            raise DiskFull(f"disk full while writing {partial}") from None
        raise
    return have


def _finish(partial: Path, h: hashlib._Hash, have: int, size: int, sha: str,
            cache_dir: Path, check: Check | None) -> Path:
    if have != size:
        raise MediaError(f"media {sha[:12]}…: got {have} of {size} bytes; will resume later")
    digest = h.hexdigest()
    if digest != sha:
        reject_partial(partial)
        raise MediaError(
            f"media {sha[:12]}…: SHA-256 of the received bytes is {digest[:12]}… "
            "(hash mismatch); the source holds a wrong or corrupted file", permanent=True)
    if check is not None:
        try:
            check(partial)  # before the rename: media/ only ever holds checked files
        except Exception:
            discard_partial(partial)
            raise
    final = media_path(cache_dir, sha)
    try:
        os.replace(partial, final)
    except FileNotFoundError:  # the first file of this cache: no media/ yet
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
    _sidecar(partial).unlink(missing_ok=True)
    wrong_bytes.forget(partial)
    return final


def _read_chunks(r: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (``read1``), so a cut loses nothing that was received."""
    while chunk := r.raw.read1(CHUNK, decode_content=False):
        yield chunk


def partial_path(cache_dir: Path, sha: str) -> Path:
    d = partial_dir(cache_dir)
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
    return d / sha


def download_http(session: requests.Session, url: str, cache_dir: Path, sha: str, size: int,
                  limiter: RateLimiter | None = None, progress: Progress | None = None,
                  stall_window: float = 30.0, check: Check | None = None) -> Path:
    """Fetch ``url`` into the cache as ``sha`` (resuming a partial); return its path."""
    partial = partial_path(cache_dir, sha)
    h, have = _hash_existing(partial)
    if have > size:
        discard_partial(partial)
        h, have = hashlib.sha256(), 0
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    side = _read_sidecar(partial) if have else {}
    validator = side.get("etag") or side.get("last_modified")
    if have and validator and side.get("url") == url:
        headers["Range"] = f"bytes={have}-"
        headers["If-Range"] = validator
    elif have:
        discard_partial(partial)
        h, have = hashlib.sha256(), 0
    marker = None if have else wrong_bytes.read(partial)
    if marker and wrong_bytes.ask(marker, url, time.time()) is wrong_bytes.Ask.CONDITIONAL:
        headers.update(marker.headers())
    else:
        marker = None  # none, unconfirmed or expired: a fresh download
    if have < size or size == 0:
        try:
            r = session.get(url, headers=headers, stream=True)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise MediaError(f"media {sha[:12]}…: cannot reach {url} ({short_reason(e)}); "
                             "will retry", offline=True) from None
        except requests.RequestException as e:
            raise MediaError(f"media {sha[:12]}…: {e}") from None
        try:
            with r:
                if r.status_code == 304 and marker is not None:
                    raise MediaError(f"media {sha[:12]}…: the source still holds the same "
                                     "wrong bytes (sent twice under this validator; not "
                                     "fetched again until "
                                     f"{marker.until()}); the publisher must upload the "
                                     "right file", permanent=True)
                if r.status_code == 416 and have:
                    discard_partial(partial)
                    raise MediaError(f"media {sha[:12]}…: server refused the resume range; "
                                     "starting over next time")
                if r.status_code == 404:
                    raise MediaError(f"media {sha[:12]}… is not on the source ({url}: 404); "
                                     "the publisher must upload it", permanent=True)
                if r.status_code not in (200, 206):
                    raise MediaError(f"media {sha[:12]}…: {url} answered HTTP {r.status_code}")
                if r.status_code == 200 and have:
                    discard_partial(partial)  # validator changed or no Range support
                    h, have = hashlib.sha256(), 0
                if r.status_code == 206 and not r.headers.get(
                        "Content-Range", "").startswith(f"bytes {have}-"):
                    discard_partial(partial)
                    raise MediaError(f"media {sha[:12]}…: server answered a different range "
                                     f"({r.headers.get('Content-Range')}); starting over")
                etag = r.headers.get("ETag", "")
                if etag.startswith("W/"):
                    etag = ""  # a weak ETag cannot guard a byte range
                _write_sidecar(partial, {"url": url, "etag": etag,
                                         "last_modified": r.headers.get("Last-Modified", "")})
                min_bytes = int(min(1024, (limiter.rate if limiter else 1024) / 2) * stall_window)
                stall = _Stall(stall_window, min_bytes)
                have = _append(_read_chunks(r), partial, h, have, size, sha, limiter,
                               progress, stall)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as e:
            raise MediaError(f"media {sha[:12]}…: transfer cut ({short_reason(e)}); "
                             "will resume later") from None
    return _finish(partial, h, have, size, sha, cache_dir, check)


def copy_file(src: Path, cache_dir: Path, sha: str, size: int,
              limiter: RateLimiter | None = None, progress: Progress | None = None,
              check: Check | None = None) -> Path:
    """Copy ``src`` (a file:// source) into the cache as ``sha``, resuming a partial."""
    partial = partial_path(cache_dir, sha)
    h, have = _hash_existing(partial)
    if have > size:
        discard_partial(partial)
        h, have = hashlib.sha256(), 0

    def chunks() -> Iterable[bytes]:
        with open(src, "rb") as f:
            f.seek(have)
            while block := f.read(CHUNK):
                yield block

    try:
        have = _append(chunks(), partial, h, have, size, sha, limiter, progress, None)
    except FileNotFoundError:
        raise MediaError(f"media {sha[:12]}… is missing from the source folder ({src})") from None
    except OSError as e:
        raise MediaError(f"media {sha[:12]}…: cannot read {src}: {e.strerror}") from None
    return _finish(partial, h, have, size, sha, cache_dir, check)
