"""The small pieces every route uses: tokens, bounded bodies, refusals in plain text.

A refusal is an ``HTTPException`` whose detail is one line a technician can act on;
Starlette answers it as ``text/plain``. Bodies are read against a limit (the declared
length first, then what actually arrives) and a pace: a client that sends nothing for
``BODY_IDLE_S`` is answered 408 and its connection closed, so it holds nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

BOARD_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
BODY_IDLE_S = 30.0


def save_atomic(dest: Path, body: bytes) -> None:
    """``dest`` holds ``body`` whole, or what it held before — also after a power cut:
    written beside it, flushed to disk, renamed over it, the folder flushed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.upload")
    with tmp.open("wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    sync_dir(dest.parent)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status, message.rstrip("\n") + "\n", headers)


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def board_of(request: Request) -> str:
    board = str(request.path_params["board"])
    if not BOARD_RE.match(board):
        raise refuse(404, "no such board (a board id is lowercase letters, digits, '.', '_' "
                          "and '-')")
    return board


async def read_body(request: Request, limit: int, what: str = "the body") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise refuse(413, f"{what} is limited to {limit} bytes")
        except ValueError:
            raise refuse(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in paced(request, what):
        size += len(chunk)
        if size > limit:
            raise refuse(413, f"{what} is limited to {limit} bytes", {"Connection": "close"})
        chunks.append(chunk)
    return b"".join(chunks)


async def paced(request: Request, what: str) -> AsyncIterator[bytes]:
    """The body's chunks as they come; 408 when none comes for the server's
    ``body_idle_s`` (``BODY_IDLE_S`` unless the app says otherwise)."""
    idle = getattr(request.app.state.source, "body_idle_s", BODY_IDLE_S)
    stream = request.stream().__aiter__()
    while True:
        try:
            yield await asyncio.wait_for(stream.__anext__(), idle)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise refuse(408, f"no bytes of {what} for {idle:g} s",
                         {"Connection": "close"}) from None
        except ClientDisconnect:
            raise refuse(400, "the client went away before its body ended") from None


def inflate(request: Request, raw: bytes, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise refuse(400, "the body says Content-Encoding: gzip but is not gzip") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise refuse(413, f"the inflated body passes {limit} bytes")
    elif encoding not in ("", "identity"):
        raise refuse(415, f"Content-Encoding {encoding} is not supported; use gzip or none")
    return raw


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body, gzip-encoded or not (at most ``limit`` once inflated); None when it
    is not JSON."""
    raw = inflate(request, await read_body(request, limit), limit)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None
