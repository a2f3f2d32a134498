"""On the wire: plays and heartbeats travel gzip-compressed; a source that does not take
compressed bodies gets them plain; the server refuses broken or oversized encodings."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import requests

from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report import outbox
from content_sync.report.status_report import run_heartbeat_once
from content_sync.server.checks import MAX_PLAYS_BYTES
from tests.kit.status import (
    BOARD,
    BOARD_TOKEN,
    Middleware,
    add_plays,
    make_config,
    reference_server,
)

AUTH = {"Authorization": f"Bearer {BOARD_TOKEN}"}


class Recorder(Middleware):
    """ASGI middleware noting each request's path, encoding and body size on the wire;
    with ``refuse_gzip`` it answers 415 to compressed bodies, as an older source might."""

    def __init__(self, app: Any, refuse_gzip: bool = False) -> None:
        super().__init__(app)
        self.refuse_gzip = refuse_gzip
        self.seen: list[tuple[str, str, int]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        enc = headers.get("content-encoding", "")
        self.seen.append((scope["path"], enc, int(headers.get("content-length") or 0)))
        if self.refuse_gzip and enc == "gzip":
            await send({"type": "http.response.start", "status": 415,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"no gzip here\n"})
            return
        await self.app(scope, receive, send)


def recording(into: list[Recorder], refuse_gzip: bool = False) -> Any:
    def wrap(app: Any) -> Recorder:
        into.append(Recorder(app, refuse_gzip))
        return into[0]
    return wrap


def test_plays_and_heartbeat_are_compressed(tmp_path: Path) -> None:
    rec: list[Recorder] = []
    with reference_server(tmp_path / "source", middleware=recording(rec)) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        add_plays(config.db_path, 500)
        conn = store.connect(config.db_path)
        assert outbox.upload_plays_once(config, conn, make_session(config)).accepted == 500
        assert run_heartbeat_once(config, conn, make_session(config)).ok
        assert srv.db.play_totals(BOARD)["records"] == 500
        conn.close()
    (plays,) = [s for s in rec[0].seen if s[0].endswith("/plays")]
    (status,) = [s for s in rec[0].seen if s[0].endswith("/status")]
    assert plays[1] == "gzip" and plays[2] < 500 * 60  # about 35 bytes a record, not 260
    assert status[1] == "gzip"


def test_a_source_without_gzip_gets_plain_bodies(tmp_path: Path) -> None:
    rec: list[Recorder] = []
    with reference_server(tmp_path / "source", middleware=recording(rec, True)) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        add_plays(config.db_path, 300)
        conn = store.connect(config.db_path)
        assert outbox.upload_plays_once(config, conn, make_session(config)).accepted == 300
        add_plays(config.db_path, 300)
        assert outbox.upload_plays_once(config, conn, make_session(config)).accepted == 300
        assert srv.db.play_totals(BOARD)["records"] == 600
        conn.close()
    encodings = [enc for path, enc, _ in rec[0].seen if path.endswith("/plays")]
    assert encodings == ["gzip", "", ""]  # refused once, then plain from the start


def test_server_refuses_broken_oversized_and_unknown_encodings(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        url = f"{srv.url}boards/{BOARD}/plays"
        gz = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
        r = requests.post(url, data=b"not gzip at all", headers=gz, timeout=5)
        assert r.status_code == 400 and "is not gzip" in r.text
        bomb = gzip.compress(b"[" + b" " * (MAX_PLAYS_BYTES + 10) + b"]")
        assert len(bomb) < 100_000
        r = requests.post(url, data=bomb, headers=gz, timeout=10)
        assert r.status_code == 413
        r = requests.post(url, data=b"{}", timeout=5,
                          headers={**AUTH, "Content-Encoding": "br"})
        assert r.status_code == 415 and "use gzip or none" in r.text
