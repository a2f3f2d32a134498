"""Flask routes of the reference source server (eboard/1), served by waitress.

Static part: ``boards/{id}/manifest.json`` and ``media/{sha256}`` from the data
folder, with ETag, Last-Modified and Range handled by werkzeug. Dynamic part:
status, events long-poll and operator uploads, each behind a bearer token; plays,
screenshots, commands and the operator status page (``reports``, ``status_page``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_file

from content_sync.protocol import SHA256_RE
from content_sync.server import reports, status_page
from content_sync.server.db import ServerDB
from content_sync.server.events import EventHub
from content_sync.server.tokens import Tokens, load_tokens

log = logging.getLogger(__name__)
BOARD_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_STATUS_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def _check_board(board: str) -> None:
    if not BOARD_RE.match(board):
        abort(404)


def create_app(data_dir: Path, tokens: Tokens | None = None,
               long_poll_max: float = 25.0) -> Flask:
    data_dir = data_dir.resolve()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    tokens = tokens or Tokens()
    db = ServerDB(data_dir / ".server" / "server.db")
    hub = EventHub(db, data_dir)
    hub.start()
    app.extensions["eboard"] = {"db": db, "hub": hub, "tokens": tokens, "data_dir": data_dir}

    def require_board(board: str) -> None:
        _check_board(board)
        if not tokens.board_ok(board, _bearer()):
            abort(Response("missing or wrong bearer token for this board\n", 401,
                           {"WWW-Authenticate": "Bearer"}))

    def require_operator() -> None:
        if not tokens.operator_ok(_bearer()):
            abort(Response("missing or wrong operator token\n", 401,
                           {"WWW-Authenticate": "Bearer"}))

    @app.get("/boards/<board>/manifest.json")
    def manifest(board: str) -> Response:
        _check_board(board)
        path = data_dir / "boards" / board / "manifest.json"
        if not path.is_file():
            abort(404)
        resp = send_file(path, mimetype="application/json", conditional=True, etag=True)
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @app.get("/media/<name>")
    def media(name: str) -> Response:
        if not SHA256_RE.match(name):
            abort(404)
        path = data_dir / "media" / name
        if not path.is_file():
            abort(404)
        resp = send_file(path, mimetype="application/octet-stream", conditional=True, etag=name)
        resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return resp

    @app.put("/media/<name>")
    def put_media(name: str) -> tuple[str, int]:
        require_operator()
        if not SHA256_RE.match(name):
            abort(Response("media name must be 64 lowercase hex digits\n", 400))
        dest = data_dir / "media" / name
        if dest.is_file():
            return "", 204
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{name}.{os.getpid()}.upload")
        h = hashlib.sha256()
        with tmp.open("wb") as f:
            while chunk := request.stream.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
        if h.hexdigest() != name:
            tmp.unlink()
            abort(Response("uploaded bytes do not match the SHA-256 in the URL\n", 400))
        os.replace(tmp, dest)
        return "", 201

    @app.put("/boards/<board>/manifest.json")
    def put_manifest(board: str) -> tuple[str, int]:
        require_operator()
        _check_board(board)
        body = request.get_data(cache=False)
        try:
            env = json.loads(body)
            assert isinstance(env, dict) and "payload" in env and "signatures" in env
        except (ValueError, AssertionError):
            abort(Response("body is not a DSSE envelope\n", 400))
        dest = data_dir / "boards" / board / "manifest.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".manifest.{os.getpid()}.upload")
        tmp.write_bytes(body)
        os.replace(tmp, dest)
        hub.scan()
        return "", 201

    @app.post("/boards/<board>/status")
    def status(board: str) -> Response:
        require_board(board)
        if (request.content_length or 0) > MAX_STATUS_BYTES:
            abort(413)
        data = reports.read_json(MAX_STATUS_BYTES)
        if not isinstance(data, dict):
            abort(Response("status must be a JSON object\n", 400))
        db.store_heartbeat(board, data)
        return jsonify(reports.status_answer(db, board, data))

    @app.get("/boards/<board>/events")
    def events(board: str) -> Response:
        require_board(board)
        after = request.args.get("after", "0")
        wait = request.args.get("wait", str(long_poll_max))
        try:
            after_n = int(after)
            wait_s = max(0.0, min(float(wait), long_poll_max))
        except ValueError:
            abort(Response("after must be an integer and wait a number of seconds\n", 400))
        found = hub.wait(board, after_n, wait_s)
        nxt = max([after_n] + [int(e["id"]) for e in found])
        return jsonify({"next": nxt, "events": found})

    reports.register(app, db, hub, data_dir, require_board, require_operator)
    status_page.register(app, db)

    @app.get("/boards.json")
    def boards() -> Response:
        return jsonify(db.boards())

    @app.get("/")
    def index() -> tuple[str, int, dict[str, Any]]:
        return ("eboard reference source (eboard/1)\n", 200, {"Content-Type": "text/plain"})

    return app


def serve(data_dir: Path, host: str = "127.0.0.1", port: int = 8765,
          tokens_file: Path | None = None, threads: int = 32) -> None:
    """Run the server until interrupted (waitress, a production WSGI server)."""
    from waitress import serve as waitress_serve

    app = create_app(data_dir, load_tokens(tokens_file))
    log.info("serving %s on http://%s:%d/", data_dir, host, port)
    waitress_serve(app, host=host, port=port, threads=threads, ident="eboard-source")
