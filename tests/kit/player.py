"""Test helpers for the player: a config in a tmp dir, real media, a real database.

Content goes in the way content_sync puts it: media files at ``media_path``,
``record_media`` then ``activate`` with manifest bytes (no signature needed there).
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from content_sync.db import store
from kiosk_config import Config

TZ_OFFSET = "+07:00"


def make_config(tmp_path: Path, geometry: str = "320x180+0+0", **display: Any) -> Config:
    data: dict[str, Any] = {
        "board": {"id": "test.board-01", "name": "UBND xã Pa Vệ Sủ"},
        "cache": {"dir": str(tmp_path / "cache")},
        "display": {"geometry": geometry, **display},
    }
    return Config.model_validate(data)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG",
        exif_orientation: int | None = None) -> bytes:
    img = Image.new("RGB", size, colour)
    buf = io.BytesIO()
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, format=fmt, exif=exif)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


class Board:
    """A cache dir + database that a test fills like the sync daemon would."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.conn = store.connect(config.db_path)
        self.media: dict[str, dict[str, Any]] = {}
        self.version = 0

    def add_media(self, data: bytes, mtype: str = "image/png") -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = store.media_path(self.config.cache_dir, sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        store.record_media(self.conn, sha, len(data), mtype)
        self.media[sha] = {"size": len(data), "type": mtype}
        return sha

    def add_file(self, path: Path, mtype: str) -> str:
        return self.add_media(path.read_bytes(), mtype)

    def publish(self, playlists: list[dict[str, Any]],
                ticker: list[dict[str, Any]] | None = None) -> int:
        self.version = max(self.version + 1, int(time.time() * 1000))
        used = {it["media"] for pl in playlists for it in pl["items"] if it.get("media")}
        body = json.dumps({
            "format": "eboard.manifest/1",
            "board": self.config.board.id,
            "version": self.version,
            "issued_at": "2026-01-01T00:00:00+07:00",
            "media": {sha: info for sha, info in self.media.items() if sha in used},
            "playlists": playlists,
            "ticker": ticker or [],
        }, ensure_ascii=False).encode()
        store.activate(self.conn, self.version, self.config.board.id,
                       "2026-01-01T00:00:00+07:00", body, "test-key", sorted(used))
        return self.version

    def overlay(self, source: str, playlists: dict[str, dict[str, Any]]) -> None:
        store.replace_overlays(self.conn, source, {
            pid: json.dumps(pl, ensure_ascii=False) for pid, pl in playlists.items()})

    def plays(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM plays ORDER BY started_at")]

    def status(self) -> dict[str, Any] | None:
        return store.get_status(self.conn, "player")

    def close(self) -> None:
        self.conn.close()


def playlist(pid: str, items: list[dict[str, Any]], priority: str = "normal",
             **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": pid, "priority": priority, "items": items, **extra}


def iso(dt: datetime) -> str:
    return dt.isoformat()


def window_around(now: datetime, before: float = 3600, after: float = 3600) -> dict[str, str]:
    return {"start": iso(now - timedelta(seconds=before)),
            "end": iso(now + timedelta(seconds=after))}


def make_clip(path: Path, colour: str = "green", seconds: float = 1.0,
              size: str = "160x120", rate: int = 25) -> Path:
    """A real H.264 clip of one colour, made by ffmpeg."""
    import subprocess

    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"color=c={colour}:size={size}:rate={rate}:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60)
    return path


class Xvfb:
    """A private X server; ``display`` is ':N'. Use as a context manager."""

    def __init__(self, size: str = "640x360x24") -> None:
        self.size = size
        self.display = ""
        self.proc: Any = None

    def __enter__(self) -> Xvfb:
        import os
        import shutil
        import subprocess

        exe = shutil.which("Xvfb")
        if exe is None:
            raise RuntimeError("Xvfb is not installed (make setup installs it)")
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [exe, "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp", "-br",
             "-noreset"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def vlc_wrappers() -> Counter[str]:
    """python-vlc player and event-manager objects alive, by class (e.g. kept by
    python-vlc's memoized ``event_manager()``, or in a cycle with their thunk)."""
    import vlc

    return Counter(type(o).__name__ for o in gc.get_objects()
                   if isinstance(o, vlc.MediaPlayer | vlc.EventManager))
