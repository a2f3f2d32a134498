"""The emergency on screen: since when it has been up, its alarm (rung once as it
comes on, stopped as it leaves), and its part of the status row."""

from __future__ import annotations

from content_sync.protocol import Emergency
from kiosk_config import Config
from player import slides
from player.alarm import Alarm
from player.records import wall_iso
from player.schedule import Choice


class EmergencyOnScreen:
    def __init__(self, config: Config) -> None:
        self._alarm = Alarm(config.emergency)
        self.since: str | None = None

    def shown(self, choice: Choice) -> None:
        """``choice`` is on screen now."""
        if choice.priority != "emergency":
            self.left()
        elif self.since is None:
            self.since = wall_iso()
            self._alarm.ring()

    def left(self) -> None:
        """No emergency on screen any more (idle, or normal content)."""
        self.since = None
        self._alarm.stop()

    def report(self, current: Choice | None, page: int, pages: int) -> Emergency | None:
        if current is None or current.priority != "emergency":
            return None
        return Emergency(playlist_id=current.playlist.id, since=self.since,
                         headline=slides.headline(current.item, current.playlist),
                         risk_level=current.playlist.risk_level,
                         page=f"{page + 1}/{pages}", alarm=self._alarm.state)

    def close(self) -> None:
        self._alarm.close()
