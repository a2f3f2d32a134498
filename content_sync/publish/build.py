"""Publishing: an operator's playlist TOML → media by SHA-256 + a signed manifest.

The playlist file is written by hand (see docs/PUBLISHING.md and
assets/demo/playlist.toml). The manifest is validated with the same parser the
boards use before it is signed, so an operator's mistake is caught at the desk,
not on a thousand screens.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from content_sync.protocol import (
    ALLOWED_TYPES,
    FORMAT,
    MEDIA_KINDS,
    ItemKind,
    ManifestError,
    dsse,
    parse_manifest,
    version_ceiling,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EXTRA_TYPES = {".mkv": "video/x-matroska", ".webp": "image/webp", ".webm": "video/webm"}


class PublishError(Exception):
    """The playlist cannot be published; the message says what to fix."""


@dataclass(frozen=True)
class MediaFile:
    sha256: str
    path: Path
    size: int
    type: str


@dataclass(frozen=True)
class Publication:
    board: str
    version: int
    manifest: bytes
    envelope: bytes
    media: dict[str, MediaFile]
    warning: str = ""  # something the operator should read (next_version's note)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _media_type(path: Path) -> str:
    mtype = EXTRA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if mtype not in ALLOWED_TYPES:
        raise PublishError(
            f"{path}: unsupported media type {mtype or 'unknown'}; "
            f"use one of {', '.join(sorted(ALLOWED_TYPES))}"
        )
    return mtype


def _iso(value: Any, where: str) -> str:
    """TOML dates/times → ISO 8601 with an offset (Vietnam time when none is given)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=VN_TZ)).isoformat()
    if isinstance(value, date):
        return datetime.combine(value, dtime(0, 0), VN_TZ).isoformat()
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise PublishError(
                f"{where}: {value!r} is not a date-time like 2026-11-24T08:00"
            ) from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=VN_TZ)).isoformat()
    raise PublishError(f"{where}: expected a date-time, got {value!r}")


def _item(
    raw: dict[str, Any], pl_id: str, index: int, base: Path, media: dict[str, MediaFile]
) -> dict[str, Any]:
    where = f"playlist {pl_id!r} item {index + 1}"
    item: dict[str, Any] = {k: v for k, v in raw.items() if k != "file"}
    item.setdefault("id", f"{pl_id}-{index + 1}")
    if "file" in raw:
        path = (base / str(raw["file"])).resolve()
        if not path.is_file():
            raise PublishError(f"{where}: media file {path} not found; fix 'file'")
        mtype = _media_type(path)
        sha = sha256_file(path)
        media[sha] = MediaFile(sha, path, path.stat().st_size, mtype)
        item["media"] = sha
        item.setdefault("type", MEDIA_KINDS[mtype].value)
    else:
        item.setdefault("type", ItemKind.TEXT.value)
    for key in ("valid_from", "valid_until"):
        if key in item:
            item[key] = _iso(item[key], f"{where} {key}")
    return item


def next_version(previous: int, now_ms: int) -> tuple[int, str]:
    """The version to publish after ``previous`` at ``now_ms``, and a note for the operator.

    Versions are milliseconds since the epoch, always above what was there before. A
    ``previous`` further ahead than any board takes (protocol: ``version_ceiling``) was
    refused by every board whose clock is right; counting from it would make every later
    version refused too, so it is passed over, with a note.
    """
    if previous > version_ceiling(0, now_ms):
        return now_ms, (f"the version published before ({previous}) is further ahead than "
                        "any board takes (a wrong clock or a version given by hand); boards "
                        f"refused it, so this one counts from now: {now_ms}")
    return max(now_ms, previous + 1), ""


def build_manifest(
    playlist_file: Path, board: str, version: int | None = None, previous: int = 0
) -> tuple[dict[str, Any], dict[str, MediaFile], str]:
    try:
        raw = tomllib.loads(playlist_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PublishError(f"playlist file {playlist_file} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PublishError(f"{playlist_file}: not valid UTF-8 TOML: {e}") from None
    base = playlist_file.parent
    media: dict[str, MediaFile] = {}
    playlists = []
    for i, pl in enumerate(raw.get("playlists", [])):
        pl = dict(pl)
        pl_id = str(pl.setdefault("id", f"playlist-{i + 1}"))
        sched = dict(pl.get("schedule", {}))
        for key in ("start", "end"):
            if key in sched:
                sched[key] = _iso(sched[key], f"playlist {pl_id!r} schedule.{key}")
        if sched:
            pl["schedule"] = sched
        pl["items"] = [_item(it, pl_id, j, base, media) for j, it in enumerate(pl.get("items", []))]
        playlists.append(pl)
    ticker = []
    for i, line in enumerate(raw.get("ticker", [])):
        entry = {"text": line} if isinstance(line, str) else dict(line)
        entry.setdefault("id", f"ticker-{i + 1}")
        ticker.append(entry)
    note = ""
    if version is None:
        version, note = next_version(previous, int(time.time() * 1000))
    manifest = {
        "format": FORMAT,
        "board": board,
        "version": version,
        "issued_at": datetime.now(UTC).astimezone(VN_TZ).isoformat(timespec="seconds"),
        "media": {m.sha256: {"size": m.size, "type": m.type} for m in media.values()},
        "playlists": playlists,
        "ticker": ticker,
    }
    return manifest, media, note


def prepare(
    playlist_file: Path, board: str, key: Ed25519PrivateKey, previous: int = 0
) -> Publication:
    manifest, media, note = build_manifest(playlist_file, board, previous=previous)
    body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    try:
        parsed = parse_manifest(body)
    except ManifestError as e:
        raise PublishError(f"{playlist_file}: {e}") from None
    if parsed.skipped:  # a board would leave it out: at the desk it is a mistake
        s = parsed.skipped[0]
        raise PublishError(f"{playlist_file}: playlist {s.playlist!r} item {s.item!r}: "
                           f"{s.reason}")
    envelope = dsse.sign(body, key)
    return Publication(board, int(manifest["version"]), body, envelope, media, note)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def manifest_version_in(envelope_bytes: bytes) -> int:
    """The version inside an (unverified) envelope, for choosing the next one; 0 if unreadable.

    Unreadable includes JSON nested too deep (RecursionError) and a version of
    ``Infinity``/``1e999`` (OverflowError from int()).
    """
    try:
        import base64

        env = json.loads(envelope_bytes)
        return int(json.loads(base64.b64decode(env["payload"]))["version"])
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return 0


def write_to_folder(pub: Publication, root: Path) -> Path:
    """Media first, then the manifest: a board never sees a manifest whose media is absent."""
    for m in pub.media.values():
        dest = root / "media" / m.sha256
        if not dest.exists() or dest.stat().st_size != m.size:
            _atomic_write(dest, m.path.read_bytes())
    dest = root / "boards" / pub.board / "manifest.json"
    _atomic_write(dest, pub.envelope)
    return dest
