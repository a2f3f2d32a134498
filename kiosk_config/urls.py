"""Which URLs the box may use: the one rule of the config check and of the HTTP session.

Plain http is refused for any host but loopback unless the matching
``allow_insecure_http`` key is set: anyone on the path could read or alter the traffic.
``eboard config check`` (through the schema) and ``content_sync.net.http`` both ask
:func:`url_refusal`, so the check never passes a URL the sync then refuses.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for a name or address of this box itself (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_refusal(url: str, allow_insecure_http: bool, allow_key: str) -> str | None:
    """Why ``url`` may not be used, or None when it may.

    ``allow_key`` names the key that lifts the plain-http rule, e.g.
    ``source.allow_insecure_http``.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as e:  # e.g. "http://[10.0.0.5/": requests would raise it later
        return f"{url} is not a valid URL ({e}); write it as e.g. 'https://host/eboard/v1/'"
    if parts.scheme != "http" or allow_insecure_http or is_loopback(host):
        return None
    return (f"{url} uses plain http to {host}; anyone on the path could read or alter "
            f"traffic. Use https, or set {allow_key} = true if this network is trusted")
