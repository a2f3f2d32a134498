"""Whatever a source (or someone on the path) answers to the manifest request, a run ends
in a state and a reason, written in the status row the heartbeat reports: never an
exception out of the engine. A real HTTP server on 127.0.0.1 answers each on purpose,
to a fresh box (nothing stored, so its request is unconditional) and to a box with
content (whose request is conditional)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from content_sync.board.engine import Engine, SyncState
from content_sync.db import store
from tests.kit.sync import (
    Plan,
    Publisher,
    StaticApp,
    make_keys,
    misbehaving,
    png,
    serve_wsgi,
    write_config,
)


def _raw(status: int, body: bytes = b"", **headers: str) -> Callable[[], Response]:
    def make() -> Response:
        r = Response(body, status, content_type=headers.get("content_type", "text/plain"))
        r.headers.update({k.replace("_", "-").title(): v for k, v in headers.items()
                          if k != "content_type"})
        if not body and status not in (204, 304) and status >= 200:
            r.headers["Content-Length"] = "0"
        return r
    return make


# name: (answer, what the box's state is then, words of the reason)
ANSWERS: dict[str, tuple[Callable[[], Response], SyncState, str]] = {
    "304 to an unconditional request": (_raw(304), SyncState.SOURCE_ERROR, "304"),
    "204 No Content": (_raw(204), SyncState.SOURCE_ERROR, "204"),
    "206 to a full GET": (_raw(206, b'{"payload', content_range="bytes 0-8/900"),
                          SyncState.SOURCE_ERROR, "206"),
    "302 without Location": (_raw(302), SyncState.SOURCE_ERROR, "302"),
    "301 without Location": (_raw(301), SyncState.SOURCE_ERROR, "301"),
    "300 Multiple Choices": (_raw(300), SyncState.SOURCE_ERROR, "300"),
    "307 to another scheme": (_raw(307, location="ftp://127.0.0.1/m.json"),
                              SyncState.SOURCE_ERROR, "scheme"),
    "200 empty": (_raw(200), SyncState.SOURCE_ERROR, "empty"),
    "200 blank": (_raw(200, b" \r\n\t "), SyncState.SOURCE_ERROR, "empty"),
    "200 null": (_raw(200, b"null", content_type="application/json"),
                 SyncState.REFUSED, "not a JSON object"),
    "200 a JSON list": (_raw(200, b"[1, 2]"), SyncState.REFUSED, "not a JSON object"),
    "200 HTML": (_raw(200, b"<html>login</html>", content_type="text/html"),
                 SyncState.SOURCE_ERROR, "HTML"),
    "200 not UTF-8": (_raw(200, b"\xff\xfe{\x00}\x00"), SyncState.REFUSED, "UTF-8"),
    "418": (_raw(418), SyncState.SOURCE_ERROR, "418"),
    "503": (_raw(503), SyncState.SOURCE_ERROR, "503"),
}


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh box", "box with content"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_every_answer_ends_in_a_state_and_a_reason(tmp_path: Path, name: str,
                                                   fresh: bool) -> None:
    answer, state, words = ANSWERS[name]
    hostile = [fresh]  # a box with content takes the real manifest first

    def hook(req: Request) -> Response | None:
        if hostile[0] and req.path.endswith("/manifest.json"):
            return answer()
        return None

    key, pubkey = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "src", key).publish(1, {"a": (png(1), "image/png")})
    app = StaticApp(tmp_path / "src", hook=hook)
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        if not fresh:
            assert Engine(config, conn).sync_once().ok
            hostile[0] = True
        if name == "304 to an unconditional request" and not fresh:
            state, words = SyncState.UP_TO_DATE, ""  # asked conditionally: the right answer
        r = Engine(config, conn).sync_once()
        assert r.state == state, (name, r.state, r.reason)
        assert words in r.reason, (name, r.reason)
        assert r.reason
        row = store.get_status(conn, "sync")
        assert row is not None and row["state"] == state.value and row["reason"] == r.reason
        assert store.active_version(conn) == (0 if fresh else 1)
        # Once the source answers right again, the box takes the real manifest.
        hostile[0] = False
        assert Engine(config, conn).sync_once().ok
        assert store.active_version(conn) == 1
        conn.close()


@pytest.mark.parametrize("location", ["http://[::1", "http://127.0.0.1:0", "javascript:"])
def test_a_redirect_to_nowhere_is_a_source_error(tmp_path: Path, location: str) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    path = "/boards/test.board-01/manifest.json"
    plan = Plan(files={path: b"{}"}, plans={path: [f"redirect:{location}"]})
    with misbehaving(plan) as url:
        config = write_config(tmp_path, url, [pubkey])
        conn = store.connect(config.db_path)
        r = Engine(config, conn).sync_once()
        assert r.state in (SyncState.SOURCE_ERROR, SyncState.OFFLINE), (r.state, r.reason)
        row = store.get_status(conn, "sync")
        assert row is not None and row["state"] == r.state.value and row["reason"] == r.reason
        conn.close()


def test_an_empty_manifest_file_on_a_stick_is_a_source_error(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "stick", key)
    path = pub.write(pub.manifest(1))
    path.write_bytes(b"")  # a copy cut short, or a stick pulled while it was written
    config = write_config(tmp_path, (tmp_path / "stick").as_uri() + "/", [pubkey])
    conn = store.connect(config.db_path)
    r = Engine(config, conn).sync_once()
    assert r.state == SyncState.SOURCE_ERROR and "empty" in r.reason, (r.state, r.reason)
    pub.write(pub.manifest(1))
    assert Engine(config, conn).sync_once().ok
    conn.close()


def test_a_run_that_fails_inside_the_box_still_ends_in_a_state_and_a_reason(
        tmp_path: Path) -> None:
    """Not the source's answer but the box itself (here a technician's file where the media
    folder belongs): the run used to end in a traceback with no status written."""
    from content_sync.db import SyncStatus, rows
    from tests.kit.sync import Publisher, make_keys, png, write_config

    key, pub = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "www", key).publish(1, {"a": (png(1), "image/png")})
    (tmp_path / "box").mkdir()
    config = write_config(tmp_path / "box", (tmp_path / "www").as_uri() + "/", [pub])
    conn = store.connect(config.db_path)
    media = config.cache_dir / "media"
    if media.exists():
        media.rmdir()
    media.write_text("not a folder")
    r = Engine(config, conn).sync_once()
    assert r.state == SyncState.FAILED and "NotADirectoryError" in r.reason
    assert str(media) in r.reason and "journalctl -u eboard-sync" in r.reason
    row = rows.read(conn, SyncStatus)
    assert row is not None and row.state == "failed" and row.last_error == r.reason
    media.unlink()  # the technician puts it right: the next run takes the manifest
    assert Engine(config, conn).sync_once().ok
    conn.close()
