"""Video with libVLC, decoded into memory and painted by the board like any picture.

libVLC writes each frame (RV32, scaled by VLC to fit the main area) into a buffer
we own; its decoder thread copies the finished frame into a QImage and hands it to
the GUI thread with a queued signal. Painting it ourselves means the previous
picture stays on screen until the clip's first frame exists (no black frame, video
to video included), rotation and the bands work over video, and a grab of the
window shows the video. A clip that does not start, errors, or stops delivering
frames is reported as failed, and the window moves on.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from content_sync.runtime import DecoderGuard
from kiosk_config import Config
from player.schedule import Choice
from player.vlc_events import event_manager, forget_callbacks

log = logging.getLogger(__name__)

try:  # libVLC is a system library; the player still shows stills without it
    import vlc
except (ImportError, OSError) as e:  # pragma: no cover - depends on the box
    vlc = None
    _VLC_ERROR = str(e)
else:
    _VLC_ERROR = ""

START_TIMEOUT_S = 8.0
STALL_TIMEOUT_S = 5.0
ALIGN = 32

_FormatCb = ctypes.CFUNCTYPE(
    ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
    ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint))
_CleanupCb = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_LockCb = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
_UnlockCb = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.POINTER(ctypes.c_void_p))
_DisplayCb = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

_instance: Any = None


def available() -> bool:
    return vlc is not None


def _vlc_instance(audio: bool = True) -> Any:
    global _instance
    if _instance is None:
        args = ["--quiet", "--no-video-title-show", "--no-osd", "--no-snapshot-preview",
                "--avcodec-hw=any", "--no-xlib", "--no-stats"]
        if not audio:  # display.volume = 0: do not even open the sound card
            args.append("--no-audio")
        _instance = vlc.Instance(args)
        if _instance is None:
            raise RuntimeError("libVLC could not start (are the VLC plugins installed?)")
    return _instance


def fit_size(src_w: int, src_h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The largest even size with the source's aspect ratio inside max_w x max_h."""
    if src_w <= 0 or src_h <= 0:
        return max(2, max_w - max_w % 2), max(2, max_h - max_h % 2)
    scale = min(max_w / src_w, max_h / src_h)
    w, h = max(2, int(src_w * scale)), max(2, int(src_h * scale))
    return w - w % 2, h - h % 2


def _key(choice: Choice, width: int, height: int) -> Any:
    return (choice.playlist.id, choice.item, width, height)


