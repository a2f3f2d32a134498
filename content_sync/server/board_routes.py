"""What boards call (eboard/1, each behind the board's own bearer token): heartbeat,
events long-poll, proof of play, screenshot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from content_sync.server import checks
from content_sync.server.http import bearer, board_of, read_body, read_json, refuse, save_atomic
from content_sync.server.store import ops

if TYPE_CHECKING:
    from content_sync.server.app import SourceServer

MAX_STATUS_BYTES = 256 * 1024


def _server(request: Request) -> SourceServer:
    return request.app.state.source


def authorised_board(request: Request) -> tuple[SourceServer, str]:
    """The board of the URL once its token is checked and its budget spent."""
    srv = _server(request)
    board = board_of(request)
    if not srv.tokens.board_ok(board, bearer(request)):
        raise refuse(401, "missing or wrong bearer token for this board",
                     {"WWW-Authenticate": "Bearer"})
    srv.budget.spend(board)
    return srv, board


async def status(request: Request) -> Response:
    srv, board = authorised_board(request)
    with srv.metrics.heartbeat.time():
        data = await read_json(request, MAX_STATUS_BYTES)
        if not isinstance(data, dict):
            raise refuse(400, "status must be a JSON object")
        commands = await srv.store.write(ops.heartbeat_exchange, board, data)
    return JSONResponse({"ok": True, "commands": commands})


async def events(request: Request) -> Response:
    srv, board = authorised_board(request)
    try:
        after = int(request.query_params.get("after", "0"))
        wait = max(0.0, min(float(request.query_params.get("wait", srv.long_poll_max)),
                            srv.long_poll_max))
    except ValueError:
        raise refuse(400, "after must be an integer and wait a number of seconds") from None
    found = await srv.hub.wait(board, after, wait)
    nxt = max([after] + [int(e["id"]) for e in found])
    return JSONResponse({"next": nxt, "events": found})


async def plays(request: Request) -> Response:
    srv, board = authorised_board(request)
    with srv.metrics.plays.time():
        data = await read_json(request, checks.MAX_PLAYS_BYTES)
        try:
            records, counts, rejected = checks.plays(data)
        except ValueError as e:
            raise refuse(400, str(e)) from None
        if records or counts:
            await srv.store.write(ops.store_plays, board, records, counts)
    return JSONResponse({"accepted": [e["id"] for e in records + counts],
                         "rejected": rejected})


def screenshot_path(data_dir: Path, board: str) -> Path:
    return data_dir / ".server" / "screenshots" / f"{board}.jpg"


async def put_screenshot(request: Request) -> Response:
    srv, board = authorised_board(request)
    body = await read_body(request, checks.MAX_SCREENSHOT_BYTES,
                           "a screenshot (lower status.screenshot_width on the box)")
    if not body.startswith(b"\xff\xd8\xff"):
        raise refuse(415, "a screenshot must be a JPEG")
    await asyncio.to_thread(save_atomic, screenshot_path(srv.data_dir, board), body)
    await srv.store.write(ops.record_screenshot, board, len(body))
    return Response(status_code=204)


ROUTES = [
    Route("/boards/{board}/status", status, methods=["POST"]),
    Route("/boards/{board}/events", events, methods=["GET"]),
    Route("/boards/{board}/plays", plays, methods=["POST"]),
    Route("/boards/{board}/screenshot", put_screenshot, methods=["PUT"]),
]
