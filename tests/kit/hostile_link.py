"""A raw HTTP server on 127.0.0.1 that answers slowly, never, or with Retry-After.

Written on a bare socket (not http.server) so that it can do what no well-behaved
server does: send its status line and headers a byte a second, a body a byte a second,
read a request and never answer it. It records every request (method, path, body) so
that a test can count what reached it.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# A behaviour answers one request on ``conn``; ``stop`` is set when the server closes.
Behaviour = Callable[[socket.socket, Seen, threading.Event], None]


def drip_headers(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    """The status line and headers a byte a second, for as long as the client listens."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: slow\r\n" % i for i in range(10_000))
    for i in range(len(head)):
        if stop.wait(1.0):
            return
        conn.sendall(head[i:i + 1])


def drip_body(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    """Headers at once (100 kB announced), then the body a byte a second."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    while not stop.wait(1.0):
        conn.sendall(b" ")


def silent(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    """Read the request, never answer (until the client gives up or the server stops)."""
    stop.wait()


def status(code: int, body: bytes = b"{}", **headers: str) -> Behaviour:
    def answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        conn.sendall(f"HTTP/1.1 {code} Whatever\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
                     .encode() + body)
    return answer


@dataclass
class HostileServer:
    behave: Callable[[Seen, int], Behaviour]  # (request, its index) → what to do
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str | None = None, suffix: str = "") -> int:
        with self.lock:
            return sum(1 for s in self.seen if (method is None or s.method == method)
                       and s.path.split("?")[0].endswith(suffix))

    def serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                seen = _read_request(conn)
                if seen is None:
                    return
                with self.lock:
                    index = len(self.seen)
                    self.seen.append(seen)
                self.behave(seen, index)(conn, seen, self.stop)
        except OSError:
            pass  # the client gave up: what these tests want


def _read_request(conn: socket.socket) -> Seen | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return Seen(method, path, headers, body)


@contextmanager
def hostile_server(behave: Callable[[Seen, int], Behaviour]) -> Iterator[tuple[str, HostileServer]]:
    """Serve on 127.0.0.1; yield (base URL, the server and what it saw)."""
    server = HostileServer(behave)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not server.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=server.serve, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", server
    finally:
        server.stop.set()
        acceptor.join(5)
        listener.close()
        for t in threads:
            t.join(5)
