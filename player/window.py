"""The player window: decides what plays, puts it on the board, records it.

Every 250 ms it checks the database's generation counter (a new manifest is on
screen within a second), the end of the item (monotonic clock), schedule edges
and clock jumps (wall clock), and the power schedule. Pictures are finished
QImages swapped in one paint, so no empty frame ever shows between two items.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage
from PySide6.QtWidgets import QWidget

from content_sync.db import store
from kiosk_config import Config
from player import content, fonts, look, power, slides
from player.alarm import Alarm
from player.canvas import Canvas
from player.clock import ClockWatch, clock_ok
from player.content import Content
from player.held_clips import HeldClips
from player.images import ImageError
from player.records import PlayRecord, Writer, wall_iso
from player.schedule import Choice, Cursor, decide, must_preempt, next_change, top_class
from player.stage import Stage, mode_of
from player.video import VideoPlayer

log = logging.getLogger(__name__)

POLL_MS = 250
STATUS_EVERY_S = 15.0
PREROLL_S = 1.5  # a clip is opened and held on its first frame this long before its turn


class PlayerWindow(Canvas):
    """The board. ``check_now()`` forces an immediate reload check."""

    item_started = Signal(str, str)  # playlist id, item id
    idle_shown = Signal()
    content_painted = Signal(float)  # monotonic time of the first frame with content
    first_frame = Signal()  # the first frame of anything (idle screen included)

    def __init__(self, config: Config, parent: QWidget | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock
        fonts.family()
        super().__init__(config, parent)
        self._conn, self._writable = content.open_db(config.db_path)
        self._writer = Writer(config.db_path)
        self._stage = Stage(config)
        self._held = HeldClips(config, self._writer)  # clips the last player died with
        self._video = VideoPlayer(config, self, guard=self._held.guard)
        self._alarm = Alarm(config.emergency)  # rings once per emergency coming on screen
        self._video.ready.connect(self._video_ready)
        self._video.failed.connect(self._video_failed)
        self._video.ended.connect(self._video_ended)
        self._video.repaint.connect(self._repaint_main)
        self._content = Content()
        self._cursor = Cursor()
        self._bad_media: set[str] = set()
        self._current: Choice | None = None
        self._record: PlayRecord | None = None
        self._pending: tuple[str, look.Zones, str] | None = None
        self._outgoing: tuple[PlayRecord, str] | None = None
        self._forced_off = False
        self._any_frame = False
        self._item_end: float | None = None
        self._next_change: datetime | None = None
        self._dpms = False
        self._minute = ""
        self._clockwatch = ClockWatch(self._now())
        self._started_at = wall_iso()
        self._emergency_since: str | None = None
        self._first_content = False
        self._status_due = 0.0
        self._plays = 0
        self._closed = False
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._tick)
        self._poll.start()
        self._end_timer = QTimer(self)  # the item's end, to the millisecond
        self._end_timer.setSingleShot(True)
        self._end_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._end_timer.timeout.connect(self._tick)
        self._page = 0  # the page on screen of an emergency on a strip board
        self._pages = 1
        self._page_timer = QTimer(self)
        self._page_timer.setSingleShot(True)
        self._page_timer.timeout.connect(self._next_page)
        QTimer.singleShot(0, self.check_now)

    # ---- public ---------------------------------------------------------------------
    def check_now(self) -> None:
        """Re-read the database and re-decide at once."""
        self._tick(force=True)

    def set_forced_off(self, off: bool) -> None:
        """Screen off (or back on) by an operator's command; an emergency still shows."""
        if off != self._forced_off:
            self._forced_off = off
            log.info("screen switched %s by command", "off" if off else "on")
            self._tick()

    @property
    def current(self) -> Choice | None:
        return self._current

    @property
    def mode(self) -> str:
        """'normal', 'emergency', 'idle' or 'blanked'."""
        return "blanked" if self._blanked else self._mode

    @property
    def ticker(self) -> Any:
        return self._ticker

    def status(self) -> dict[str, Any]:
        cur = self._current
        ok, why = clock_ok(self._now(), self._content.issued_at)
        emergency = None
        if cur is not None and cur.priority == "emergency":
            emergency = {"playlist_id": cur.playlist.id, "since": self._emergency_since,
                         "headline": slides.headline(cur.item, cur.playlist),
                         "risk_level": cur.playlist.risk_level,
                         "page": f"{self._page + 1}/{self._pages}",
                         "alarm": self._alarm.state}
        return {
            "state": self.mode,
            "current": None if cur is None else {
                "playlist_id": cur.playlist.id, "item_id": cur.item.id, "type": cur.item.type,
                "priority": cur.priority,
                "started_at": self._record.started_at if self._record else None},
            "emergency": emergency,
            "manifest_version": self._content.version,
            "generation": self._content.generation,
            "screen": {"width": self.width(), "height": self.height(), "x": self.x(),
                       "y": self.y(), "rotation": self.config.display.rotation,
                       "blanked": self._blanked, "dpms_off": self._dpms,
                       "forced_off": self._forced_off},
            "frames": self._ticker.frame_stats(),
            "clock": {"ok": ok, "reason": why, "jumps": self._clockwatch.jumps,
                      "timezone": self.config.timezone},
            "plays_recorded": self._plays + self._held.recorded,
            "plays_waiting_for_disk": self._writer.backlog,
            "database_writable": self._writable,
            "clips_held": self._held.report(),
            "pid": os.getpid(),
            "started_at": self._started_at,
        }

    def shutdown(self) -> None:
        """Close the current record, write the last status, stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._poll.stop()
        self._end_timer.stop()
        self._frame.stop()
        self._video.close()
        self._held.stop()
        self._alarm.close()
        self._stage.prefetcher.shutdown()
        self._release_outgoing()
        self._finish("played", "player stopped")
        data = self.status()
        data["state"] = "stopped"
        self._writer.status(data)
        self._writer.close()
        self._conn.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ---- clock ----------------------------------------------------------------------
    def _now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(self.config.tz)


    # ---- decisions ------------------------------------------------------------------
    def _available(self) -> frozenset[str]:
        return self._held.playable(self._content) - self._bad_media

    def _tick(self, force: bool = False) -> None:
        if self._closed:
            return
        now = self._now()
        jumped = self._clockwatch.jumped(now)
        reload = False
        try:
            gen = store.generation(self._conn)
            if force or gen != self._content.generation:
                self._content = content.load(self._conn, self.config.cache_dir, gen)
                self._bad_media.clear()
                self._stage.images.keep_only(self._content.available)
                reload = True
                log.info("content generation %d: manifest version %d, %d playlist(s)",
                         gen, self._content.version, len(self._content.playlists))
        except sqlite3.Error as e:
            log.error("cannot read the database %s: %s", self.config.db_path, e)
        pls, tz, avail = self._content.playlists, self.config.tz, self._available()
        if self._power(now):
            edge = self._next_change is not None and now >= self._next_change
            if edge:
                self._next_change = next_change(pls, now, tz)
            preempt = (reload or jumped or edge or self._current is None) and must_preempt(
                self._current, pls, now, tz, avail)
            if preempt:
                cls = top_class(pls, now, tz, avail)
                self._advance(now, f"preempted by {cls}" if self._current and cls else "")
            elif self._item_end is not None and time.monotonic() >= self._item_end - 0.005:
                self._advance(now, "")
            elif reload:
                self._rescene()  # the ticker may have changed
        self._after_tick(now)

    def _power(self, now: datetime) -> bool:
        """Blank outside the on-hours unless an emergency is active; True = screen on."""
        pls = self._content.playlists
        on = not self._forced_off and power.screen_on(self.config.display.on_hours,
                                                      now.astimezone(self.config.tz))
        if not on:
            on = top_class(pls, now, self.config.tz, self._available()) == "emergency"
        if on == (not self._blanked):
            return on
        if on:
            log.info("screen on")
            self.set_blanked(False)
            if self._dpms:
                power.set_dpms(True)
                self._dpms = False
            self._advance(now, "")
        else:
            log.info("screen off (%s)", "by command" if self._forced_off
                     else f"outside the on-hours {self.config.display.on_hours}")
            self._video.stop()
            self._pending = None
            self._release_outgoing()
            self._finish("played", "screen off")
            self._slide = None
            self.set_blanked(True)
            self._dpms = power.set_dpms(False)
        self._status_due = 0.0
        return on

    def _after_tick(self, now: datetime) -> None:
        minute = f"{now:%Y%m%d%H%M}"
        if minute != self._minute:
            self._minute = minute
            if self._current is None and not self._blanked:
                self._show_idle(now)
            elif self._zones.header is not None:
                self.update(self._device_rect(self._zones.header))
        if time.monotonic() >= self._status_due:
            self._status_due = time.monotonic() + STATUS_EVERY_S
            self._writer.status(self.status())

    def _advance(self, now: datetime, detail: str) -> None:
        # The item on screen stays there (and its record open) until the next picture
        # replaces it: at once for a still, at the first frame for a clip.
        if self._record is not None:  # (None while a clip is still opening)
            self._release_outgoing()
            self._outgoing = (self._record, detail)
            self._record = None
        self._finish("played", detail)
        attempts = 1 + sum(len(pl.items) for pl in self._content.playlists)
        for _ in range(attempts):
            d = decide(self._content.playlists, now, self._cursor, self.config.tz,
                       self._available())
            self._cursor, self._next_change = d.cursor, d.next_change
            if d.choice is None:
                break
            if self._start(d.choice, now):
                if self._pending is None:
                    self._release_outgoing()
                return
        self._show_idle(now)
        self._release_outgoing()

    def _release_outgoing(self) -> None:
        """Close the record of the picture that has just left the screen."""
        if self._outgoing is not None:
            record, detail = self._outgoing
            self._outgoing = None
            self._writer.play(record.close("played", detail))
            self._plays += 1

    def _ticker_text(self, mode: str, choice: Choice | None, now: datetime) -> str:
        if mode == "emergency" and choice is not None:
            return f"CẢNH BÁO: {slides.headline(choice.item, choice.playlist)}"
        return content.ticker_text(self._content, now)

    def _start(self, choice: Choice, now: datetime) -> bool:
        item = choice.item
        mode = mode_of(choice)
        text = self._ticker_text(mode, choice, now)
        zones = self.zones_for(mode, text)
        if item.type == "video":
            assert item.media is not None
            _, _, w, h = zones.main
            if not self._video.start(choice, self._stage.media_path(item.media), w, h):
                return self._skip(choice, self._video.last_error)
            # The picture on screen stays until the clip's first frame exists.
            self._current, self._pending = choice, (mode, zones, text)
            return True
        try:
            pages = self._stage.pages(choice, zones)
        except ImageError as e:
            return self._skip(choice, str(e))
        self._video.stop()
        self._pending = None
        self._emergency_risk = choice.playlist.risk_level
        self._page = 0
        self.set_scene(mode, zones, pages[0][0], text)
        self._begin(choice, choice.duration or 10.0)
        self._turn_page_later(pages)
        return True

    def _turn_page_later(self, pages: list[tuple[QImage, float]]) -> None:
        """Set the timer of the next page when the item has several (strip boards)."""
        self._pages = len(pages)
        self._page_timer.stop()
        if len(pages) > 1:
            self._page_timer.start(max(500, round(pages[self._page][1] * 1000)))

    def _next_page(self) -> None:
        if self._current is not None:
            self._page = (self._page + 1) % self._pages
            self._rescene()

    def _begin(self, choice: Choice, duration: float | None) -> None:
        """The item is on screen now: open its record and set its end."""
        if choice.priority == "emergency":
            if self._emergency_since is None:
                self._emergency_since = wall_iso()
                self._alarm.ring()
        else:
            self._emergency_since = None
            self._alarm.stop()
        self._current = choice
        self._record = PlayRecord(choice.item.id, choice.playlist.id, self._content.version)
        self._item_end = None if duration is None else time.monotonic() + duration
        if duration is not None:
            self._end_timer.start(max(1, round(duration * 1000)))
        log.info("showing %s/%s (%s, %s)", choice.playlist.id, choice.item.id,
                 choice.priority, "clip length" if duration is None else f"{duration:g} s")
        self.item_started.emit(choice.playlist.id, choice.item.id)
        self._status_due = 0.0
        if duration is not None:
            QTimer.singleShot(0, lambda: self._prefetch_after(duration))

    def _prefetch_after(self, duration: float) -> None:
        """Ask the scheduler what comes after this item and get its picture ready."""
        if self._current is None or self._closed:
            return
        when = self._now() + timedelta(seconds=duration)
        d = decide(self._content.playlists, when, self._cursor, self.config.tz,
                   self._available())
        if d.choice is None:
            return
        mode = mode_of(d.choice)
        zones = self.zones_for(mode, self._ticker_text(mode, d.choice, when))
        self._stage.prefetch(d.choice, zones)
        nxt = d.choice
        if nxt.item.type == "video" and nxt.item.media:
            path = self._stage.media_path(nxt.item.media)
            _, _, w, h = zones.main
            current = self._current

            def preroll() -> None:
                if self._current is current and not self._closed:
                    self._video.preroll(nxt, path, w, h)

            QTimer.singleShot(max(0, round((duration - PREROLL_S) * 1000)), preroll)

    def _skip(self, choice: Choice, reason: str) -> bool:
        log.warning("skipped %s/%s: %s", choice.playlist.id, choice.item.id, reason)
        if choice.item.media:
            self._bad_media.add(choice.item.media)
            self._writer.damaged(choice.item.media, reason)
        rec = PlayRecord(choice.item.id, choice.playlist.id, self._content.version)
        self._writer.play(rec.close("skipped", reason))
        self._plays += 1
        return False

    def _finish(self, outcome: str, detail: str = "") -> None:
        if self._record is not None:
            self._writer.play(self._record.close(outcome, detail))
            self._plays += 1
        self._record = None
        self._current = None
        self._item_end = None
        self._end_timer.stop()
        self._page_timer.stop()
        self._page, self._pages = 0, 1

    def _show_idle(self, now: datetime) -> None:
        was_idle = self._mode == "idle" and self._slide is not None
        self._video.stop()
        self._pending = None
        self._emergency_since = None
        self._alarm.stop()
        text = self._ticker_text("idle", None, now)
        zones = self.zones_for("idle", text)
        self.set_scene("idle", zones, self._stage.idle(self.config.board.name, now, zones), text)
        if not was_idle:
            log.info("nothing scheduled: idle screen")
            self.idle_shown.emit()
            self._status_due = 0.0

    def _rescene(self) -> None:
        """Re-render what is on screen for a new size or ticker, without a new record."""
        if (self._closed or not hasattr(self, "_stage") or self._blanked
                or self._content.generation < 0):
            return
        now = self._now()
        cur = self._current
        if cur is None:
            self._show_idle(now)
            return
        mode = mode_of(cur)
        text = self._ticker_text(mode, cur, now)
        zones = self.zones_for(mode, text)
        if cur.item.type == "video":
            if self._record is not None:
                self.set_scene(mode, zones, None, text)
            else:
                self._pending = (mode, zones, text)
            return
        try:
            pages = self._stage.pages(cur, zones)
        except ImageError as e:
            log.warning("could not redraw %s: %s", cur.item.id, e)
            return
        self._page = min(self._page, len(pages) - 1)
        self.set_scene(mode, zones, pages[self._page][0], text)
        self._turn_page_later(pages)

    # ---- painting hooks -------------------------------------------------------------
    def _emergency_level(self) -> int | None:
        return getattr(self, "_emergency_risk", None)

    def video_frame(self) -> QImage | None:
        return self._video.frame()

    def _repaint_main(self) -> None:
        if self._slide is None and not self._blanked:
            self.update(self._device_rect(self._zones.main))

    def _painted(self) -> None:
        if not self._any_frame:
            self._any_frame = True
            self.first_frame.emit()
        if not self._first_content and self._current is not None and self._record is not None:
            self._first_content = True
            self.content_painted.emit(time.monotonic())

    def _placed(self) -> None:
        self._status_due = 0.0  # the new size in the status at the next tick

    # ---- video (GUI thread) ---------------------------------------------------------
    def _video_ready(self, choice: Choice, length: float | None) -> None:
        if self._current is not choice or self._pending is None:
            return
        mode, zones, text = self._pending
        self._pending = None
        self._emergency_risk = choice.playlist.risk_level
        self.set_scene(mode, zones, None, text)
        self._release_outgoing()
        self._begin(choice, choice.item.duration or length)

    def _video_failed(self, choice: Choice, reason: str) -> None:
        if self._current is not choice:
            return
        if self._record is not None:  # it was on screen, then stalled or broke
            self._finish("skipped", reason)
            if choice.item.media:
                self._bad_media.add(choice.item.media)
                self._writer.damaged(choice.item.media, reason)
        else:
            self._current = None
            self._skip(choice, reason)
        self._pending = None
        self._advance(self._now(), "")

    def _video_ended(self, choice: Choice) -> None:
        if self._current is choice and choice.item.duration is None:
            self._advance(self._now(), "")
