"""The one HTTP entry point of content_sync: a configured requests Session.

Everything that speaks HTTP for the box goes through :func:`make_session`, which
sets timeouts, connection retries (urllib3's Retry, capped exponential backoff),
the proxy, the User-Agent, the CA bundle and the board's bearer token. Redirects
are followed only within the same scheme, and plain http is refused for any host
but loopback unless ``source.allow_insecure_http`` is set (the rule of
``kiosk_config.urls``, which ``eboard config check`` applies too).

Every request has a budget (``content_sync/net/deadline.py``), derived from
``source.connect_timeout`` and ``source.read_timeout``: the answer (connect, send,
status line and headers, retries and their waits included) within connect + read
seconds, plus a second per KiB sent; a body read whole (``stream=False``) done one
``read_timeout`` after that; a body streamed by the caller at least ``MIN_RATE``
bytes a second over each ``read_timeout`` of waiting. A request over its budget
raises :class:`DeadlineExceeded`, a ``requests.Timeout`` whose message says which
limit was passed.

Which requests are sent again after they may have reached the server (a read
time-out, a cut connection, a 5xx answer) — every request is retried when it could
not be sent at all (no connection):

- ``GET`` (manifest, media, events, CAP feeds and alerts): yes, reads are idempotent;
- ``POST boards/{id}/plays``: yes (``idempotent=True``): each record carries its
  UUID and the answer lists the accepted ids, so re-sending is harmless (eboard/1);
- ``POST boards/{id}/status`` (the heartbeat): never: a second copy is a second
  heartbeat in the province's history and reports the command results again; the
  next heartbeat is one interval away;
- ``PUT boards/{id}/screenshot``: never: a JPEG of up to hundreds of KB on a metered
  SIM; the screenshot job sends a screenshot not yet accepted again within seconds.

A ``Retry-After`` longer than the cap (the smaller of ``RETRY_AFTER_CAP_S`` and the
poll interval) or than the budget has left is not waited for: the answer (a 503, say)
is the request's failure, and the daemon's own backoff plans the next try.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from content_sync.net import deadline
from content_sync.net.deadline import Budget, Exchange
from kiosk_config import Config, read_token
from kiosk_config.urls import url_refusal
from kiosk_config.version import __version__

MERGED_MAX = 64  # origins whose merged environment settings a session remembers
MIN_RATE = 1024.0  # bytes/s: slower than this over a read_timeout is a stalled transfer
RETRY_AFTER_CAP_S = 60.0  # the longest Retry-After waited for within one request
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SourceConfigError(Exception):
    """The source settings cannot be used (insecure URL, unreadable token)."""


class RedirectRefused(requests.RequestException):
    """A redirect tried to change the scheme (e.g. https to http)."""


class DeadlineExceeded(requests.Timeout):
    """A request went over its budget (slow drip, stalled body, a job's bound)."""


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

    def __init__(self, timeout: tuple[float, float], min_rate: float = MIN_RATE) -> None:
        super().__init__()
        self.timeout = timeout
        self.min_rate = min_rate
        self.max_redirects = 5
        self._merged: dict[Any, Any] = {}

    def budget(self, timeout: Any, sent_bytes: int, stream: bool) -> Budget:
        """The budget of one request (see the module's docstring)."""
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        connect = float(connect if connect is not None else self.timeout[0])
        read = float(read if read is not None else self.timeout[1])
        answer = connect + read + sent_bytes / self.min_rate
        return Budget(answer_s=answer, window_s=max(read, 1.0), min_rate=self.min_rate,
                      total_s=None if stream else answer + read)

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                idempotent: bool | None = None, **kwargs: Any) -> requests.Response:
        """requests' own, within the request's budget. ``idempotent``: whether it may be
        sent again after it may have reached the server (default: GET, HEAD, OPTIONS)."""
        kwargs.setdefault("timeout", self.timeout)
        if isinstance(self.verify, str):
            # Per request, or REQUESTS_CA_BUNDLE in the environment would win (requests#3829).
            kwargs.setdefault("verify", self.verify)
        name = method.decode() if isinstance(method, bytes) else method
        data = kwargs.get("data")
        sent = len(data) if isinstance(data, bytes | str) else 0
        ex = Exchange(self.budget(kwargs["timeout"], sent, bool(kwargs.get("stream"))),
                      idempotent=name.upper() in IDEMPOTENT_METHODS if idempotent is None
                      else idempotent)
        cap = deadline.job_cap()
        if cap is not None:
            ex.cap, ex.cap_reason = cap
        deadline.begin(ex)
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.RequestException as e:
            spent = deadline.spent_in(e)
            if spent is None:
                raise
            raise DeadlineExceeded(str(spent), request=e.request) from e

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


