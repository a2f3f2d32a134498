"""The static part: ``boards/{id}/manifest.json`` and ``media/{sha256}`` from the folder.

Plain files, so nginx, a CDN or object storage can serve them instead (docs/
ARCHITECTURE.md). Here: ETag and Last-Modified with 304 answers decided from one
``stat`` (the file is not opened for a board whose manifest has not changed), and
byte ranges for resumed media downloads (Starlette's FileResponse).
"""

from __future__ import annotations

import os
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from content_sync.protocol import SHA256_RE
from content_sync.server.http import board_of, refuse

MANIFEST_CACHE = "no-cache"
MEDIA_CACHE = "public, max-age=31536000, immutable"


def _not_modified(request: Request, etag: str, mtime: float) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag in tags or "*" in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            return int(mtime) <= int(parsedate_to_datetime(ims).timestamp())
        except (TypeError, ValueError):
            return False
    return False


def serve_file(request: Request, path: Path, etag: str, media_type: str,
               cache: str) -> Response:
    try:
        st = os.stat(path)
    except OSError:
        raise refuse(404, "not published") from None
    headers = {"etag": etag, "cache-control": cache,
               "last-modified": formatdate(st.st_mtime, usegmt=True)}
    if _not_modified(request, etag, st.st_mtime):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers, stat_result=st)


def manifest_path(data_dir: Path, board: str) -> Path:
    return data_dir / "boards" / board / "manifest.json"


def media_path(data_dir: Path, name: str) -> Path:
    return data_dir / "media" / name


async def manifest(request: Request) -> Response:
    data_dir: Path = request.app.state.source.data_dir
    path = manifest_path(data_dir, board_of(request))
    try:
        st = os.stat(path)
    except OSError:
        raise refuse(404, "no manifest is published for this board") from None
    return serve_file(request, path, f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
                      "application/json", MANIFEST_CACHE)


async def media(request: Request) -> Response:
    name = str(request.path_params["name"])
    if not SHA256_RE.match(name):
        raise refuse(404, "media are named by their SHA-256 (64 lowercase hex digits)")
    data_dir: Path = request.app.state.source.data_dir
    return serve_file(request, media_path(data_dir, name), f'"{name}"',
                      "application/octet-stream", MEDIA_CACHE)
