"""Media that verifies by hash but must not reach the screen: bombs, undecodable files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from content_sync.board import media_check
from content_sync.board.engine import Engine, SyncState
from content_sync.board.media_check import ContentRefused
from content_sync.db import store
from tests.kit.sync import Publisher, StaticApp, make_keys, mp4, png, serve_wsgi, write_config


def _bomb() -> bytes:
    """A small PNG that claims 12000 × 12000 pixels (above Pillow's ~89 M limit)."""
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _write(tmp_path: Path, data: bytes, name: str = "f") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_good_images_pass(tmp_path: Path) -> None:
    media_check.check(_write(tmp_path, png(1)), "image/png")
    media_check.check(_write(tmp_path, _jpeg()), "image/jpeg")


@pytest.mark.parametrize("data, words", [
    (_bomb(), "decompression bomb"),
    (_jpeg()[:200], "does not decode"),
    (b"<html>not an image</html>", "not an image"),
])
def test_bad_images_refused(tmp_path: Path, data: bytes, words: str) -> None:
    assert len(data) < 1_000_000
    with pytest.raises(ContentRefused, match=words):
        media_check.check(_write(tmp_path, data), "image/png")


def _path_with(tmp_path: Path, tools: list[str]) -> str:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for t in tools:
        os.symlink(f"/usr/bin/{t}", d / t)
    return str(d)


@pytest.mark.parametrize("tools, method", [
    (["ffmpeg", "ffprobe"], "ffmpeg"), (["ffprobe"], "ffprobe"), ([], "magic"),
])
def test_video_checks_by_the_tools_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           tools: list[str], method: str) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, tools))
    assert media_check.video_method() == method
    media_check.check(_write(tmp_path, mp4(), "ok.mp4"), "video/mp4")
    with pytest.raises(ContentRefused):
        media_check.check(_write(tmp_path, b"\0" * 4000, "bad.mp4"), "video/mp4")


def test_truncated_video_refused_by_decoding(tmp_path: Path) -> None:
    head = mp4()[:600]  # container header present, no frame data
    with pytest.raises(ContentRefused, match="ffmpeg"):
        media_check.check(_write(tmp_path, head), "video/mp4")


def test_manifest_with_a_bomb_is_refused_once_and_never_refetched(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"ok": (png(1), "image/png")})
    app = StaticApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        assert Engine(config, conn).sync_once().ok
        pub.publish(2, {"ok": (png(1), "image/png"), "bomb": (_bomb(), "image/png"),
                        "clip": (mp4(), "video/mp4")})
        r = Engine(config, conn).sync_once()
        assert r.state == SyncState.REFUSED and "decompression bomb" in r.reason
        assert store.active_version(conn) == 1
        assert store.manifest_state(conn, 2)[0] == "refused"  # type: ignore[index]
        bomb_gets = len(app.log.paths("/media/"))
        r = Engine(config, conn).sync_once()
        assert r.state == SyncState.REFUSED
        assert len(app.log.paths("/media/")) == bomb_gets  # not downloaded again
        assert sum("decompression bomb" in x["reason"] for x in store.recent_refusals(conn)) == 1
        pub.publish(3, {"ok": (png(1), "image/png"), "clip": (mp4(), "video/mp4")})
        assert Engine(config, conn).sync_once().ok
        assert store.active_version(conn) == 3
