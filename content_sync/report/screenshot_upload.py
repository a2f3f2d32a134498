"""Screenshots to the source: asked of the player, uploaded by the sync side.

The player writes what is really on screen as a JPEG to ``<cache>/screenshot.jpg``
(temp file + rename) when a ``screenshot`` player request asks for one — from an
operator's command, or every ``status.screenshot_interval`` seconds from
:func:`request_if_due`. :func:`upload_if_new` sends the file with
``PUT boards/{id}/screenshot`` once per new file.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass

import requests

from content_sync.db import player_requests, screenshot_path, store
from content_sync.report import outbox
from kiosk_config import Config

__all__ = ["request_if_due", "screenshot_job", "screenshot_path", "upload_if_new"]
log = logging.getLogger(__name__)
UPLOADED_KEY = "screenshot.uploaded_mtime_ns"
REQUESTED_KEY = "screenshot.last_auto_request"


def screenshot_url(config: Config) -> str:
    return f"{config.source.url}boards/{config.board.id}/screenshot"


def request_if_due(config: Config, conn: sqlite3.Connection, now: float | None = None) -> bool:
    """Ask the player for a screenshot when the configured interval has passed."""
    interval = config.status.screenshot_interval
    if interval <= 0 or player_requests.has_pending(conn, "screenshot"):
        return False
    now = time.time() if now is None else now
    last = float(store.get_meta(conn, REQUESTED_KEY) or 0)
    if now - last < interval:
        return False
    with store.transaction(conn):
        player_requests.add(conn, f"auto-{uuid.uuid4()}", "screenshot", origin="auto")
        store.set_meta(conn, REQUESTED_KEY, str(now))
    player_requests.prune(conn)
    return True


@dataclass
class ScreenshotResult:
    uploaded: bool = False
    size: int = 0
    error: str | None = None


def upload_if_new(config: Config, conn: sqlite3.Connection, session: requests.Session
                  ) -> ScreenshotResult:
    """PUT the player's latest screenshot if it has not been sent yet."""
    path = screenshot_path(config.cache_dir)
    try:
        st = path.stat()
    except FileNotFoundError:
        return ScreenshotResult()
    if str(st.st_mtime_ns) == store.get_meta(conn, UPLOADED_KEY):
        return ScreenshotResult()
    if not config.source.url.startswith("http"):
        return ScreenshotResult(error="the source is a folder (file://): screenshots stay local")
    body = path.read_bytes()
    try:
        resp = session.put(screenshot_url(config), data=body,
                           headers={"Content-Type": "image/jpeg"},
                           timeout=(config.source.connect_timeout, config.source.read_timeout))
    except requests.RequestException as e:
        return ScreenshotResult(error=f"screenshot not sent: "
                                f"{outbox.failure(e, screenshot_url(config))}")
    if resp.status_code >= 300:
        err = (f"{screenshot_url(config)} answered HTTP {resp.status_code} to the screenshot: "
               f"{resp.text.strip()[:200]}")
        log.warning("%s", err)
        return ScreenshotResult(error=err)
    with store.transaction(conn):
        store.set_meta(conn, UPLOADED_KEY, str(st.st_mtime_ns))
        store.set_meta(conn, "screenshot.uploaded_at", store.utcnow())
    return ScreenshotResult(uploaded=True, size=len(body))


def screenshot_job(config: Config, conn: sqlite3.Connection, session: requests.Session
                   ) -> ScreenshotResult:
    """The daemon's periodic job: ask for a screenshot when due, send any new one."""
    request_if_due(config, conn)
    return upload_if_new(config, conn, session)
