"""Read a CAP feed or alert from http(s):// (bounded, with timeouts) or file://.

The session is built from the box's one HTTP entry point (content_sync.net.http:
timeouts, retries with capped backoff, proxy, CA bundle, User-Agent, same-scheme
redirects) but never carries the board's bearer token: a CAP feed is someone
else's server.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from content_sync.net import EboardSession, make_adapter, short_reason, user_agent
from kiosk_config import Config, url_refusal

CHUNK = 64 * 1024


class FetchError(Exception):
    """The feed or an alert could not be read; the message says where and what to do."""


def make_session(config: Config) -> requests.Session:
    src = config.source
    session = EboardSession((src.connect_timeout, src.read_timeout))
    adapter = make_adapter(config, retries=2)  # each request within its budget
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent(config)
    session.headers["Accept"] = (
        "application/cap+xml, application/atom+xml, application/rss+xml, "
        "application/xml;q=0.9, */*;q=0.1"
    )
    if src.ca_bundle:
        session.verify = src.ca_bundle
    if src.proxy:
        session.proxies = {"http": src.proxy, "https": src.proxy}
        session.trust_env = False
    return session


def check_insecure(url: str, allow_insecure_http: bool) -> None:
    """The config's rule (kiosk_config/urls.py), for the feed and every URL it links to."""
    why = url_refusal(url, allow_insecure_http, "cap.allow_insecure_http")
    if why:
        raise FetchError(why)


def _read_file(url: str, max_bytes: int) -> bytes:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"{url}: file URLs must be local (file:///path), not on {parts.netloc}")
    path = Path(unquote(parts.path))
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device could block or never end
            raise FetchError(f"{path} is not a regular file; cap.feed_url must name a file")
        size = st.st_size
        if size > max_bytes:
            raise FetchError(
                f"{path} is {size // 1024} KB, above cap.max_document_kb ({max_bytes // 1024} KB)"
            )
        with path.open("rb") as f:
            return f.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"{path} does not exist; check cap.feed_url or the USB stick") from None
    except IsADirectoryError:
        raise FetchError(f"{path} is a folder; cap.feed_url must name a CAP or feed file") from None
    except PermissionError:
        raise FetchError(f"{path} cannot be read (permission denied)") from None
    except OSError as e:
        raise FetchError(f"{path} cannot be read: {e.strerror or e}") from None


@dataclass(frozen=True)
class Validators:
    """HTTP validators of the last full answer, for a conditional GET (saves a SIM's data)."""

    etag: str = ""
    last_modified: str = ""

    def headers(self) -> dict[str, str]:
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out


def _read_http(url: str, session: requests.Session, max_bytes: int,
               since: Validators | None = None) -> tuple[bytes | None, Validators]:
    try:
        # verify= given per request: otherwise REQUESTS_CA_BUNDLE would beat source.ca_bundle
        with session.get(url, stream=True, headers=since.headers() if since else None,
                         verify=session.verify) as resp:
            if resp.status_code == 304 and since is not None:
                return None, since
            if resp.status_code != 200:
                raise FetchError(
                    f"{url} answered HTTP {resp.status_code} {resp.reason}; "
                    "check cap.feed_url and that the feed server is up"
                )
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise FetchError(
                    f"{url} is {int(length) // 1024} KB, above cap.max_document_kb "
                    f"({max_bytes // 1024} KB)"
                )
            data = bytearray()
            for chunk in resp.iter_content(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise FetchError(
                        f"{url} is larger than cap.max_document_kb ({max_bytes // 1024} KB)"
                    )
            return bytes(data), Validators(resp.headers.get("ETag", ""),
                                           resp.headers.get("Last-Modified", ""))
    except requests.Timeout as e:
        raise FetchError(f"{url} did not answer in time ({short_reason(e)}); check the network "
                         "or the feed server") from None
    except requests.ConnectionError as e:
        raise FetchError(f"cannot connect to {url}: {_root_cause(e)}; check the network, "
                         "DNS and proxy") from None
    except requests.RequestException as e:
        raise FetchError(f"fetching {url} failed: {e}") from None
    except OSError as e:  # e.g. source.ca_bundle names a file that is not there
        raise FetchError(f"fetching {url} failed: {e}; check source.ca_bundle") from None


def _root_cause(e: BaseException) -> str:
    while e.__context__ is not None and e.__context__ is not e:
        e = e.__context__
    return str(e)[:200] or type(e).__name__


def fetch(url: str, session: requests.Session, max_bytes: int,
          allow_insecure_http: bool = False) -> bytes:
    """The bytes at ``url`` (http, https or file), at most ``max_bytes``, or FetchError."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return _read_file(url, max_bytes)
    if scheme in ("http", "https"):
        check_insecure(url, allow_insecure_http)
        return _read_http(url, session, max_bytes)[0] or b""
    raise FetchError(f"{url[:200]}: only http, https and file URLs can be read")


def fetch_feed(url: str, session: requests.Session, max_bytes: int, allow_insecure_http: bool,
               since: Validators) -> tuple[bytes | None, Validators]:
    """Like :func:`fetch`, but None when an http(s) feed answers 304 Not Modified."""
    if urlsplit(url).scheme in ("http", "https"):
        check_insecure(url, allow_insecure_http)
        return _read_http(url, session, max_bytes, since)
    return fetch(url, session, max_bytes, allow_insecure_http), Validators()


def inside_folder_of(feed_url: str, url: str) -> bool:
    """A file:// alert named by a file:// feed must sit in the feed's folder (or below)."""
    base = Path(unquote(urlsplit(feed_url).path)).parent.resolve()
    target = Path(unquote(urlsplit(url).path)).resolve()
    return target.is_relative_to(base)
