"""The fleet benchmark's own parts (bench/fleet.py): its HTTP client, and a short run.

The client is the generator's own (asyncio streams), so what it reads must be right:
Content-Length and chunked bodies on one keep-alive connection, gzip, ``Connection:
close``, a keep-alive connection the server closed while it was idle (sent again on a
new one, as http clients do), and each failure under its kind. The short run drives the
calibration stub (bench/fleet_stub.py) with a few boards, the push included.
"""

from __future__ import annotations

import asyncio
import gzip
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bench.bench_fleet import prepare, start_server
from bench.fleet import Conn, Fleet, FleetOptions, HttpError, envelope_maker, real_heartbeat
from bench.fleet import request_head as head
from content_sync.protocol import load_private_key

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def read_request(r: asyncio.StreamReader) -> bytes:
    return await r.readuntil(b"\r\n\r\n")


def get(port: int) -> bytes:
    return head("GET", "/x", f"127.0.0.1:{port}", b"Connection: keep-alive\r\n")


def test_bodies_on_one_keep_alive_connection() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await read_request(r)
        packed = gzip.compress(b'{"next": 7, "events": []}')
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
                + b"%x\r\n" % 4 + packed[:4] + b"\r\n"
                + b"%x\r\n" % (len(packed) - 4) + packed[4:] + b"\r\n0\r\n\r\n")
        await read_request(r)
        w.write(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n")
        await read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye")
        await w.drain()
        w.close()

    async def go() -> None:
        server, port = await serve(handler)
        c = Conn("127.0.0.1", port, "127.0.0.2")
        one, _ = await c.request(get(port), b"", budget=5, connect_s=5)
        first = c.writer
        two, _ = await c.request(get(port), b"", budget=5, connect_s=5)
        three, _ = await c.request(get(port), b"", budget=5, connect_s=5)
        assert c.writer is first, "the same connection, kept alive"
        four, _ = await c.request(get(port), b"", budget=5, connect_s=5)
        assert (one.status, one.body) == (200, b"hello")
        assert two.body == b'{"next": 7, "events": []}'
        assert (three.status, three.body, three.headers["etag"]) == (304, b"", '"a"')
        assert four.body == b"bye" and c.writer is None  # closed as the server said
        server.close()

    asyncio.run(go())


def test_an_idle_connection_closed_by_the_server_is_replaced() -> None:
    connections = 0

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()
        w.close()  # an idle keep-alive timeout of nothing at all

    async def go() -> None:
        server, port = await serve(handler)
        c = Conn("127.0.0.1", port, "127.0.0.3")
        for _ in range(3):
            resp, _ = await c.request(get(port), b"", budget=5, connect_s=5)
            assert resp.body == b"ok"
            await asyncio.sleep(0.05)
        assert connections == 3
        server.close()

    asyncio.run(go())


def test_failures_have_their_kinds() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        await asyncio.sleep(5)

    async def cut(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal")
        await w.drain()
        w.close()

    async def go() -> None:
        server, port = await serve(silent)
        with pytest.raises(TimeoutError):
            await Conn("127.0.0.1", port, "127.0.0.4").request(get(port), b"", budget=0.3,
                                                               connect_s=1)
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpError) as refused:
            await Conn("127.0.0.1", port, "127.0.0.4").request(get(port), b"", budget=2,
                                                               connect_s=1)
        assert refused.value.kind == "refused"
        server, port = await serve(cut)
        with pytest.raises(asyncio.IncompleteReadError):
            await Conn("127.0.0.1", port, "127.0.0.4").request(get(port), b"", budget=2,
                                                               connect_s=1)
        server.close()

    asyncio.run(go())


def test_a_short_run_against_the_stub() -> None:
    with tempfile.TemporaryDirectory() as d:
        p = prepare(Path(d), 6)
        srv = start_server("stub", p, 30)
        try:
            opts = FleetOptions(url=srv.url, compress=60, duration_s=3.0, push_grace_s=2.0,
                                drain_s=5.0)
            fleet = Fleet(opts, p.boards, p.operator, real_heartbeat(Path(d) / "box", srv.url,
                                                                     p.version),
                          p.version, envelope_maker(p.manifest, load_private_key(p.key)))
            r = asyncio.run(fleet.run())
        finally:
            srv.stop()
    assert r["push"]["reached"] == 6 and r["push"]["put"]["ok"] == 6
    for kind in ("status", "plays", "manifest"):
        assert r[kind]["ok"] > 0 and r[kind]["failed"] == 0, (kind, r[kind])
    assert r["manifest"]["answered_200"] >= 12  # the first poll, and the push's kick
    check = r["plays"]["check"]
    assert check["boards_checked"] == 6 and check["lost"] == 0
    assert check["stored_on_checked"] == r["plays"]["accepted"] > 0
    assert r["generator"]["failed_processes"] == 0
