"""The one HTTP entry point of content_sync: a configured requests Session.

Everything that speaks HTTP for the box goes through :func:`make_session`, which
sets timeouts, connection retries (urllib3's Retry, capped exponential backoff),
the proxy, the User-Agent, the CA bundle and the board's bearer token. Redirects
are followed only within the same scheme, and plain http is refused for any host
but loopback unless ``source.allow_insecure_http`` is set (the rule of
``kiosk_config.urls``, which ``eboard config check`` applies too).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kiosk_config import Config, read_token
from kiosk_config.urls import is_loopback as is_loopback  # re-exported: the rule is here
from kiosk_config.urls import url_refusal
from kiosk_config.version import __version__

MERGED_MAX = 64  # origins whose merged environment settings a session remembers


class SourceConfigError(Exception):
    """The source settings cannot be used (insecure URL, unreadable token)."""


class RedirectRefused(requests.RequestException):
    """A redirect tried to change the scheme (e.g. https to http)."""


def check_url(url: str, allow_insecure_http: bool) -> None:
    """Refuse plain http to a non-loopback host unless explicitly allowed."""
    why = url_refusal(url, allow_insecure_http, "source.allow_insecure_http")
    if why:
        raise SourceConfigError(f"source.url {why}")


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class EboardSession(requests.Session):
    """A Session with default timeouts that follows redirects only within a scheme."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout
        self.max_redirects = 5
        self._merged: dict[Any, Any] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
                ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if isinstance(self.verify, str):
            # Per request, or REQUESTS_CA_BUNDLE in the environment would win (requests#3829).
            kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        """requests' own merge, remembered per origin (scheme and host:port, which is
        all that ``no_proxy`` matches on) and arguments: it reads the environment's
        proxy variables again for every request (about 0.3 ms, a quarter of a 1 MB
        download on loopback), and the environment of a running process does not change.
        The session's own settings are part of the key."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        try:
            key = (urlsplit(url)[:2], tuple(sorted((proxies or {}).items())), stream,
                   verify, cert, tuple(sorted(self.proxies.items())), self.stream,
                   self.verify, self.cert)
            settings = self._merged.get(key)
        except TypeError:  # something unhashable: no cache
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._merged) >= MERGED_MAX:  # redirects to ever new hosts
                self._merged.clear()
            self._merged[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        new_scheme = urlsplit(target).scheme
        old_scheme = urlsplit(resp.url).scheme
        if new_scheme and new_scheme != old_scheme:
            resp.close()
            raise RedirectRefused(
                f"{resp.url} redirects to {target}, which changes the scheme from "
                f"{old_scheme} to {new_scheme}; fix the source URL or the server's redirect"
            )
        return target


def quiet_library_logs() -> None:
    """Our own messages say what failed once; urllib3's per-retry and APScheduler's
    per-run lines would repeat it every poll (logs record transitions, not ticks)."""
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def retry_policy(total: int = 3) -> Retry:
    """Connection and 5xx retries with capped exponential backoff, honouring Retry-After."""
    return Retry(
        total=total, connect=total, read=1, status=total,
        backoff_factor=0.5, backoff_max=30,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def user_agent(config: Config) -> str:
    return f"eboard/{__version__} (board {config.board.id}; +eboard/1)"


def make_session(config: Config, retries: int = 3) -> EboardSession:
    """The configured session for ``config.source``. Raises SourceConfigError."""
    src = config.source
    if src.url.startswith("http"):
        check_url(src.url, src.allow_insecure_http)
    session = EboardSession((src.connect_timeout, src.read_timeout))
    adapter = HTTPAdapter(max_retries=retry_policy(retries),
                          pool_maxsize=max(4, src.max_parallel_downloads + 2))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent(config)
    if src.ca_bundle:
        session.verify = src.ca_bundle
    if src.proxy:
        session.proxies = {"http": src.proxy, "https": src.proxy}
        session.trust_env = False  # the configured proxy wins over the environment
    if src.token_file:
        try:
            session.auth = _BearerAuth(read_token(src.token_file))
        except Exception as e:  # SecretFileError: message already says what to do
            raise SourceConfigError(str(e)) from None
    return session


def short_reason(e: Exception) -> str:
    """The innermost reason of a requests error, without the urllib3 noise."""
    text = str(e)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "timed out",
                   "Name or service not known", "Temporary failure in name resolution",
                   "Network is unreachable",
                   "No route to host", "Connection reset", "Remote end closed"):
        if marker in text:
            return marker.lower()
    return text if len(text) < 160 else text[:157] + "…"
