"""The optional alarm sound when an emergency comes on screen (``[emergency]`` config).

libVLC plays the sound on an instance of its own, audio only, so that the alarm's
output, device and gain never touch the video's. Everything libVLC does happens on a
worker thread per ring: ``ring()`` and ``stop()`` only start or signal it, so the GUI
thread never waits for a sound card, and libVLC's callbacks only set events (they run
on libVLC's threads and never touch Qt).

A ring never raises into the player. Whatever keeps the alarm from sounding (no
libVLC, no sound card, a device that cannot be opened, a file that does not play)
ends in one warning that says what to do, and in ``state``, which the window puts in
its status; the emergency shows all the same.

The bundled sound, ``assets/sounds/alarm.wav``, is made by ``write_siren``
(``python -m player.alarm`` writes it again).
"""

from __future__ import annotations

import array
import ctypes
import logging
import math
import os
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk_config.schema import EmergencyConfig
from player.vlc_events import event_manager, forget_callbacks

log = logging.getLogger(__name__)

try:  # libVLC is a system library; without it the board shows emergencies in silence
    import vlc
except (ImportError, OSError) as e:  # pragma: no cover - depends on the box
    vlc = None
    _VLC_ERROR = str(e)
else:
    _VLC_ERROR = ""

SOUND = Path(__file__).resolve().parents[1] / "assets" / "sounds" / "alarm.wav"
RATE = 22050
SECONDS = 2.0
TONES = (960.0, 770.0)  # Hz, high then low, a quarter of the length each
STALL_S = 10.0  # no progress of the sound's clock for this long: give up
JOIN_S = 2.0  # at shutdown, time for libVLC to stop (an afile WAV gets its header)
_LOG_ERROR = 4  # libvlc_log_level LIBVLC_ERROR


# -- the bundled siren -----------------------------------------------------------------

