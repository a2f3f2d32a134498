"""The player's controller: decides what plays, when it switches, and records it.

It owns the timers, the database, the proof-of-play writer and the video decoder,
and emits ``scene`` (a :class:`~player.scene.Scene`) whenever the board must show
something else; a view paints it (player/window.py), and it runs without one.

Every 250 ms it checks the database's generation counter (a new manifest is on
screen within a second), the end of the item (monotonic clock), schedule edges and
clock jumps (wall clock), and the power schedule. The item on screen stays there,
its record open, until the next picture replaces it: at once for a still, at the
first frame for a clip, so no empty frame ever shows between two items.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage

from content_sync.db import PlayerState, PlayerStatus, PlayOutcome, store
from kiosk_config import Config
from player import content, look, power
from player.clock import ClockWatch
from player.composer import Composer
from player.content import Content
from player.emergency_on_screen import EmergencyOnScreen
from player.held_clips import HeldClips
from player.images import ImageError
from player.lookahead import Lookahead
from player.pages import Pages
from player.proof import ProofOfPlay
from player.records import Writer
from player.scene import Scene, ScreenMode, ViewReport, blank
from player.schedule import Choice, Cursor, decide, must_preempt, next_change, top_class
from player.stage import Stage, Surface, surface_of
from player.status import StatusReport
from player.video import VideoPlayer

log = logging.getLogger(__name__)

POLL_MS = 250
STATUS_EVERY_S = 15.0


class Controller(QObject):
    """``start()`` begins; ``set_size`` gives the board's logical size (the zones)."""

    scene = Signal(object)  # Scene: what the board shows from now on
    item_started = Signal(str, str)  # playlist id, item id
    idle_shown = Signal()
    content_painted = Signal(float)  # monotonic time of the first frame with content
    first_frame = Signal()  # the first frame of anything (idle screen included)
    minute = Signal()  # a new minute: the header's clock
    video_repaint = Signal()  # a new frame of the clip on screen

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None,
                 view: Callable[[], ViewReport] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self._clock = clock
        self._conn, self._writable = content.open_db(config.db_path)
        self._writer = Writer(config.db_path)
        self._stage = Stage(config)
        self._composer = Composer(config, self._stage)
        self._held = HeldClips(config, self._writer)  # clips the last player died with
        self._video = VideoPlayer(config, self, guard=self._held.guard)
        self._emergency = EmergencyOnScreen(config)
        self._lookahead = Lookahead(self._composer, self._stage, self._video)
        self._screen = power.ScreenPower(config.display.on_hours)
        self._video.ready.connect(self._video_ready)
        self._video.failed.connect(self._video_failed)
        self._video.ended.connect(self._video_ended)
        self._video.repaint.connect(self.video_repaint)
        self._content = Content()
        self._cursor = Cursor()
        self._bad_media: set[str] = set()
        self._current: Choice | None = None
        self._proof = ProofOfPlay(self._writer)
        self._pending: Scene | None = None  # a clip's scene, shown at its first frame
        self._lit = Scene(ScreenMode.IDLE, look.zones(1, 1, False, False), None)
        self._any_frame = False
        self._first_content = False
        self._item_end: float | None = None
        self._next_change: datetime | None = None
        self._minute = ""
        self._clockwatch = ClockWatch(self._now())
        self._report = StatusReport(config, view, self._writer, self._writable, self._proof,
                                    self._held, self._screen, self._clockwatch, self._emergency)
        self._status_due = 0.0
        self._closed = False
        self._pages = Pages(self, self._next_page)  # an emergency's, on a strip board
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._tick)
        self._end_timer = QTimer(self)  # the item's end, to the millisecond
        self._end_timer.setSingleShot(True)
        self._end_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._end_timer.timeout.connect(self._tick)

    # ---- public ---------------------------------------------------------------------
    def start(self) -> None:
        """Poll from now on, and decide at the next turn of the event loop."""
        self._poll.start()
        QTimer.singleShot(0, self.check_now)

    def check_now(self) -> None:
        """Re-read the database and re-decide at once."""
        self._tick(force=True)

    def set_size(self, width: int, height: int) -> None:
        """The board's logical (unrotated) size; what is on screen is drawn again."""
        self._composer.resize(width, height)
        self._rescene()

    def set_forced_off(self, off: bool) -> None:
        """Screen off (or back on) by an operator's command; an emergency still shows."""
        if off != self._screen.forced_off:
            self._screen.forced_off = off
            log.info("screen switched %s by command", "off" if off else "on")
            self._tick()

    def status_soon(self) -> None:
        """Write the status at the next tick (the window was placed again)."""
        self._status_due = 0.0

    def note_painted(self) -> None:
        """The view painted a frame."""
        if not self._any_frame:
            self._any_frame = True
            self.first_frame.emit()
        if (not self._first_content and self._current is not None
                and self._proof.on_screen is not None):
            self._first_content = True
            self.content_painted.emit(time.monotonic())

    def video_frame(self) -> QImage | None:
        return self._video.frame()

    @property
    def current(self) -> Choice | None:
        return self._current

    @property
    def mode(self) -> ScreenMode:
        return ScreenMode.BLANKED if self._screen.blanked else self._lit.mode

    def status(self) -> PlayerStatus:
        return self._report.build(PlayerState(self.mode), self._current, self._content,
                                  self._now(), self._pages.index, self._pages.count)

    def shutdown(self) -> None:
        """Close the current record, write the last status, stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._poll.stop()
        self._end_timer.stop()
        self._video.close()
        self._held.stop()
        self._emergency.close()
        self._stage.prefetcher.shutdown()
        self._proof.release()
        self._finish(PlayOutcome.PLAYED, "player stopped")
        self._writer.status(self.status().model_copy(update={"state": PlayerState.STOPPED}))
        self._writer.close()
        self._conn.close()

    # ---- decisions ------------------------------------------------------------------
    def _now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(self.config.tz)

    def _available(self) -> frozenset[str]:
        return self._held.playable(self._content) - self._bad_media

    def _show(self, scene: Scene) -> None:
        if scene.mode is not ScreenMode.BLANKED:
            self._lit = scene
        self.scene.emit(scene)

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
        on = self._screen.scheduled_on(now.astimezone(self.config.tz)) or top_class(
            self._content.playlists, now, self.config.tz, self._available()) == "emergency"
        if on == (not self._screen.blanked):
            return on
        if on:
            self._screen.light()
            self._show(replace(self._lit, picture=None))  # the bands back, until the next
            self._advance(now, "")
        else:
            self._video.stop()
            self._pending = None
            self._proof.release()
            self._finish(PlayOutcome.PLAYED, "screen off")
            self._screen.darken()
            self._show(blank(self._lit.zones))
        self._status_due = 0.0
        return on

    def _after_tick(self, now: datetime) -> None:
        minute = f"{now:%Y%m%d%H%M}"
        if minute != self._minute:
            self._minute = minute
            if self._current is None and not self._screen.blanked:
                self._show_idle(now)
            else:
                self.minute.emit()
        if time.monotonic() >= self._status_due:
            self._status_due = time.monotonic() + STATUS_EVERY_S
            self._writer.status(self.status())

    def _advance(self, now: datetime, detail: str) -> None:
        self._proof.hand_over(detail)
        self._finish(PlayOutcome.PLAYED, detail)
        attempts = 1 + sum(len(pl.items) for pl in self._content.playlists)
        for _ in range(attempts):
            d = decide(self._content.playlists, now, self._cursor, self.config.tz,
                       self._available())
            self._cursor, self._next_change = d.cursor, d.next_change
            if d.choice is None:
                break
            if self._start(d.choice, now):
                if self._pending is None:
                    self._proof.release()
                return
        self._show_idle(now)
        self._proof.release()

    def _start(self, choice: Choice, now: datetime) -> bool:
        item = choice.item
        scene = self._composer.scene_of(choice, self._content, now)
        if surface_of(item.type) is Surface.CLIP:
            assert item.media is not None
            _, _, w, h = scene.zones.main
            if not self._video.start(choice, self._stage.media_path(item.media), w, h):
                return self._skip(choice, self._video.last_error)
            # The picture on screen stays until the clip's first frame exists.
            self._current, self._pending = choice, scene
            return True
        try:
            pages = self._composer.pages(choice, scene)
        except ImageError as e:
            return self._skip(choice, str(e))
        self._video.stop()
        self._pending = None
        self._pages.reset()
        self._show(replace(scene, picture=pages[0][0]))
        self._begin(choice, choice.duration or 10.0)
        self._pages.turn_later(pages)
        return True

    def _next_page(self) -> None:
        if self._current is not None:
            self._pages.turn()
            self._rescene()

    def _begin(self, choice: Choice, duration: float | None) -> None:
        """The item is on screen now: open its record and set its end."""
        self._emergency.shown(choice)
        self._current = choice
        self._proof.open(choice, self._content.version)
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
        if d.choice is not None:
            current = self._current
            self._lookahead.prepare(d.choice, self._content, when, duration,
                                    lambda: self._current is current and not self._closed)

    def _skip(self, choice: Choice, reason: str) -> bool:
        log.warning("skipped %s/%s: %s", choice.playlist.id, choice.item.id, reason)
        if choice.item.media:
            self._bad_media.add(choice.item.media)
            self._writer.damaged(choice.item.media, reason)
        self._proof.skipped(choice, self._content.version, reason)
        return False

    def _finish(self, outcome: PlayOutcome, detail: str = "") -> None:
        self._proof.close(outcome, detail)
        self._current = None
        self._item_end = None
        self._end_timer.stop()
        self._pages.reset()

    def _show_idle(self, now: datetime) -> None:
        was_idle = self._lit.mode is ScreenMode.IDLE and self._lit.picture is not None
        self._video.stop()
        self._pending = None
        self._emergency.left()
        self._show(self._composer.idle(self._content, now))
        if not was_idle:
            log.info("nothing scheduled: idle screen")
            self.idle_shown.emit()
            self._status_due = 0.0

    def _rescene(self) -> None:
        """Re-render what is on screen for a new size or ticker, without a new record."""
        if self._closed or self._screen.blanked or self._content.generation < 0:
            return
        now = self._now()
        cur = self._current
        if cur is None:
            self._show_idle(now)
            return
        scene = self._composer.scene_of(cur, self._content, now)
        if surface_of(cur.item.type) is Surface.CLIP:
            if self._proof.on_screen is not None:
                self._show(scene)
            else:
                self._pending = scene
            return
        try:
            pages = self._composer.pages(cur, scene)
        except ImageError as e:
            log.warning("could not redraw %s: %s", cur.item.id, e)
            return
        self._show(replace(scene, picture=self._pages.up(pages)))
        self._pages.turn_later(pages)

    # ---- video (GUI thread) ---------------------------------------------------------
    def _video_ready(self, choice: Choice, length: float | None) -> None:
        if self._current is not choice or self._pending is None:
            return
        scene, self._pending = self._pending, None
        self._show(scene)
        self._proof.release()
        self._begin(choice, choice.item.duration or length)

    def _video_failed(self, choice: Choice, reason: str) -> None:
        if self._current is not choice:
            return
        if self._proof.on_screen is not None:  # it was on screen, then stalled or broke
            self._finish(PlayOutcome.SKIPPED, reason)
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