class _Clip(QObject):
    """One libVLC media player rendering one clip into memory."""

    # Each signal carries the clip, so that the receiver (a QObject in the GUI thread)
    # gets a queued call there, whatever libVLC thread emitted it.
    frame = Signal(object, QImage)
    failed = Signal(object, str)
    ended = Signal(object)

    def __init__(self, path: Path, max_w: int, max_h: int, volume: int, loop: bool) -> None:
        super().__init__()
        self.path = path
        self._max = (max(2, max_w), max(2, max_h))
        self._buf: Any = None
        self._addr = 0
        self._size = (0, 0, 0)  # width, height, pitch
        self.frames = 0
        self.started = time.monotonic()
        self.last_frame = 0.0
        self.last_progress = time.monotonic()  # when the clip's time last moved
        self._last_time = -1
        self.on_released: Callable[[], None] | None = None  # once libVLC has let go
        inst = _vlc_instance(audio=volume > 0)
        self._mp = inst.media_player_new()
        media = inst.media_new_path(str(path))
        if loop:
            media.add_option(":input-repeat=65535")
        self._mp.set_media(media)
        media.release()  # the player holds its own reference
        self._cbs: tuple[Any, ...] = (_FormatCb(self._format), _CleanupCb(lambda _o: None),
                     _LockCb(self._lock), _UnlockCb(lambda _o, _p, _pl: None),
                     _DisplayCb(self._display))
        set_fmt = ctypes.CFUNCTYPE(None, vlc.MediaPlayer, _FormatCb, _CleanupCb)(
            ("libvlc_video_set_format_callbacks", vlc.dll))
        set_fmt(self._mp, self._cbs[0], self._cbs[1])
        set_cbs = ctypes.CFUNCTYPE(None, vlc.MediaPlayer, _LockCb, _UnlockCb, _DisplayCb,
                                   ctypes.c_void_p)(("libvlc_video_set_callbacks", vlc.dll))
        set_cbs(self._mp, self._cbs[2], self._cbs[3], self._cbs[4], None)
        self._mp.audio_set_volume(volume)
        # Kept: python-vlc's EventManager owns the ctypes thunk libVLC calls back. Not
        # ``self._mp.event_manager()``: python-vlc memoizes that in a class-level dict
        # that keeps every player and its event manager for the life of the process.
        self._em = em = event_manager(self._mp)
        em.event_attach(vlc.EventType.MediaPlayerEncounteredError, lambda _e: self.failed.emit(
            self, "libVLC could not open or decode the clip"))
        em.event_attach(vlc.EventType.MediaPlayerEndReached, lambda _e: self.ended.emit(self))

    def __del__(self) -> None:
        """A clip dropped while libVLC still plays it must still be stopped: libVLC's
        threads would go on calling callbacks that no longer exist (a crash). Only
        ``VideoPlayer`` drops clips, each after ``release``; this is the safety net (a
        window freed without being closed did it in the tests, and a clip whose
        ``__init__`` failed after its callbacks were set would do it too)."""
        if getattr(self, "_cbs", ()):
            log.warning("a clip (%s…) was dropped while playing; stopping it now",
                        self.path.name[:12])
            with contextlib.suppress(RuntimeError):  # no new thread at interpreter exit
                self.release()

    def play(self) -> bool:
        self.started = time.monotonic()
        return bool(self._mp.play() == 0)

    def hold(self) -> None:
        """Pause on the first frame (pre-roll), silent."""
        self._mp.set_pause(1)

    def resume(self, volume: int) -> None:
        self._mp.audio_set_volume(volume)
        self._mp.set_pause(0)
        self.started = self.last_frame = self.last_progress = time.monotonic()

    def progressed(self) -> bool:
        """Whether the clip's play time moved since the last call (GUI thread)."""
        t = int(self._mp.get_time())
        moved = t != self._last_time
        self._last_time = t
        if moved:
            self.last_progress = time.monotonic()
        return moved

    def length(self) -> float | None:
        ms = self._mp.get_length()
        return ms / 1000.0 if ms and ms > 0 else None

    def release(self) -> None:
        """Stop and free in the background: libVLC's stop can take a while.

        The thread keeps the callbacks and the event manager until libVLC has let go
        of them; the clip drops its own references now, so that it is freed by its
        reference count as soon as the thread ends (no cycle left for the collector)."""
        mp, cbs = self._mp, getattr(self, "_cbs", ())
        em = getattr(self, "_em", None)  # None if __init__ failed before attaching events
        if not cbs:  # released already
            return
        self._cbs, self._em = (), None
        released, self.on_released = self.on_released, None

        def _stop() -> None:
            mp.stop()
            if em is not None:
                for event in (vlc.EventType.MediaPlayerEncounteredError,
                              vlc.EventType.MediaPlayerEndReached):
                    em.event_detach(event)
            mp.release()
            if em is not None:
                forget_callbacks(em)
            assert cbs  # the callbacks must outlive the player
            if released is not None:
                released()

        threading.Thread(target=_stop, name="vlc-release", daemon=True).start()

    # ---- libVLC threads ----------------------------------------------------------------
    def _format(self, _opaque: Any, chroma: int, width: Any, height: Any, pitches: Any,
                lines: Any) -> int:
        w, h = fit_size(width[0], height[0], *self._max)
        pitch = w * 4
        ctypes.memmove(chroma, b"RV32", 4)
        width[0], height[0] = w, h
        pitches[0] = pitch
        lines[0] = h
        self._buf = ctypes.create_string_buffer(pitch * h + ALIGN)
        base = ctypes.addressof(self._buf)
        self._addr = base + (-base % ALIGN)
        self._size = (w, h, pitch)
        return 1

    def _lock(self, _opaque: Any, planes: Any) -> int:
        planes[0] = self._addr
        return 0

    def _display(self, _opaque: Any, _picture: Any) -> None:
        w, h, pitch = self._size
        if not self._addr:
            return
        raw = (ctypes.c_char * (pitch * h)).from_address(self._addr)
        img = QImage(bytes(raw), w, h, pitch, QImage.Format.Format_RGB32).copy()
        self.frames += 1
        self.last_frame = time.monotonic()
        self.frame.emit(self, img)


