"""What boards send back, and what operators send them: plays, screenshots, commands.

Routes added to the reference server by :func:`register`:

- ``POST boards/{id}/plays`` (board token): ``{"records": [...], "counts": [...]}``;
  answers ``{"accepted": [ids], "rejected": [{"id", "reason"}]}``. An id already
  stored is accepted again and not stored twice.
- ``PUT boards/{id}/screenshot`` (board token): a JPEG, at most 2 MB.
- ``GET boards/{id}/screenshot.jpg``: the latest one (for the status page).
- ``POST boards/{id}/commands`` (operator token): queue a command; it is delivered
  in the status answer and as a ``command`` event on the long-poll until the
  board reports its result in a heartbeat.
- ``GET boards/{id}/commands`` (operator token): the queue with results.
- ``GET boards/{id}/plays/summary`` (operator token): totals stored for a board.
"""

from __future__ import annotations

import json
import os
import re
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_file

from content_sync.server.db import ServerDB
from content_sync.server.events import EventHub

MAX_PLAYS_BYTES = 8 * 1024 * 1024
MAX_BATCH = 2000
MAX_SCREENSHOT_BYTES = 2 * 1024 * 1024
DEFAULT_COMMAND_TTL_S = 3600
MAX_COMMAND_TTL_S = 7 * 86400
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

TEXT = (str, type(None))
NUM = (int, float, type(None))
RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "item_id": TEXT, "playlist_id": TEXT, "manifest_version": (int, type(None)),
    "started_at": (str,), "ended_at": TEXT, "duration_s": NUM, "outcome": TEXT,
    "detail": TEXT,
}
COUNT_TYPES: dict[str, tuple[type, ...]] = {
    "day": (str,), "playlist_id": TEXT, "item_id": TEXT, "outcome": TEXT,
    "plays": (int,), "seconds": (int, float), "first_started": TEXT, "last_ended": TEXT,
}


def _describe(allowed: tuple[type, ...]) -> str:
    if float in allowed:
        words = ["a number"]
    elif int in allowed:
        words = ["an integer"]
    else:
        words = ["a string"]
    if type(None) in allowed:
        words.append("null")
    return " or ".join(words)


def _check(entry: Any, types: dict[str, tuple[type, ...]]) -> tuple[str, str | None]:
    """(id, reason it is refused or None)."""
    if not isinstance(entry, dict):
        return "", "not a JSON object"
    rid = entry.get("id")
    if not isinstance(rid, str) or not UUID_RE.match(rid):
        return str(rid), "id must be a UUID"
    for key, allowed in types.items():
        value = entry.get(key)
        if not isinstance(value, allowed) or isinstance(value, bool):
            return rid, f"{key} must be {_describe(allowed)}"
    return rid, None