class BoundedRetry(Retry):
    """urllib3's Retry within the current request's budget: never again once the budget
    is spent, a method sent again only where it is idempotent, no wait beyond the
    budget, and a Retry-After above ``retry_after_cap`` taken as the answer."""

    retry_after_cap: float = RETRY_AFTER_CAP_S

    def new(self, **kw: Any) -> BoundedRetry:
        retry = super().new(**kw)
        retry.retry_after_cap = self.retry_after_cap
        return retry

    def _is_method_retryable(self, method: str) -> bool:
        if self.allowed_methods and method.upper() not in self.allowed_methods:
            return False
        ex = deadline.current()
        if ex is not None:
            return ex.idempotent
        return method.upper() in IDEMPOTENT_METHODS

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> BoundedRetry:
        if error is not None and deadline.spent_in(error) is not None:
            raise error  # no time left for another try
        if response is not None:
            wait = self._retry_after(response)
            if wait is not None and wait > min(self.retry_after_cap, _time_left()):
                raise MaxRetryError(_pool, url or "", None)  # the caller gets this answer
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def _retry_after(self, response: Any) -> float | None:
        try:
            return self.get_retry_after(response)
        except InvalidHeader:
            return None

    def sleep_for_retry(self, response: Any) -> bool:
        wait = self._retry_after(response)
        if not wait:
            return False
        time.sleep(min(wait, _time_left()))
        return True

    def _sleep_backoff(self) -> None:
        backoff = min(self.get_backoff_time(), _time_left())
        if backoff > 0:
            time.sleep(backoff)


def _time_left() -> float:
    ex = deadline.current()
    if ex is None:
        return float("inf")
    try:
        return ex.time_left()
    except deadline.BudgetSpent:
        return 0.0


def retry_policy(total: int = 3, retry_after_cap: float = RETRY_AFTER_CAP_S) -> Retry:
    """Connection and 5xx retries with capped exponential backoff, honouring a short
    Retry-After, all within the request's budget; see the module's docstring for
    which methods and endpoints are sent again."""
    retry = BoundedRetry(
        total=total, connect=total, read=1, status=total,
        backoff_factor=0.5, backoff_max=30,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_cap = retry_after_cap
    return retry


class PacedAdapter(HTTPAdapter):
    """requests' adapter whose connections keep to the current request's budget."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(deadline.POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have their own classes
            manager.pool_classes_by_scheme = dict(deadline.POOL_CLASSES)
        return manager


def make_adapter(config: Config, retries: int = 3, pool_maxsize: int = 10) -> PacedAdapter:
    """The adapter of every session of the box: retries within the request's budget."""
    cap = min(RETRY_AFTER_CAP_S, float(config.source.poll_interval))
    return PacedAdapter(max_retries=retry_policy(retries, cap), pool_maxsize=pool_maxsize)


def user_agent(config: Config) -> str:
    return f"eboard/{__version__} (board {config.board.id}; +eboard/1)"


def make_session(config: Config, retries: int = 3) -> EboardSession:
    """The configured session for ``config.source``. Raises SourceConfigError."""
    src = config.source
    if src.url.startswith("http"):
        check_url(src.url, src.allow_insecure_http)
    session = EboardSession((src.connect_timeout, src.read_timeout))
    adapter = make_adapter(config, retries, pool_maxsize=max(4, src.max_parallel_downloads + 2))
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
    spent = deadline.spent_in(e)
    if spent is not None:
        return str(spent)
    text = str(e)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "Connection refused", "timed out",
                   "Name or service not known", "Temporary failure in name resolution",
                   "Network is unreachable",
                   "No route to host", "Connection reset", "Remote end closed"):
        if marker in text:
            return marker.lower()
    return text if len(text) < 160 else text[:157] + "…"
