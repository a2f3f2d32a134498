"""What operators call (the operator bearer token): uploads of media and manifests,
remote commands, play totals; and the read-only views (boards list, status page,
screenshots)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from content_sync.protocol import SHA256_RE
from content_sync.publish import manifest_version_in
from content_sync.server import checks, status_page
from content_sync.server.board_routes import screenshot_path
from content_sync.server.http import (
    bearer,
    board_of,
    paced,
    read_body,
    read_json,
    refuse,
    save_atomic,
    sync_dir,
)
from content_sync.server.static import manifest_path, media_path, serve_file
from content_sync.server.store import EventType, ops

if TYPE_CHECKING:
    from content_sync.server.app import SourceServer

MAX_MEDIA_BYTES = 2 * 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
WRITE_CHUNK = 1 << 20


def _server(request: Request) -> SourceServer:
    return request.app.state.source


def operator(request: Request) -> SourceServer:
    srv = _server(request)
    if not srv.tokens.operator_ok(bearer(request)):
        raise refuse(401, "missing or wrong operator token", {"WWW-Authenticate": "Bearer"})
    return srv


async def put_media(request: Request) -> Response:
    srv = operator(request)
    name = str(request.path_params["name"])
    if not SHA256_RE.match(name):
        raise refuse(400, "media name must be 64 lowercase hex digits")
    dest = media_path(srv.data_dir, name)
    if dest.is_file():
        return Response(status_code=204)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_MEDIA_BYTES:
        raise refuse(413, f"a media file is limited to {MAX_MEDIA_BYTES} bytes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{name}.{os.getpid()}.{id(request):x}.upload")
    h = hashlib.sha256()
    size = 0
    try:
        with tmp.open("wb") as f:
            buf = bytearray()
            async for chunk in paced(request, "the upload"):
                size += len(chunk)
                if size > MAX_MEDIA_BYTES:
                    raise refuse(413, f"a media file is limited to {MAX_MEDIA_BYTES} bytes",
                                 {"Connection": "close"})
                h.update(chunk)
                buf += chunk
                if len(buf) >= WRITE_CHUNK:
                    await asyncio.to_thread(f.write, bytes(buf))
                    buf.clear()
            if buf:
                await asyncio.to_thread(f.write, bytes(buf))
            f.flush()
            await asyncio.to_thread(os.fsync, f.fileno())  # on disk before it is named
        if h.hexdigest() != name:
            raise refuse(400, "uploaded bytes do not match the SHA-256 in the URL")
        os.replace(tmp, dest)
        await asyncio.to_thread(sync_dir, dest.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return Response(status_code=201)


async def put_manifest(request: Request) -> Response:
    srv = operator(request)
    board = board_of(request)
    with srv.metrics.push.time():
        return await _put_manifest(srv, request, board)


async def _put_manifest(srv: SourceServer, request: Request, board: str) -> Response:
    body = await read_body(request, MAX_MANIFEST_BYTES, "a manifest")
    try:
        env = json.loads(body)
        if not (isinstance(env, dict) and "payload" in env and "signatures" in env):
            raise ValueError
    except (ValueError, RecursionError):
        raise refuse(400, "body is not a DSSE envelope") from None
    await asyncio.to_thread(save_atomic, manifest_path(srv.data_dir, board), body)
    await srv.watcher.offer(board, manifest_version_in(body))
    return Response(status_code=201)


async def post_command(request: Request) -> Response:
    srv = operator(request)
    board = board_of(request)
    try:
        cmd = checks.command(await read_json(request, 64 * 1024))
    except ValueError as e:
        raise refuse(400, str(e)) from None
    await srv.store.write(ops.add_command, board, cmd)
    await srv.hub.publish(board, EventType.COMMAND, {"command": cmd})
    return JSONResponse(cmd, status_code=201)


async def list_commands(request: Request) -> Response:
    srv = operator(request)
    return JSONResponse(await srv.store.read(ops.commands, board_of(request)))


async def plays_summary(request: Request) -> Response:
    srv = operator(request)
    return JSONResponse(await srv.store.read(ops.play_totals, board_of(request)))


async def get_screenshot(request: Request) -> Response:
    srv = _server(request)
    path = screenshot_path(srv.data_dir, board_of(request))
    try:
        st = os.stat(path)
    except OSError:
        raise refuse(404, "no screenshot from this board yet") from None
    return serve_file(request, path, f'"{st.st_mtime_ns:x}-{st.st_size:x}"', "image/jpeg",
                      "no-cache")


async def boards(request: Request) -> Response:
    srv = _server(request)
    rows: list[dict[str, Any]] = await srv.store.read(ops.boards)
    return JSONResponse(rows)


def _page(rows: list[dict[str, Any]], shots: dict[str, str]) -> str:
    return status_page.render(rows, shots, datetime.now(UTC))


async def status(request: Request) -> Response:
    srv = _server(request)
    rows = await srv.store.read(ops.boards)
    shots = await srv.store.read(ops.screenshots)
    html = await asyncio.to_thread(_page, rows, shots)
    return Response(html, media_type="text/html; charset=utf-8")


async def index(_request: Request) -> Response:
    return PlainTextResponse("eboard reference source (eboard/1)\n")


ROUTES = [
    Route("/", index, methods=["GET"]),
    Route("/media/{name}", put_media, methods=["PUT"]),
    Route("/boards/{board}/manifest.json", put_manifest, methods=["PUT"]),
    Route("/boards/{board}/commands", post_command, methods=["POST"]),
    Route("/boards/{board}/commands", list_commands, methods=["GET"]),
    Route("/boards/{board}/plays/summary", plays_summary, methods=["GET"]),
    Route("/boards/{board}/screenshot.jpg", get_screenshot, methods=["GET"]),
    Route("/boards.json", boards, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
]
