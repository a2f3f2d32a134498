"""An emergency does not wait for the other new media of its manifest (the interim manifest).

A real server on 127.0.0.1 holds a large picture half-sent until the test releases it,
so the sync run is caught mid-download; a second SQLite connection looks at what the
player would read meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from content_sync.board.engine import Engine, SyncResult, SyncState
from content_sync.db import store
from content_sync.protocol import manifest as mf
from kiosk_config import Config
from tests.kit.sync import Publisher, big_bmp, make_keys, png, serve_wsgi, write_config

EMERGENCY = {"id": "khan-cap", "title": "Cảnh báo lũ quét", "priority": "emergency",
             "risk_level": 4,
             "items": [{"id": "lu-1", "type": "text", "title": "CẢNH BÁO LŨ QUÉT",
                        "body": "Di chuyển ngay khỏi khu vực ven suối."}]}


class GatedApp:
    """Serves a source folder; ``media/{held}`` is sent half, then waits for ``release``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.held: set[str] = set()
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        req = Request(environ)
        path = self.root / req.path.lstrip("/")
        if not path.is_file():
            return Response("not found\n", 404)(environ, start_response)
        data = path.read_bytes()
        if path.name not in self.held:
            return Response(data)(environ, start_response)

        def body() -> Iterator[bytes]:
            yield data[: len(data) // 2]
            self.reached.set()
            self.release.wait(30)
            yield data[len(data) // 2:]

        resp = Response(body(), headers={"Content-Length": str(len(data))},
                        direct_passthrough=True)
        return resp(environ, start_response)


def _run(config: Config) -> tuple[threading.Thread, list[SyncResult]]:
    out: list[SyncResult] = []

    def go() -> None:
        conn = store.connect(config.db_path)
        try:
            out.append(Engine(config, conn).sync_once())
        finally:
            conn.close()

    t = threading.Thread(target=go)
    t.start()
    return t, out


def _shown(conn: sqlite3.Connection) -> mf.Manifest:
    stored = store.active_manifest(conn)
    assert stored is not None
    return mf.parse(stored.body)


def _present(conn: sqlite3.Connection, config: Config, m: mf.Manifest) -> bool:
    return all(store.media_path(config.cache_dir, h).is_file() for h in m.media) and \
        set(m.media) <= store.known_media(conn)


def test_emergency_goes_on_screen_while_other_media_download(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    app = GatedApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        pub.publish(1, {"anh-1": (png(1), "image/png")})
        assert Engine(config, conn).sync_once().ok

        # Version 2: a large new picture for the rotation and an emergency with its own
        # new small picture. The emergency's picture comes first; the large one is held.
        big = big_bmp(7, 300)
        app.held.add(pub.add_media(big))
        body = pub.manifest(2, {"anh-1": (png(1), "image/png"), "ban-do": (big, "image/bmp")})
        sign = png(9)
        sign_sha = pub.add_media(sign)
        body["media"][sign_sha] = {"size": len(sign), "type": "image/png"}
        emergency = json.loads(json.dumps(EMERGENCY))
        emergency["items"].append({"id": "lu-anh", "type": "image", "media": sign_sha,
                                   "duration": 5})
        body["playlists"].append(emergency)
        pub.write(body)
        gen = store.generation(conn)
        t, results = _run(config)
        try:
            assert app.reached.wait(20), "the large picture was never requested"
            shown = _shown(conn)
            assert store.active_version(conn) == 1 and store.pending_version(conn) == 2
            assert store.interim_version(conn) == 2 and store.generation(conn) > gen
            assert [p.id for p in shown.playlists] == ["pl-1", "khan-cap"]
            assert shown.version == 2 and sign_sha in shown.media
            assert len(shown.playlists[0].items) == 2  # version 1's rotation, not the new one
            assert _present(conn, config, shown)  # every media it names is here, verified
        finally:
            app.release.set()
            t.join(30)
        assert results and results[0].ok, results
        # The full activation of the same version, with its original signed body.
        assert store.active_version(conn) == 2 and store.interim_version(conn) is None
        full = store.active_manifest(conn)
        assert full is not None and json.loads(full.body) == body

        # Version 3 withdraws the emergency and brings another large picture: the
        # emergency leaves the screen at once, not after the download.
        app.reached.clear()
        app.release.clear()
        big3 = big_bmp(8, 300)
        app.held.add(pub.add_media(big3))
        pub.publish(3, {"anh-1": (png(1), "image/png"), "ban-do-2": (big3, "image/bmp")})
        t, results = _run(config)
        try:
            assert app.reached.wait(20)
            shown = _shown(conn)
            assert store.active_version(conn) == 2 and store.interim_version(conn) == 3
            assert "khan-cap" not in {p.id for p in shown.playlists}
            assert _present(conn, config, shown)
        finally:
            app.release.set()
            t.join(30)
        assert results and results[0].ok and store.active_version(conn) == 3
        assert store.interim_version(conn) is None
        conn.close()


def test_a_refused_manifest_takes_its_emergency_off_screen(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    app = GatedApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        pub.publish(1)
        assert Engine(config, conn).sync_once().ok
        # Version 2 names a "picture" that is not one: refused once it has arrived.
        junk = b"not a picture at all" * 5000
        app.held.add(pub.add_media(junk))
        body = pub.manifest(2, {"hong": (junk, "image/png")})
        body["playlists"].append(EMERGENCY)
        pub.write(body)
        t, results = _run(config)
        try:
            assert app.reached.wait(20)
            assert store.interim_version(conn) == 2
        finally:
            app.release.set()
            t.join(30)
        assert results and results[0].state == SyncState.REFUSED, results
        assert store.interim_version(conn) is None and store.active_version(conn) == 1
        assert "khan-cap" not in {p.id for p in _shown(conn).playlists}
        conn.close()
