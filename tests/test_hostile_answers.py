"""A source (or something pretending to be one) that answers the box's own requests
with hostile JSON: nested too deep for Python's parser (RecursionError, not a
ValueError), numbers too big for an int. Each is a clear failure of that request, never
an exception out of the job, and nothing is lost: proof of play stays in the outbox.
(The manifest path is covered by tests/test_sync_manifest_props.py and fuzz/.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from content_sync.board.source import HttpSource, SourceError
from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report import outbox
from content_sync.report.status_report import run_heartbeat_once
from tests.kit.status import BOARD, Middleware, add_plays, make_config, reference_server

DEEP = b"[" * 200_000 + b"]" * 200_000
ANSWERS = {
    "deep": DEEP,
    "deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "huge id": b'{"next": 1e999, "events": [{"id": 1e999, "type": "manifest", "version": 2}]}',
}


class Hostile(Middleware):
    """ASGI middleware answering ``body`` (as JSON, 200) to every request whose path ends
    with ``suffix``; everything else goes to the real reference server."""

    def __init__(self, app: Any, suffix: str, body: bytes) -> None:
        super().__init__(app)
        self.suffix, self.body = suffix, body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(self.suffix):
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body"):  # the request's body, read and dropped
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode())]})
        await send({"type": "http.response.body", "body": self.body})


@pytest.mark.parametrize("kind", list(ANSWERS))
def test_events_answer(tmp_path: Path, kind: str) -> None:
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/events", ANSWERS[kind])) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        source = HttpSource(config)
        with pytest.raises(SourceError, match="not an events list"):
            source.events(BOARD, 0, 1)
        source.close()


@pytest.mark.parametrize("kind", ["deep", "deep object"])
def test_heartbeat_answer(tmp_path: Path, kind: str) -> None:
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/status", ANSWERS[kind])) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        conn = store.connect(config.db_path)
        hb = run_heartbeat_once(config, conn, make_session(config))
        assert not hb.ok and hb.error is not None
        assert "nested too deep" in hb.error and "/status" in hb.error
        conn.close()


@pytest.mark.parametrize("kind", ["deep", "deep object"])
def test_plays_answer_keeps_the_records(tmp_path: Path, kind: str) -> None:
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/plays", ANSWERS[kind])) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        add_plays(config.db_path, 20)
        conn = store.connect(config.db_path)
        result = outbox.upload_plays_once(config, conn, make_session(config))
        assert result.accepted == 0 and result.error is not None
        assert "nested too deep" in result.error and "/plays" in result.error
        assert store.outbox_size(conn) == 20  # nothing acknowledged, nothing lost
        conn.close()


# Half a surrogate pair escaped in JSON: json.loads keeps it, and no UTF-8 encoder takes
# it (SQLite, the log file, the next heartbeat).
LONE = b'"\\ud800"'
COMMANDS = {
    "id": b'{"commands": [{"id": ' + LONE + b', "name": "sync_now"}]}',
    "name": b'{"commands": [{"id": "c-1", "name": ' + LONE + b'}]}',
    "args": b'{"commands": [{"id": "c-2", "name": "log_level", "args": {"level": '
            + LONE + b', "minutes": 1}}]}',
}


@pytest.mark.parametrize("where", list(COMMANDS))
def test_heartbeat_answer_with_a_lone_surrogate(tmp_path: Path, where: str) -> None:
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/status", COMMANDS[where])) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        conn = store.connect(config.db_path)
        run_heartbeat_once(config, conn, make_session(config))  # must not raise
        hb = run_heartbeat_once(config, conn, make_session(config))  # the results go out
        assert hb.error is None or "\ud800" not in hb.error
        conn.close()


def test_plays_answer_with_a_lone_surrogate_keeps_the_records(tmp_path: Path) -> None:
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/plays", b'{"accepted": [' + LONE + b'], "duplicates": [' + LONE + b']}')) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        add_plays(config.db_path, 5)
        conn = store.connect(config.db_path)
        outbox.upload_plays_once(config, conn, make_session(config))  # must not raise
        assert store.outbox_size(conn) == 5
        conn.close()


def test_events_answer_with_a_lone_surrogate(tmp_path: Path) -> None:
    body = b'{"next": 3, "events": [{"id": 2, "type": ' + LONE + b'}, {"id": 3, "type": ' \
        b'"command", "command": {"id": ' + LONE + b', "name": "screenshot"}}]}'
    with reference_server(tmp_path / "src", middleware=lambda app: Hostile(
            app, "/events", body)) as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        source = HttpSource(config)
        try:
            source.events(BOARD, 0, 1)
        except SourceError as e:
            str(e).encode("utf-8")
        source.close()
