"""Sources of eboard/1 content: an http(s) base URL or a file:// folder (USB stick).

Both offer the same static layout (``boards/{id}/manifest.json``, ``media/{sha256}``);
only http sources have the dynamic part (status, events). Network trouble raises
:class:`SourceUnreachable` (the box is offline and keeps playing); answers that a
technician must fix raise :class:`SourceError`.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3

from content_sync.board import download
from content_sync.net import make_session, short_reason
from content_sync.protocol import dsse
from kiosk_config import Config

MAX_MANIFEST_BYTES = dsse.MAX_ENVELOPE_BYTES  # 10,000 items take about 3 MB


class SourceUnreachable(Exception):
    """The source cannot be reached now (network down, DNS, timeout, USB stick absent)."""


class SourceError(Exception):
    """The source answered, but not usefully (404, 401, 500 …); the message says what to fix."""


@dataclass(frozen=True)
class Fetched:
    """The result of a (conditional) manifest fetch."""

    changed: bool
    body: bytes
    validators: dict[str, str]
    server_date: datetime | None = None


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    version: int | None = None
    command: dict[str, Any] | None = None


class Source(Protocol):
    url: str
    has_events: bool

    def fetch_manifest(self, board: str, validators: dict[str, str]) -> Fetched: ...

    def fetch_media(self, cache_dir: Path, sha: str, size: int,
                    limiter: download.RateLimiter | None,
                    progress: download.Progress | None,
                    check: download.Check | None = None) -> Path: ...

    def events(self, board: str, after: int, wait: float) -> tuple[int, list[Event]] | None: ...

    def close(self) -> None: ...


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class HttpSource:
    has_events = True

    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        self.url = config.source.url
        self.session = session or make_session(config)
        self.stall_window = max(config.source.read_timeout, 1.0)

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        url = urljoin(self.url, path)
        try:
            return self.session.get(url, **kwargs)
        except requests.exceptions.SSLError as e:
            raise SourceError(f"TLS with {url} failed ({short_reason(e)}); if the source uses a "
                              "private CA, set source.ca_bundle to its certificate file"
                              ) from None
        except (requests.ConnectionError, requests.Timeout) as e:
            raise SourceUnreachable(f"cannot reach {url}: {short_reason(e)}") from None
        except requests.RequestException as e:
            raise SourceError(f"{url}: {e}") from None
        except ValueError as e:  # a redirect to a URL that cannot be parsed ("http://[::1")
            raise SourceError(f"{url} redirects to a URL that cannot be used ({e}); check "
                              "the server's redirect") from None

    def fetch_manifest(self, board: str, validators: dict[str, str]) -> Fetched:
        path = f"boards/{board}/manifest.json"
        headers = {}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        r = self._get(path, headers=headers, stream=True)
        date = _parse_date(r.headers.get("Date"))
        body = _read_capped(r, MAX_MANIFEST_BYTES if r.status_code == 200 else 65536)
        if r.status_code == 304:
            if not headers:  # nothing to be "not modified" against
                raise SourceError(f"{r.url} answered 304 Not Modified to a request that named "
                                  "no copy (no If-None-Match or If-Modified-Since): a proxy or "
                                  "cache on the way, or the source's server, answers wrongly")
            return Fetched(False, b"", validators, date)
        if r.status_code == 404:
            raise SourceError(f"no manifest for board {board!r} at {r.url} (404); publish one "
                              "for this board or check board.id")
        if r.status_code in (401, 403):
            raise SourceError(f"{r.url} refused access ({r.status_code}); check "
                              "source.token_file holds this board's token")
        if 300 <= r.status_code < 400:  # a redirect requests did not follow: no Location
            raise SourceError(f"{r.url} answered HTTP {r.status_code} {r.reason} without a "
                              "Location to follow; check source.url and the server's redirect")
        if r.status_code != 200:
            raise SourceError(f"{r.url} answered HTTP {r.status_code} {r.reason}, not 200 with "
                              "the signed manifest")
        if not body.strip():
            raise SourceError(f"{r.url} answered an empty body (HTTP 200), not a signed "
                              "manifest; check what the source serves there")
        if len(body) > MAX_MANIFEST_BYTES:
            raise SourceError(f"{r.url} is larger than {MAX_MANIFEST_BYTES >> 20} MB; "
                              "not a manifest this board will read")
        if "html" in r.headers.get("Content-Type", "") and \
                not body.lstrip().startswith(b"{"):
            raise SourceError(f"{r.url} answered a web page (HTML), not a signed manifest: a "
                              "captive portal or proxy login on this network, or a wrong "
                              "source.url; open that URL in a browser on the same network")
        new = {"etag": r.headers.get("ETag", ""),
               "last_modified": r.headers.get("Last-Modified", "")}
        return Fetched(True, body, new, date)

    def fetch_media(self, cache_dir: Path, sha: str, size: int,
                    limiter: download.RateLimiter | None,
                    progress: download.Progress | None,
                    check: download.Check | None = None) -> Path:
        return download.download_http(self.session, urljoin(self.url, f"media/{sha}"),
                                      cache_dir, sha, size, limiter, progress,
                                      stall_window=self.stall_window, check=check)

    def events(self, board: str, after: int, wait: float) -> tuple[int, list[Event]] | None:
        """Long-poll for events; None when the source has no events channel (404/405)."""
        connect, read = getattr(self.session, "timeout", (10.0, 30.0))
        r = self._get(f"boards/{board}/events", params={"after": after, "wait": int(wait)},
                      timeout=(connect, read + wait))
        if r.status_code in (404, 405, 501):
            return None
        if r.status_code != 200:
            raise SourceError(f"{r.url} answered HTTP {r.status_code}")
        try:
            data = r.json()
            nxt = int(data.get("next", after))
            events = [Event(int(e["id"]), str(e.get("type", "")),
                            int(e["version"]) if e.get("version") is not None else None,
                            e.get("command") if isinstance(e.get("command"), dict) else None)
                      for e in data.get("events", [])]
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            # RecursionError: JSON nested too deep; OverflowError: an id of 1e999
            raise SourceError(f"{r.url} answered something that is not an events list") from None
        return nxt, events

    def close(self) -> None:
        self.session.close()


class FileSource:
    """A folder or USB stick with the static layout. No events, no status."""

    has_events = False

    def __init__(self, config: Config) -> None:
        self.url = config.source.url
        self.root = Path(unquote(urlsplit(self.url).path))

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise SourceUnreachable(f"source folder {self.root} is not there (USB stick "
                                    "unplugged or not mounted?)")

    def fetch_manifest(self, board: str, validators: dict[str, str]) -> Fetched:
        self._check_root()
        path = self.root / "boards" / board / "manifest.json"
        try:
            st = path.stat()
            if st.st_size > MAX_MANIFEST_BYTES:
                raise SourceError(f"{path} is larger than {MAX_MANIFEST_BYTES >> 20} MB; "
                                  "not a manifest this board will read")
            tag = f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"
            if validators.get("etag") == tag:
                return Fetched(False, b"", validators)
            body = path.read_bytes()
            if not body.strip():
                raise SourceError(f"{path} is empty, not a signed manifest; publish it again")
        except FileNotFoundError:
            raise SourceError(f"no manifest for board {board!r} at {path}; publish one for "
                              "this board or check board.id") from None
        except OSError as e:
            raise SourceUnreachable(f"cannot read {path}: {e.strerror}") from None
        return Fetched(True, body, {"etag": tag})

    def fetch_media(self, cache_dir: Path, sha: str, size: int,
                    limiter: download.RateLimiter | None,
                    progress: download.Progress | None,
                    check: download.Check | None = None) -> Path:
        self._check_root()
        return download.copy_file(self.root / "media" / sha, cache_dir, sha, size,
                                  limiter, progress, check)

    def events(self, board: str, after: int, wait: float) -> tuple[int, list[Event]] | None:
        return None

    def close(self) -> None:
        pass


def _read_capped(r: requests.Response, cap: int) -> bytes:
    """At most ``cap`` + 1 bytes of the body; a body read to its end leaves the
    connection in the pool (no new TCP or TLS handshake at the next poll)."""
    parts, n = [], 0
    try:
        for chunk in r.iter_content(65536):
            parts.append(chunk)
            n += len(chunk)
            if n > cap:
                break
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        raise SourceUnreachable(f"reading {r.url} failed: {short_reason(e)}") from None
    finally:
        r.close()
    return b"".join(parts)


def open_source(config: Config) -> Source:
    """The source named by ``source.url``. Raises http.SourceConfigError on bad settings."""
    if config.source.url.startswith("file://"):
        return FileSource(config)
    return HttpSource(config)


__all__ = ["Event", "Fetched", "FileSource", "HttpSource", "Source", "SourceError",
           "SourceUnreachable", "open_source"]