def siren_samples(seconds: float = SECONDS, rate: int = RATE) -> array.array[int]:
    """A two-tone siren (high/low, twice), 16-bit mono, peak at 80 % of full scale.

    The phase runs on across the tone changes (no click), a third harmonic makes it
    carry on small LED-board speakers, and 10 ms ramps at both ends avoid a pop."""
    n = int(seconds * rate)
    step = max(1, n // 4)
    ramp = 0.01 * rate
    phase = 0.0
    raw: list[float] = []
    for i in range(n):
        phase += 2 * math.pi * TONES[(i // step) % 2] / rate
        envelope = min(1.0, i / ramp, (n - 1 - i) / ramp)
        raw.append((math.sin(phase) + 0.25 * math.sin(3 * phase)) * envelope)
    scale = 0.8 * 32767 / max(max(abs(x) for x in raw), 1e-9)
    return array.array("h", (round(x * scale) for x in raw))


def write_siren(path: Path, seconds: float = SECONDS, rate: int = RATE) -> Path:
    """Write the siren as a WAV file (temporary name, then rename)."""
    samples = siren_samples(seconds, rate)
    if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian
        samples.byteswap()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    os.replace(tmp, path)
    return path


def bundled_sound() -> Path:
    """The bundled siren; made afresh in the temp folder when the project was installed
    without its assets/ folder (from a wheel)."""
    if SOUND.is_file():
        return SOUND
    made = Path(tempfile.gettempdir()) / f"eboard-alarm-{os.getuid()}.wav"
    if not made.is_file():
        write_siren(made)
    return made


# -- libVLC ------------------------------------------------------------------------------

def vlc_args(config: EmergencyConfig) -> list[str]:
    """Options of the alarm's own libVLC instance: audio only, quiet, its output."""
    args = ["--no-video", "--quiet", "--no-stats", "--no-sub-autodetect-file",
            # The gain works on every output; the player's volume does not work on afile.
            f"--gain={config.alarm_volume / 100:.2f}"]
    out, device = config.audio_output, config.audio_device
    if out:
        args.append(f"--aout={out},none")  # ',none': no silent fall-back to another output
    if out == "afile":
        args.append(f"--audiofile-file={device}")
    elif out == "alsa" and device:
        args.append(f"--alsa-audio-device={device}")
    return args


class _Failure(Exception):
    """The alarm cannot sound; the message says why and what to do."""


class _NotASound(_Failure):
    """This file does not play (another file may)."""


# libVLC's last words when no audio output could be opened, and messages that only
# repeat them.
_GAVE_UP = ("failed to create audio output", "no suitable audio output module")
_VAGUE = ("module not functional", "Audio output failed", "The audio device")


class _Log:
    """libVLC's error messages of one instance, kept to explain a silent alarm.

    libVLC calls ``_cb`` on its own threads; it only appends to a list."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._format: Callable[..., int] | None = None
        try:
            libc = ctypes.CDLL(None)
            fmt = libc.vsnprintf
            fmt.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
            fmt.restype = ctypes.c_int
            self._format = fmt
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            pass
        self.callback = vlc.CallbackDecorators.LogCb(self._cb)

    def _cb(self, _data: Any, level: int, _ctx: Any, fmt: bytes | None, args: Any) -> None:
        if level < _LOG_ERROR or not fmt or len(self.errors) >= 20:
            return
        text = fmt
        if self._format is not None:
            buf = ctypes.create_string_buffer(400)
            if self._format(buf, len(buf), fmt, args) >= 0:
                text = buf.value
        with self._lock:
            self.errors.append(" ".join(text.decode("utf-8", "replace").split()))

    def output_error(self) -> str | None:
        """Why no audio output could be opened, once libVLC has given up on every one
        it tried (a failed probe of PulseAudio before a working ALSA is no failure)."""
        with self._lock:
            errors = list(dict.fromkeys(self.errors))
        if not any(e in _GAVE_UP for e in errors):
            return None
        useful = [e for e in errors if e not in _GAVE_UP and not e.startswith(_VAGUE)]
        return "; ".join(useful[:2]) if useful else errors[0]

    def first(self) -> str:
        with self._lock:
            return self.errors[0] if self.errors else ""


def _is_audio(event: Any) -> bool:
    """Whether an ESAdded event is about an audio track. libVLC's es_changed starts with
    the track type (an int); python-vlc's legacy event union does not name it, so it is
    read as the union's first unsigned int."""
    return int(event.u.meta_type) == int(vlc.TrackType.audio.value)


class Alarm:
    """Sounds ``config.alarm_file`` (or the bundled siren) ``alarm_repeats`` times.

    ``state``: "off" (emergency.alarm is false), "ready", "ringing", "done", "stopped"
    (the emergency left first), or "error: ..." (why it could not sound)."""

    def __init__(self, config: EmergencyConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._state = "ready" if config.alarm else "off"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned: set[str] = set()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def _set(self, state: str) -> None:
        with self._lock:
            self._state = state

    def ring(self) -> None:
        """Start the alarm (an emergency came on screen); returns at once."""
        if not self.config.alarm:
            return
        self.stop()
        previous = self._thread
        self._stop = stop = threading.Event()
        self._set("ringing")
        self._thread = threading.Thread(target=self._run, args=(stop, previous),
                                        name="alarm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cut the alarm short (the emergency left the screen); returns at once."""
        self._stop.set()

    def close(self) -> None:
        """Stop, and give libVLC a moment to let go of the sound output (shutdown)."""
        self.stop()
        if self._thread is not None:
            self._thread.join(JOIN_S)

    # ---- the worker thread ---------------------------------------------------------------
    def _run(self, stop: threading.Event, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()  # one player on the sound device at a time
        if stop.is_set():  # the emergency left before the sound device was free
            self._set("stopped")
            return
        try:
            outcome = self._ring(stop)
        except _Failure as e:
            self._warn(str(e))
            outcome = f"error: {e}"
        except Exception as e:  # never into the player; the screen matters more
            log.exception("emergency alarm failed unexpectedly")
            outcome = f"error: {e.__class__.__name__}: {e}"
        self._set(outcome)

    def _warn(self, message: str) -> None:
        if message in self._warned:
            log.debug("emergency alarm: %s", message)
        else:
            self._warned.add(message)
            log.warning("emergency alarm: %s", message)

    def _sounds(self) -> list[Path]:
        """The configured file first (when it can be read), then the bundled siren."""
        custom = self.config.alarm_file
        if not custom:
            return [bundled_sound()]
        if os.access(custom, os.R_OK) and Path(custom).is_file():
            return [Path(custom), bundled_sound()]
        why = "does not exist" if not os.path.exists(custom) else "cannot be read"
        self._warn(f"emergency.alarm_file {custom} {why}: the bundled siren plays instead; "
                   "copy the file there (readable by user eboard) or set alarm_file = ''")
        return [bundled_sound()]

    def _ring(self, stop: threading.Event) -> str:
        if vlc is None:
            raise _Failure(f"libVLC is not available ({_VLC_ERROR}): apt-get install libvlc5 "
                           "vlc-plugin-base")
        sounds = self._sounds()
        out = self.config.audio_output or "libVLC's default output"
        log.info("emergency alarm: %s x %d on %s%s", sounds[0].name, self.config.alarm_repeats,
                 out, f" ({self.config.audio_device})" if self.config.audio_device else "")
        for i, path in enumerate(sounds):
            try:
                return self._play(path, stop)
            except _NotASound as e:
                if i + 1 == len(sounds):  # the bundled siren itself
                    raise _Failure(f"the alarm sound {path} does not play ({e}): make it "
                                   "again with 'python -m player.alarm' or re-install "
                                   "eboard") from e
                self._warn(f"emergency.alarm_file {path} does not play ({e}): the bundled "
                           "siren plays instead; use a WAV, MP3 or OGG file, or "
                           "set alarm_file = ''")
        raise AssertionError("unreachable")  # pragma: no cover

    def _play(self, path: Path, stop: threading.Event) -> str:
        """Play ``path`` alarm_repeats times on a fresh instance; "done" or "stopped"."""
        messages = _Log()
        inst = vlc.Instance(vlc_args(self.config))
        if inst is None:
            raise _Failure("libVLC could not start: are the VLC plugins installed? "
                           "(apt-get install vlc-plugin-base)")
        inst.log_set(messages.callback, None)
        mp = em = None
        try:
            mp = inst.media_player_new()
            media = inst.media_new_path(str(path))
            if self.config.alarm_repeats > 1:
                media.add_option(f":input-repeat={self.config.alarm_repeats - 1}")
            mp.set_media(media)
            media.release()  # the player holds its own reference
            device, out = self.config.audio_device, self.config.audio_output
            if device and out not in ("afile", "alsa"):  # those two take it as an option
                mp.audio_output_device_set(None, device)
            ended, failed, audio = threading.Event(), threading.Event(), threading.Event()

            def on_error(_event: Any) -> None:  # libVLC threads: events only
                failed.set()
                ended.set()

            def on_track(event: Any) -> None:
                if _is_audio(event):
                    audio.set()

            em = event_manager(mp)  # not mp.event_manager(): python-vlc keeps those
            em.event_attach(vlc.EventType.MediaPlayerEndReached, lambda _e: ended.set())
            em.event_attach(vlc.EventType.MediaPlayerEncounteredError, on_error)
            em.event_attach(vlc.EventType.MediaPlayerESAdded, on_track)
            if mp.play() != 0:
                raise _NotASound(messages.first() or "libVLC refused it")
            last, moved = -1, time.monotonic()
            while not ended.wait(0.1):
                if stop.is_set():
                    log.info("emergency alarm stopped: the emergency left the screen")
                    return "stopped"
                self._check_output(messages)
                now, played = time.monotonic(), mp.get_time()
                if played != last:
                    last, moved = played, now
                elif now - moved > STALL_S:
                    raise _Failure(f"libVLC stopped playing {path.name} for {STALL_S:g} s "
                                   f"({messages.first() or 'no error given'})")
            self._check_output(messages)
            if failed.is_set() or not audio.is_set():
                raise _NotASound(messages.first() or "no sound in it")
            log.info("emergency alarm done")
            return "done"
        finally:
            if mp is not None:
                mp.stop()  # closes the output (an afile WAV gets its header here)
                if em is not None:
                    for event in (vlc.EventType.MediaPlayerEndReached,
                                  vlc.EventType.MediaPlayerEncounteredError,
                                  vlc.EventType.MediaPlayerESAdded):
                        em.event_detach(event)
                mp.release()
                if em is not None:
                    forget_callbacks(em)
            inst.log_unset()
            inst.release()

    def _check_output(self, messages: _Log) -> None:
        error = messages.output_error()
        if error is None:
            return
        out = self.config.audio_output or "default"
        device = self.config.audio_device or "its default device"
        if error == "no suitable audio output module" and self.config.audio_output:
            todo = (f"libVLC has no '{out}' output on this box: install its VLC plugin or "
                    "choose another emergency.audio_output")
        elif out == "afile":
            todo = "check that the folder of emergency.audio_device exists and is writable"
        else:
            todo = ("check that the box has a sound card ('aplay -l'), that user eboard is in "
                    "group audio, and emergency.audio_output / emergency.audio_device")
        raise _Failure(f"no sound: libVLC's audio output '{out}' on {device} failed ({error}); "
                       + todo)


if __name__ == "__main__":  # python -m player.alarm [FILE]: make the bundled siren again
    print(write_siren(Path(sys.argv[1]) if len(sys.argv) > 1 else SOUND))
