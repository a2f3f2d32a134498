"""The player's status row, typed: what is on screen and how the player fares, as the
:class:`~content_sync.db.PlayerStatus` that player/records.py writes as it is given.

The controller (player/controller.py) asks for it every 15 s and whenever the screen
changes; the heartbeat, ``eboard status`` and ``eboard doctor`` read it. Its JSON keeps
the shape the previous release wrote (tests/test_status_rows.py pins it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from content_sync.db import PlayerClock, PlayerScreen, PlayerState, PlayerStatus, PlayingNow
from kiosk_config import Config
from player.clock import ClockWatch, clock_ok
from player.content import Content
from player.emergency_on_screen import EmergencyOnScreen
from player.held_clips import HeldClips
from player.power import ScreenPower
from player.proof import ProofOfPlay
from player.records import Writer, wall_iso
from player.scene import ViewReport
from player.schedule import Choice


class StatusReport:
    """Builds the row from the controller's parts; the view (if any) says where it is."""

    def __init__(self, config: Config, view: Callable[[], ViewReport] | None,
                 writer: Writer, writable: bool, proof: ProofOfPlay, held: HeldClips,
                 screen: ScreenPower, clockwatch: ClockWatch,
                 emergency: EmergencyOnScreen) -> None:
        self._config = config
        self._view = view
        self._writer, self._writable = writer, writable
        self._proof, self._held = proof, held
        self._screen, self._clockwatch, self._emergency = screen, clockwatch, emergency
        self._started_at = wall_iso()

    def build(self, state: PlayerState, current: Choice | None, content: Content,
              now: datetime, page: int, pages: int) -> PlayerStatus:
        """The row while ``current`` is up (on page ``page`` of ``pages``)."""
        rec = self._proof.on_screen
        ok, why = clock_ok(now, content.issued_at)
        view = self._view() if self._view is not None else ViewReport(0, 0)
        power = self._screen
        return PlayerStatus(
            state=state,
            current=None if current is None else PlayingNow(
                playlist_id=current.playlist.id, item_id=current.item.id,
                type=current.item.type, priority=current.priority,
                started_at=rec.started_at if rec else None),
            emergency=self._emergency.report(current, page, pages),
            manifest_version=content.version,
            generation=content.generation,
            screen=PlayerScreen(width=view.width, height=view.height, x=view.x, y=view.y,
                                rotation=self._config.display.rotation,
                                blanked=power.blanked, dpms_off=power.dpms_off,
                                forced_off=power.forced_off),
            frames=view.frames,
            clock=PlayerClock(ok=ok, reason=why, jumps=self._clockwatch.jumps,
                              timezone=self._config.timezone),
            plays_recorded=self._proof.count + self._held.recorded,
            plays_waiting_for_disk=self._writer.backlog,
            database_writable=self._writable,
            clips_held=self._held.report(),
            pid=os.getpid(),
            started_at=self._started_at,
        )