def read_json(max_bytes: int) -> Any:
    """The request's JSON body, gzip-encoded or not (at most ``max_bytes`` once inflated).

    None when it is not JSON; aborts with 400/413/415 on a bad or oversized encoding.
    """
    raw = request.get_data(cache=False)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, max_bytes + 1)
        except zlib.error:
            abort(Response("the body says Content-Encoding: gzip but is not gzip\n", 400))
        if len(raw) > max_bytes or inflater.unconsumed_tail:
            abort(Response(f"the inflated body passes {max_bytes} bytes\n", 413))
    elif encoding not in ("", "identity"):
        abort(Response(f"Content-Encoding {encoding} is not supported; use gzip or none\n",
                       415))
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _save_atomic(dest: Path, body: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.upload")
    tmp.write_bytes(body)
    os.replace(tmp, dest)


def screenshot_path(data_dir: Path, board: str) -> Path:
    return data_dir / ".server" / "screenshots" / f"{board}.jpg"


def register(app: Flask, db: ServerDB, hub: EventHub, data_dir: Path,
             require_board: Callable[[str], None],
             require_operator: Callable[[], None]) -> None:
    @app.post("/boards/<board>/plays")
    def plays(board: str) -> Response:
        require_board(board)
        if (request.content_length or 0) > MAX_PLAYS_BYTES:
            abort(Response(f"a batch of plays is limited to {MAX_PLAYS_BYTES} bytes\n", 413))
        data = read_json(MAX_PLAYS_BYTES)
        if not isinstance(data, dict):
            abort(Response('body must be {"records": [...], "counts": [...]}\n', 400))
        records, counts = data.get("records") or [], data.get("counts") or []
        if not isinstance(records, list) or not isinstance(counts, list) \
                or len(records) + len(counts) > MAX_BATCH:
            abort(Response(f"records and counts must be lists of at most {MAX_BATCH} in all\n",
                           400))
        good_r: list[dict[str, Any]] = []
        good_c: list[dict[str, Any]] = []
        rejected: list[dict[str, str]] = []
        for entries, types, good in ((records, RECORD_TYPES, good_r),
                                     (counts, COUNT_TYPES, good_c)):
            for entry in entries:
                rid, reason = _check(entry, types)
                if reason:
                    rejected.append({"id": rid, "reason": reason})
                else:
                    good.append({"id": rid, **{k: entry.get(k) for k in types}})
        db.store_plays(board, good_r, good_c)
        return jsonify({"accepted": [e["id"] for e in good_r + good_c], "rejected": rejected})

    @app.get("/boards/<board>/plays/summary")
    def plays_summary(board: str) -> Response:
        require_operator()
        return jsonify(db.play_totals(board))

    @app.put("/boards/<board>/screenshot")
    def put_screenshot(board: str) -> tuple[str, int]:
        require_board(board)
        if (request.content_length or 0) > MAX_SCREENSHOT_BYTES:
            abort(Response(f"a screenshot is limited to {MAX_SCREENSHOT_BYTES} bytes; "
                           "lower status.screenshot_width on the box\n", 413))
        body = request.get_data(cache=False)
        if len(body) > MAX_SCREENSHOT_BYTES:
            abort(413)
        if not body.startswith(b"\xff\xd8\xff"):
            abort(Response("a screenshot must be a JPEG\n", 415))
        _save_atomic(screenshot_path(data_dir, board), body)
        db.record_screenshot(board, len(body))
        return "", 204

    @app.get("/boards/<board>/screenshot.jpg")
    def get_screenshot(board: str) -> Response:
        require_known(board)
        path = screenshot_path(data_dir, board)
        if not path.is_file():
            abort(404)
        resp = send_file(path, mimetype="image/jpeg", conditional=True, etag=True)
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    def require_known(board: str) -> None:
        if not re.match(r"^[a-z0-9][a-z0-9._-]{0,127}$", board):
            abort(404)

    @app.post("/boards/<board>/commands")
    def post_command(board: str) -> tuple[Response, int]:
        require_operator()
        require_known(board)
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("command"), str) \
                or not COMMAND_NAME_RE.match(data["command"]):
            abort(Response('body must be {"command": "name", "args": {...}, "ttl_s": N}\n',
                           400))
        args = data.get("args", {})
        ttl = data.get("ttl_s", DEFAULT_COMMAND_TTL_S)
        if not isinstance(args, dict) or not isinstance(ttl, int) \
                or not 10 <= ttl <= MAX_COMMAND_TTL_S:
            abort(Response(f"args must be an object and ttl_s 10..{MAX_COMMAND_TTL_S}\n", 400))
        now = datetime.now(UTC)
        command = {"id": str(uuid.uuid4()), "command": data["command"], "args": args,
                   "created_at": now.isoformat(timespec="milliseconds"),
                   "expires_at": (now + timedelta(seconds=ttl)).isoformat(
                       timespec="milliseconds")}
        db.add_command(board, command)
        hub.publish(board, "command", {"command": command})
        return jsonify(command), 201

    @app.get("/boards/<board>/commands")
    def list_commands(board: str) -> Response:
        require_operator()
        require_known(board)
        return jsonify(db.commands(board))


def status_answer(db: ServerDB, board: str, data: dict[str, Any]) -> dict[str, Any]:
    """Record command results carried by a heartbeat; answer with the open commands."""
    results = data.get("command_results")
    if isinstance(results, list):
        db.record_results(board, [r for r in results if isinstance(r, dict)])
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {"ok": True, "commands": db.open_commands(board, now)}
