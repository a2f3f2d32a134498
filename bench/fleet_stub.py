"""A STUB eboard/1 source, for calibrating bench/fleet.py only: NOT the server under test.

    .venv/bin/python -m bench.fleet_stub --data DIR --tokens FILE [--host H] [--port N]

It takes the flags of ``eboard serve-source`` and answers what the simulated boards and
``eboard publish --to URL`` ask, from memory, with as little work as it can (asyncio
streams, uvloop when installed): manifests with ETag and 304, the events long-poll held
and woken by a PUT, heartbeats and plays (ids kept in a set, ``plays/summary``), media
HEAD/GET/PUT, screenshots dropped; an idle keep-alive connection is closed after 5 s
(uvicorn's default), so that 10,000 boards fit in 20,000 descriptors. It stores nothing
durably and checks little; its one use is to measure what the generator itself costs
when the server answers fast (``python -m bench.bench_fleet --server stub``). Figures
measured against it say nothing about the reference server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from content_sync.publish.build import manifest_version_in

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
REASONS = {200: b"OK", 201: b"Created", 204: b"No Content", 304: b"Not Modified",
           400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found"}


class Stub:
    def __init__(self, data: Path, tokens: Path | None, keepalive_s: float = 5.0) -> None:
        self.data = data
        self.keepalive_s = keepalive_s
        t = tomllib.loads(tokens.read_text(encoding="utf-8")) if tokens else {}
        self.operator = str(t.get("operator", ""))
        self.tokens = {str(k): str(v) for k, v in dict(t.get("boards", {})).items()}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.plays: dict[str, set[str]] = {}
        self.next_id = 0
        for path in sorted((data / "boards").glob("*/manifest.json")):
            self.set_manifest(path.parent.name, path.read_bytes())

    def set_manifest(self, board: str, body: bytes) -> None:
        self.manifests[board] = (body, f'"{hashlib.sha1(body).hexdigest()}"')
        self.next_id += 1
        self.events.setdefault(board, []).append(
            {"id": self.next_id, "type": "manifest", "version": manifest_version_in(body)})
        del self.events[board][:-20]
        w = self.waiters.pop(board, None)
        if w is not None:
            w.set()

    def bearer(self, headers: dict[str, str]) -> str:
        h = headers.get("authorization", "")
        return h[7:].strip() if h.startswith("Bearer ") else ""

    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
                     ) -> tuple[int, bytes, dict[str, str]]:
        u = urlsplit(target)
        parts = u.path.strip("/").split("/")
        token = self.bearer(headers)
        if u.path == "/":
            return 200, b"eboard stub source (calibration only)\n", {"Content-Type": "text/plain"}
        if parts[0] == "media" and len(parts) == 2:
            path = self.data / "media" / parts[1]
            if method in ("GET", "HEAD"):
                return (200, path.read_bytes(), {}) if path.is_file() else (404, b"", {})
            if method == "PUT" and token == self.operator:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
                return 201, b"", {}
        if parts[0] != "boards" or len(parts) < 3:
            return 404, b"", {}
        board, what = parts[1], "/".join(parts[2:])
        if what == "manifest.json":
            if method in ("GET", "HEAD"):
                if board not in self.manifests:
                    return 404, b"", {}
                m, etag = self.manifests[board]
                if headers.get("if-none-match") == etag:
                    return 304, b"", {"ETag": etag}
                return 200, m, {"ETag": etag, "Content-Type": "application/json"}
            if method == "PUT" and token == self.operator:
                self.set_manifest(board, body)
                return 201, b"", {}
            return 401, b"", {}
        if what == "plays/summary" and token == self.operator:
            n = len(self.plays.get(board, ()))
            return 200, json.dumps({"records": n, "seconds": 0.0, "folded_plays": 0,
                                    "folded_seconds": 0.0}).encode(), {}
        if self.tokens.get(board) != token or not token:
            return 401, b"missing or wrong bearer token for this board\n", {}
        if what == "events" and method == "GET":
            q = parse_qs(u.query)
            after = int(q.get("after", ["0"])[0])
            wait = min(25.0, float(q.get("wait", ["25"])[0]))
            found = [e for e in self.events.get(board, ()) if e["id"] > after]
            if not found and wait > 0:
                w = self.waiters.setdefault(board, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await w.wait()
                found = [e for e in self.events.get(board, ()) if e["id"] > after]
            nxt = max([after] + [e["id"] for e in found])
            return 200, json.dumps({"next": nxt, "events": found}).encode(), {}
        if method == "POST" and what in ("status", "plays"):
            raw = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
            data = json.loads(raw)
            if what == "status":
                return 200, b'{"ok":true,"commands":[]}', {}
            ids = [str(r.get("id")) for r in data.get("records") or []
                   if UUID_RE.match(str(r.get("id")))]
            self.plays.setdefault(board, set()).update(ids)
            return 200, json.dumps({"accepted": ids, "rejected": []}).encode(), {}
        if what == "screenshot" and method == "PUT":
            return 204, b"", {}
        return 404, b"", {}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:  # an idle keep-alive connection is closed after a while, as uvicorn does
                    async with asyncio.timeout(self.keepalive_s):
                        raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                lines = raw[:-4].decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                if "chunked" in headers.get("transfer-encoding", ""):
                    chunks = []
                    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                        chunks.append(await reader.readexactly(size))
                        await reader.readexactly(2)
                    await reader.readuntil(b"\r\n")
                    body = b"".join(chunks)
                else:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, out, extra = await self.handle(method, target, headers, body)
                head = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"?"))]
                head += [f"{k}: {v}".encode() for k, v in extra.items()]
                if "Content-Type" not in extra and out:
                    head.append(b"Content-Type: application/json")
                if status not in (204, 304):
                    head.append(b"Content-Length: %d" % len(out))
                if method == "HEAD" or status in (204, 304):
                    out = b""
                writer.write(b"\r\n".join(head) + b"\r\n\r\n" + out)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def amain(args: argparse.Namespace) -> None:
    stub = Stub(args.data, args.tokens, args.keepalive_timeout)
    server = await asyncio.start_server(stub.serve, args.host, args.port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fleet_stub",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--tokens", type=Path)
    ap.add_argument("--keepalive-timeout", type=float, default=5.0,
                    help="seconds an idle keep-alive connection is kept (default 5)")
    args = ap.parse_args(argv)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