class VideoPlayer(QObject):
    """Plays one clip at a time; the next clip replaces the current one only when its
    first frame exists. Signals arrive in the GUI thread."""

    ready = Signal(object, object)  # Choice, clip length in seconds or None
    failed = Signal(object, str)  # Choice, reason
    ended = Signal(object)  # Choice
    repaint = Signal()

    def __init__(self, config: Config, parent: QObject | None = None,
                 guard: DecoderGuard | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self._guard = guard  # told which clips are open (content_sync/runtime/decoder_guard.py)
        self._current: tuple[Choice, _Clip] | None = None
        self._incoming: tuple[Choice, _Clip] | None = None
        # A clip opened ahead of its switch and paused on its first frame.
        self._preroll: tuple[Any, _Clip, QImage | None] | None = None
        self._frame: QImage | None = None
        self.last_error = ""
        self._watch = QTimer(self)
        self._watch.setInterval(500)
        self._watch.timeout.connect(self._check)

    def frame(self) -> QImage | None:
        return self._frame if self._current is not None else None

    @property
    def playing(self) -> bool:
        return self._current is not None

    def start(self, choice: Choice, path: Path, width: int, height: int) -> bool:
        """Open a clip; ``ready`` follows with its first frame, or ``failed``."""
        self._drop_incoming()
        pre, self._preroll = self._preroll, None
        if pre is not None and pre[0] == _key(choice, width, height):
            _, clip, first = pre
            self._incoming = (choice, clip)
            clip.resume(self.config.display.volume)
            if first is not None:  # ready at once: the switch is one paint away
                QTimer.singleShot(0, lambda: self._on_frame(clip, first))
            self._watch.start()
            return True
        if pre is not None:
            pre[1].release()
        clip_or_none = self._open(choice, path, width, height, self.config.display.volume)
        if clip_or_none is None:
            return False
        self._incoming = (choice, clip_or_none)
        self._watch.start()
        return True

    def preroll(self, choice: Choice, path: Path, width: int, height: int) -> None:
        """Open the next clip now, silent, and hold it on its first frame until
        ``start`` asks for it; a different ``start`` throws it away."""
        key = _key(choice, width, height)
        if self._preroll is not None:
            if self._preroll[0] == key:
                return
            self._preroll[1].release()
            self._preroll = None
        clip = self._open(choice, path, width, height, 0)
        if clip is not None:
            self._preroll = (key, clip, None)

    def _open(self, choice: Choice, path: Path, width: int, height: int,
              volume: int) -> _Clip | None:
        if vlc is None:
            self.last_error = f"libVLC is not available: {_VLC_ERROR}"
            return None
        if not path.is_file():
            self.last_error = f"clip {path.name[:12]}… is not in the cache"
            return None
        try:
            clip = _Clip(path, width, height, volume, loop=choice.item.duration is not None)
        except Exception as e:
            self.last_error = f"libVLC could not take the clip: {e}"
            return None
        clip.frame.connect(self._on_frame)
        clip.failed.connect(self._on_failed)
        clip.ended.connect(self._on_ended)
        if self._guard is not None:  # noted open before libVLC starts decoding it
            guard, sha = self._guard, path.name
            guard.opened(sha)
            clip.on_released = lambda: guard.closed(sha)
        if not clip.play():
            clip.release()
            self.last_error = "libVLC refused to play the clip"
            return None
        return clip

    def close(self) -> None:
        """Stop everything, the pre-rolled clip included."""
        self.stop()
        if self._preroll is not None:
            self._preroll[1].release()
            self._preroll = None

    def stop(self) -> None:
        """Stop what plays (a still picture has replaced the video)."""
        self._drop_incoming()
        if self._current is not None:
            self._current[1].release()
            self._current = None
        self._frame = None
        self._watch.stop()

    def _drop_incoming(self) -> None:
        if self._incoming is not None:
            self._incoming[1].release()
            self._incoming = None

    def _on_frame(self, clip: _Clip, img: QImage) -> None:
        if self._preroll is not None and self._preroll[1] is clip:
            if self._preroll[2] is None:
                clip.hold()
                self._preroll = (self._preroll[0], clip, img)
            return
        if self._incoming is not None and self._incoming[1] is clip:
            choice = self._incoming[0]
            if self._current is not None:
                self._current[1].release()
            self._current, self._incoming = self._incoming, None
            self._frame = img
            self.ready.emit(choice, clip.length())
        elif self._current is not None and self._current[1] is clip:
            self._frame = img
            self.repaint.emit()

    def _on_failed(self, clip: _Clip, reason: str) -> None:
        if self._preroll is not None and self._preroll[1] is clip:
            clip.release()  # ``start`` will open it again and report the failure
            self._preroll = None
            return
        for slot in (self._incoming, self._current):
            if slot is not None and slot[1] is clip:
                self.last_error = reason
                self.failed.emit(slot[0], reason)
                return

    def _on_ended(self, clip: _Clip) -> None:
        if self._preroll is not None and self._preroll[1] is clip:
            clip.release()
            self._preroll = None
            return
        if self._current is not None and self._current[1] is clip:
            self.ended.emit(self._current[0])
        elif self._incoming is not None and self._incoming[1] is clip:
            self._on_failed(clip, "the clip ended before showing a frame")

    def _check(self) -> None:
        now = time.monotonic()
        if self._incoming is not None:
            clip = self._incoming[1]
            if now - clip.started > START_TIMEOUT_S:
                self._on_failed(clip, f"no picture within {START_TIMEOUT_S:g} s")
        if self._current is not None:
            clip = self._current[1]
            # libVLC repeats the last picture when its input freezes, so frames alone
            # do not show a stall: the clip's own clock must move too.
            clip.progressed()
            if now - clip.last_progress > STALL_TIMEOUT_S:
                self._on_failed(clip, f"stalled: the clip's time has not moved for "
                                      f"{STALL_TIMEOUT_S:g} s")
            elif now - clip.last_frame > STALL_TIMEOUT_S:
                self._on_failed(clip, f"stalled: no new frame for {STALL_TIMEOUT_S:g} s")
