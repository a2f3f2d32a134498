"""The rows of the ``status`` table, typed: one definition for the writer and every reader.

The table holds one JSON object per component: ``player`` (written by player/records.py),
``sync`` (content_sync/board/engine.py), ``cap`` (content_sync/cap/job.py) and
``heartbeat`` (content_sync/report/status_report.py: whether the province got the last
one). Readers are the heartbeat, ``eboard status`` and ``eboard doctor``. A row written by
the previous release reads too (see :class:`~content_sync.protocol.Tolerant`); what a
writer sets is what the row holds, so its JSON keeps the shape the previous release wrote.
The row's ``updated_at`` is the table's column, never part of the JSON.
"""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from content_sync.db import store
from content_sync.protocol import Emergency, HeldClip, Tolerant

Number = int | float


class StatusRow(Tolerant):
    COMPONENT: ClassVar[str]
    updated_at: str | None = None  # when the row was written (the column)


class PlayingNow(Tolerant):
    playlist_id: str | None = None
    item_id: str | None = None
    type: str | None = None
    priority: str | None = None
    started_at: str | None = None


class PlayerScreen(Tolerant):
    width: int | None = None
    height: int | None = None
    x: int | None = None
    y: int | None = None
    rotation: int | None = None
    blanked: bool | None = None
    dpms_off: bool | None = None
    forced_off: bool | None = None

    @property
    def geometry(self) -> str | None:
        """'WxH+X+Y' of the player's window, when the player said all four."""
        if self.width is None or self.height is None or self.x is None or self.y is None:
            return None
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


class PlayerClock(Tolerant):
    ok: bool | None = None
    reason: str | None = None
    jumps: int | None = None
    timezone: str | None = None


class PlayerState(StrEnum):
    """The ``state`` of the player's row: while it runs, the mode of its screen (the values
    of player.scene.ScreenMode); STOPPED after a clean exit."""

    NORMAL = "normal"
    EMERGENCY = "emergency"
    IDLE = "idle"
    BLANKED = "blanked"
    STOPPED = "stopped"


class PlayerStatus(StatusRow):
    """What player/status.py builds, rewritten while the player runs."""

    COMPONENT: ClassVar[str] = "player"
    state: str | None = None  # a PlayerState's value (a str: another release's still reads)
    current: PlayingNow | None = None
    emergency: Emergency | None = None
    manifest_version: int | None = None
    generation: int | None = None
    screen: PlayerScreen | None = None
    frames: dict[str, Number] | None = None
    clock: PlayerClock | None = None
    plays_recorded: int | None = None
    plays_waiting_for_disk: int | None = None
    database_writable: bool | None = None
    clips_held: list[HeldClip] | None = None
    pid: int | None = None
    started_at: str | None = None
    error: str | None = None


class SyncStatus(StatusRow):
    """The last sync run (content_sync/board/engine.py)."""

    COMPONENT: ClassVar[str] = "sync"
    state: str | None = None  # content_sync.board.SyncState's value
    reason: str | None = None
    source: str | None = None
    active_version: int | None = None
    pending_version: int | None = None
    interim_version: int | None = None
    offered_version: int | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    errors: list[str] | None = None
    clock_skew_s: Number | None = None
    clock_warning: str | None = None
    downloaded_bytes: int | None = None
    cache_bytes: int | None = None


class CapStatus(StatusRow):
    """The last poll of the CAP feed (content_sync/cap/job.py)."""

    COMPONENT: ClassVar[str] = "cap"
    state: str | None = None
    feed_url: str = ""
    error: str = ""
    shown: list[str] = []
    refusals: list[str] = []
    etag: str = ""
    last_modified: str = ""
    checked_at: str | None = None
    # the signature settings the feed was judged by (content_sync/cap/signature.py:
    # settings_key); the feed's validators count only while they are the same
    trust: str = ""


LEGACY_HEARTBEAT_ERROR = "heartbeat.last_error"  # meta key of the previous release


class HeartbeatDelivery(StatusRow):
    """Whether the last heartbeat reached the source (content_sync/report/status_report.py).

    ``error`` is None when the last one was delivered."""

    COMPONENT: ClassVar[str] = "heartbeat"
    last_attempt: str | None = None
    last_delivered: str | None = None
    error: str | None = None
    error_since: str | None = None


R = TypeVar("R", bound=StatusRow)


def read(conn: sqlite3.Connection, kind: type[R]) -> R | None:
    """The row of ``kind``'s component, or None when it was never written."""
    found = conn.execute("SELECT updated_at, data FROM status WHERE component=?",
                         (kind.COMPONENT,)).fetchone()
    if found is None:
        return None
    try:
        data = json.loads(found[1])
    except (TypeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return kind.read({**data, "updated_at": found[0]})


def write(conn: sqlite3.Connection, row: StatusRow) -> None:
    """Replace the row of its component (inside the caller's transaction, if any)."""
    data: dict[str, Any] = row.to_json()
    data.pop("updated_at", None)
    store.set_status(conn, row.COMPONENT, data)


def heartbeat_delivery(conn: sqlite3.Connection) -> HeartbeatDelivery | None:
    """The heartbeat's delivery; on a database of the previous release, which kept only
    the last error in meta (empty once delivered), what that says; None: never sent."""
    row = read(conn, HeartbeatDelivery)
    if row is not None:
        return row
    legacy = store.get_meta(conn, LEGACY_HEARTBEAT_ERROR)
    if legacy is None:
        return None
    return HeartbeatDelivery(error=legacy or None)
