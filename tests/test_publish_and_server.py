"""Publishing and the reference source server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from content_sync.protocol import dsse
from content_sync.protocol.keys import generate, load_private, load_public
from content_sync.protocol.manifest import parse
from content_sync.publish.build import PublishError, prepare, write_to_folder
from content_sync.publish.remote import upload
from content_sync.server import create_app
from content_sync.server.tokens import Tokens
from tests.kit.status import serve_app

BOARD = "test.board-01"


def make_playlist(tmp: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp / "red.png")
    pl = tmp / "playlist.toml"
    pl.write_text(
        """
[[playlists]]
id = "p1"
title = "Thông báo"
[playlists.schedule]
start = 2026-11-01T00:00:00
times = [["06:00", "22:00"]]
[[playlists.items]]
file = "red.png"
duration = 5
[[playlists.items]]
title = "THÔNG BÁO"
body = "Họp dân lúc 8 giờ"
[[ticker]]
text = "Dòng chữ chạy"
""",
        encoding="utf-8",
    )
    return pl


@pytest.fixture()
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return generate(tmp_path / "keys")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Tokens]]:
    data = tmp_path / "source"
    data.mkdir()
    tokens = Tokens(operator="op-secret", boards={BOARD: "board-secret"})
    app = create_app(data, tokens, long_poll_max=5)
    with serve_app(app) as served:
        yield served.url, data, tokens


def test_keys_private_mode_and_sign_verify(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keypair
    assert priv.stat().st_mode & 0o777 == 0o600
    env = dsse.sign(b'{"a": 1}', load_private(priv))
    assert dsse.verify(env, [load_public(pub)]).body == b'{"a": 1}'
    other = generate(tmp_path / "other")[1]
    with pytest.raises(dsse.EnvelopeError, match="no valid signature by a trusted key"):
        dsse.verify(env, [load_public(other)])
    forged = json.loads(env)
    forged["payload"] = base64.b64encode(b'{"a": 2}').decode()
    with pytest.raises(dsse.EnvelopeError):
        dsse.verify(json.dumps(forged).encode(), [load_public(pub)])


def test_publish_to_folder_writes_media_and_signed_manifest(
    keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    pl = make_playlist(tmp_path)
    pub = prepare(pl, BOARD, load_private(keypair[0]))
    manifest_path = write_to_folder(pub, tmp_path / "out")
    verified = dsse.verify(manifest_path.read_bytes(), [load_public(keypair[1])])
    m = parse(verified.body)
    assert m.board == BOARD and m.version == pub.version
    image, text = m.playlists[0].items
    assert image.type == "image" and image.media in m.media
    assert (tmp_path / "out" / "media" / image.media).read_bytes() == (
        tmp_path / "red.png"
    ).read_bytes()
    assert text.type == "text" and text.title == "THÔNG BÁO"
    assert m.playlists[0].schedule.start is not None
    assert m.playlists[0].schedule.start.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]
    assert m.ticker[0].text == "Dòng chữ chạy"


def test_publish_refuses_bad_playlist_with_reason(
    keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[playlists]]\nid="p"\n[[playlists.items]]\nfile="missing.jpg"\n')
    with pytest.raises(PublishError, match="missing.jpg not found"):
        prepare(bad, BOARD, load_private(keypair[0]))
    bad.write_text('[[playlists]]\nid="p"\npriority="urgent"\n[[playlists.items]]\ntitle="x"\n')
    with pytest.raises(PublishError, match="priority"):
        prepare(bad, BOARD, load_private(keypair[0]))


def test_server_static_part_conditional_and_range(
    server: tuple[str, Path, Tokens], keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    base, data, tokens = server
    pub = prepare(make_playlist(tmp_path), BOARD, load_private(keypair[0]))
    upload(pub, base, tokens.operator)
    r = requests.get(f"{base}boards/{BOARD}/manifest.json", timeout=5)
    assert r.status_code == 200 and r.content == pub.envelope
    etag = r.headers["ETag"]
    r2 = requests.get(
        f"{base}boards/{BOARD}/manifest.json", headers={"If-None-Match": etag}, timeout=5
    )
    assert r2.status_code == 304 and r2.content == b""
    sha = next(iter(pub.media))
    r3 = requests.get(f"{base}media/{sha}", headers={"Range": "bytes=10-19"}, timeout=5)
    assert r3.status_code == 206 and r3.content == pub.media[sha].path.read_bytes()[10:20]
    assert requests.get(f"{base}media/..%2F..%2Fetc%2Fpasswd", timeout=5).status_code == 404
    assert requests.get(f"{base}boards/..%2Fx/manifest.json", timeout=5).status_code == 404


def test_server_write_endpoints_refuse_missing_or_wrong_token(
    server: tuple[str, Path, Tokens], keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    base, data, tokens = server
    pub = prepare(make_playlist(tmp_path), BOARD, load_private(keypair[0]))
    with pytest.raises(PublishError, match="401"):
        upload(pub, base, "wrong")
    assert not (data / "boards").exists()
    r = requests.post(f"{base}boards/{BOARD}/status", json={"a": 1}, timeout=5)
    assert r.status_code == 401
    r = requests.post(
        f"{base}boards/{BOARD}/status",
        json={"a": 1},
        timeout=5,
        headers={"Authorization": "Bearer op-secret"},
    )
    assert r.status_code == 401
    sha = "0" * 64
    r = requests.put(
        f"{base}media/{sha}", data=b"xyz", timeout=5, headers={"Authorization": "Bearer op-secret"}
    )
    assert r.status_code == 400 and "do not match" in r.text


def test_status_is_stored_and_events_wake_a_long_poll(
    server: tuple[str, Path, Tokens], keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    base, data, tokens = server
    auth = {"Authorization": "Bearer board-secret"}
    r = requests.post(
        f"{base}boards/{BOARD}/status", json={"board": BOARD, "x": "ố"}, headers=auth, timeout=5
    )
    assert r.status_code == 200 and r.json()["commands"] == []
    boards = requests.get(f"{base}boards.json", timeout=5).json()
    assert boards[0]["board"] == BOARD and boards[0]["status"]["x"] == "ố"

    r = requests.get(f"{base}boards/{BOARD}/events?after=0&wait=0", headers=auth, timeout=5)
    start = r.json()["next"]
    result: dict[str, object] = {}

    def poll() -> None:
        t0 = time.monotonic()
        resp = requests.get(
            f"{base}boards/{BOARD}/events?after={start}&wait=5", headers=auth, timeout=10
        )
        result["elapsed"] = time.monotonic() - t0
        result["body"] = resp.json()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    pub = prepare(make_playlist(tmp_path), BOARD, load_private(keypair[0]))
    write_to_folder(pub, data)  # a folder publish, noticed by the watcher
    t.join(10)
    body = result["body"]
    assert isinstance(body, dict)
    assert [e["version"] for e in body["events"] if e["type"] == "manifest"] == [pub.version]
    assert body["next"] > start
    assert float(result["elapsed"]) < 5  # woken by the event, not by the wait running out


def test_stopping_the_test_server_ends_its_io_loop_with_connections_open(
        tmp_path: Path) -> None:
    """The harness's server must leave no thread selecting on closed descriptors: with an
    idle keep-alive connection and a long-poll open, its I/O loop thread ends at stop."""
    from tests.kit.status import BOARD, BOARD_TOKEN, reference_server

    auth = {"Authorization": f"Bearer {BOARD_TOKEN}"}
    answers: list[int] = []
    with reference_server(tmp_path / "data") as srv:
        idle = requests.Session()
        assert idle.get(srv.url + "boards.json", timeout=5).status_code == 200
        first = requests.get(f"{srv.url}boards/{BOARD}/events?after=0&wait=0", headers=auth,
                             timeout=5).json()["next"]
        waiting = threading.Thread(target=lambda: answers.append(requests.get(
            f"{srv.url}boards/{BOARD}/events?after={first}&wait=5", headers=auth,
            timeout=10).status_code), daemon=True)
        waiting.start()
        time.sleep(0.5)
        assert answers == []  # the long-poll is still open when the server stops
    loops = [t for t in threading.enumerate() if t.name == "uvicorn-loop"]
    assert loops == [], "the server's I/O loop outlived stop()"
    idle.close()
    waiting.join(10)
