"""Running the server: uvicorn (uvloop, httptools) with the limits a public server needs.

- Connections: up to ``max_connections`` at once (each idle board holds one for its
  long-poll; past it new requests are answered 503), the process's open-file limit
  raised to fit them.
- Slow clients: a request's headers must arrive within ``HEADER_TIMEOUT_S`` of its
  first byte (or of the connection, for a client that sends nothing), else 408 and
  the connection is closed — a slowloris holds a socket for seconds, not forever;
  bodies are paced by the routes (``http.BODY_IDLE_S``).
- Keep-alive: 5 s. A board's jobs are a minute apart, so an idle pooled connection
  would be held for nothing (a board would hold three or four); only its long-poll,
  re-armed at once, stays open. urllib3 sees a closed pooled connection before reuse.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
HEADER_TIMEOUT_S = 15.0
KEEP_ALIVE_S = 5
MAX_CONNECTIONS = 30_000
_TIMEOUT_BODY = b"the request's headers did not arrive in time\n"
_TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on each request's headers."""

    header_timeout_s = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_408)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of a new request on a kept-alive connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


def make_server(app: Any, max_connections: int = MAX_CONNECTIONS,
                header_timeout_s: float = HEADER_TIMEOUT_S, **kw: Any) -> Any:
    """A uvicorn server for ``app`` whose shutdown first answers every parked long-poll
    (else each would hold the shutdown for the graceful timeout)."""
    import uvicorn

    class SourceUvicorn(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            source = getattr(app.state, "source", None)
            if source is not None and hasattr(source, "hub"):
                source.hub.close()
            await super().shutdown(sockets)

    return SourceUvicorn(uvicorn_config(app, max_connections, header_timeout_s, **kw))


def raise_open_files(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; the limit it got."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, wanted))
            hard = wanted
        except (ValueError, OSError):
            pass
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def uvicorn_config(app: Any, max_connections: int = MAX_CONNECTIONS,
                   header_timeout_s: float = HEADER_TIMEOUT_S, **kw: Any) -> Any:
    import uvicorn

    protocol = type("BoundedHttp", (BoundedHttp,), {"header_timeout_s": header_timeout_s})
    return uvicorn.Config(
        app, http=protocol, loop="auto", lifespan="on", log_level="warning",
        access_log=False, server_header=False, date_header=True,
        timeout_keep_alive=KEEP_ALIVE_S, limit_concurrency=max_connections,
        backlog=4096, timeout_graceful_shutdown=5, **kw)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def serve(data_dir: Path, host: str = "127.0.0.1", port: int = 8765,
          tokens_file: Path | None = None, store: str | None = None,
          max_connections: int = MAX_CONNECTIONS, watch_folder: bool = True,
          keep_heartbeats_h: float | None = None) -> None:
    """Run the server until interrupted."""
    from content_sync.server.app import create_app
    from content_sync.server.tokens import load_tokens

    got = raise_open_files(max_connections + 1024)
    if got < max_connections + 64:
        log.warning("the open-file limit is %d: fewer than %d boards can hold a long-poll; "
                    "raise LimitNOFILE= in the unit (or ulimit -n)", got, max_connections)
        max_connections = max(64, got - 64)
    from content_sync.server.app import KEEP_HEARTBEATS_S

    keep = KEEP_HEARTBEATS_S if keep_heartbeats_h is None else keep_heartbeats_h * 3600
    app = create_app(data_dir, load_tokens(tokens_file), store=store or None,
                     watch_folder=watch_folder, keep_heartbeats_s=keep, manage_gc=True)
    server = make_server(app, max_connections)
    log.info("serving %s on http://%s:%d/", data_dir, host, port)
    server.run(sockets=[listening_socket(host, port)])
