"""Media a process died while decoding: held back, so that one bad file cannot crash-loop
the box.

Decoders run inside our processes: libVLC in the player, Pillow in the sync daemon's
check of each image it downloads. A file that crashes its decoder (or hangs the process
until the systemd watchdog kills it) takes the whole process down; systemd starts it
again, and it comes back to the same file — the player's schedule to the same clip, the
sync to the same download, which then blocks every later manifest, an emergency's
included — for as long as that file is wanted.

So each process keeps a small note next to the database saying which media it is
decoding (the player: the clips it has open, pre-rolled, playing or being stopped; the
sync: the file being checked); a clean exit leaves the note with none open. When the
process starts and finds a note left by one of this same boot that is not running any
more with media open, that process died with them: each gets a death. A media with
``DEATHS_TO_HOLD`` deaths is held back for ``HOLD_S``: the player's schedule passes over
it and records its items as skipped, the sync refuses it with the reason, and the
status (so the heartbeat, ``eboard status`` and the doctor) names it. After ``HOLD_S``
it is tried once more; one more death holds it again.

Only a crash of the process counts, never a kill from outside. Each process has
``faulthandler`` write to a crash record beside the note (``player-clips.crash``,
``sync-checks.crash``, kept open) on SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE: what a
crashing decoder raises, and what systemd's watchdog sends a hung process (SIGABRT). A
process that died with media open and left a crash record under its own pid crashed;
one that left none was killed from outside — the OOM killer, a stop time-out, a
technician's ``kill -9`` (SIGKILL cannot be caught) — and its media get no death: a
file is never held back because the box was short of memory while checking it.

A power cut is not a death (the boot id changes), nor is a stop by SIGTERM (a clean
exit). The note is written without fsync: it only has to survive the death of the
process, and the page cache does. It is best effort: a cache that cannot be written only
loses this protection, never the screen or the sync.
"""

from __future__ import annotations

import faulthandler
import io
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEATHS_TO_HOLD = 2
HOLD_S = 24 * 3600.0
FORGET_S = 7 * 24 * 3600.0  # deaths older than this are forgotten
MAX_MEDIA = 200  # the note stays small whatever happens
CLIP_NOTE = "player-clips.json"  # the player's clips
CHECK_NOTE = "sync-checks.json"  # the sync's media checks
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _pid_running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a zombie (dead, not yet reaped by its parent) is not running
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


CRASH_MARK = "Fatal Python error"  # how faulthandler starts what it writes on a crash
_crash_lock = threading.Lock()
_crash_record: tuple[int, Path, io.TextIOWrapper] | None = None  # pid, path, file


def record_crashes(path: Path, boot: str) -> Path | None:
    """Have ``faulthandler`` write this process's crash (SIGSEGV, SIGBUS, SIGABRT, SIGILL,
    SIGFPE), if it comes, to ``path``, after a first line naming the process. One record
    per process: a second guard of the same process gets the first one's path. Returns
    the path, or None when it cannot be written (crashes are then not told from kills)."""
    global _crash_record
    with _crash_lock:
        if _crash_record is not None and _crash_record[0] == os.getpid():
            return _crash_record[1]
        try:
            f = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the handler)
            f.write(f"eboard crash record of pid {os.getpid()} boot {boot}\n")
            f.flush()
            faulthandler.enable(file=f, all_threads=True)
        except (OSError, ValueError, RuntimeError) as e:
            log.warning("cannot keep a crash record at %s (%s): a decoder that crashes will "
                        "not be held back; check that %s is writable by the user eboard "
                        "runs as", path, e, path.parent)
            return None
        _crash_record = (os.getpid(), path, f)
        return path


def crash_of(path: object, pid: int) -> str | None:
    """What the crash record at ``path`` says of process ``pid``: the start of its
    traceback when it crashed, None when it left none (killed from outside, or no record)."""
    if not isinstance(path, str) or not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.readline()
            body = f.read(64 * 1024)
    except OSError:
        return None
    if not head.startswith(f"eboard crash record of pid {pid} ") or CRASH_MARK not in body:
        return None
    return body[body.index(CRASH_MARK):].strip()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class DecoderGuard:
    """The note of media being decoded and the deaths counted from it (thread-safe:
    libVLC clips are released in background threads, the sync checks in parallel).
    ``who`` and ``what`` name the process and the media in messages: ("player", "clip"),
    ("sync", "file")."""

    def __init__(self, path: Path, who: str = "player", what: str = "clip", *,
                 clock: Callable[[], float] = time.time, boot: str | None = None) -> None:
        self.path = path
        self.who, self.what = who, what
        self._clock = clock
        self._boot = boot_id() if boot is None else boot
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._deaths: dict[str, dict[str, Any]] = {}
        self._write_failed = False
        # The note, open for the life of the guard. A file object, not a bare number: a
        # guard finalized by the cycle collector and then used by a late thread (a clip
        # released after its window was freed) must fail, not pwrite into whatever file
        # has reused the number since (it overwrote a test's SQLite database header).
        self._file: io.FileIO | None = None
        self._size = 0  # its length: a shorter note is padded to it
        self._crashes: Path | None = None  # where this process's crash would be recorded

    def start(self) -> dict[str, int]:
        """Read what the last process left; count a death for each media a dead process
        of this boot had open. Returns those media with their death counts. Only a crash
        of that process (its crash record says so) is a death; a kill from outside is not."""
        new: dict[str, int] = {}
        killed: list[str] = []
        note = self._read()
        now = self._clock()
        pid = note.get("pid")
        crash = crash_of(note.get("crashes"), pid) if isinstance(pid, int) else None
        # Read before this process's own record is begun (it may be the same file).
        self._crashes = record_crashes(self.path.with_suffix(".crash"), self._boot)
        with self._lock:
            self._deaths = {}
            for sha, d in (note.get("deaths") or {}).items():
                if (isinstance(sha, str) and isinstance(d, dict)
                        and isinstance(d.get("n"), int) and isinstance(d.get("last"), float | int)
                        and now - float(d["last"]) < FORGET_S):
                    self._deaths[sha] = {"n": d["n"], "last": float(d["last"])}
            left_open = [s for s in note.get("open") or [] if isinstance(s, str)]
            died = (left_open and note.get("boot") == self._boot and self._boot
                    and isinstance(pid, int) and pid != os.getpid() and not _pid_running(pid))
            if died and crash is None:
                killed = list(dict.fromkeys(left_open))
            elif died:
                for sha in dict.fromkeys(left_open):
                    d = self._deaths.setdefault(sha, {"n": 0, "last": now})
                    d["n"] += 1
                    d["last"] = now
                    new[sha] = d["n"]
            if len(self._deaths) > MAX_MEDIA:
                keep = sorted(self._deaths.items(), key=lambda kv: kv[1]["last"])[-MAX_MEDIA:]
                self._deaths = dict(keep)
            self._open.clear()
            self._write_locked()
        if killed:
            log.warning("the last %s (pid %s) was killed from outside while decoding %s %s "
                        "(no crash recorded: the OOM killer, a stop time-out or kill -9); not "
                        "counted against it. If it keeps happening, look in the journal for "
                        "the OOM killer (journalctl -k | grep -i oom)", self.who, pid,
                        self.what, ", ".join(s[:12] + "…" for s in killed))
        if new and crash:
            log.error("the last %s (pid %s) crashed while decoding; its crash record: %s",
                      self.who, pid, "\n".join(crash.splitlines()[:30]))
        for sha, n in new.items():
            if n >= DEATHS_TO_HOLD:
                log.error("the %s died %d times while decoding %s %s… (its decoder crashed "
                          "or hung); holding it back for %g h. Replace it at the source if it "
                          "keeps happening", self.who, n, self.what, sha[:12], HOLD_S / 3600)
            else:
                log.warning("the last %s died while decoding %s %s…; one more death with it "
                            "and it is held back", self.who, self.what, sha[:12])
        return new

    def opened(self, sha: str) -> None:
        with self._lock:
            self._open[sha] += 1
            if self._open[sha] == 1:
                self._write_locked()

    def closed(self, sha: str) -> None:
        with self._lock:
            if self._open[sha] <= 0:
                return
            self._open[sha] -= 1
            if self._open[sha] == 0:
                del self._open[sha]
                self._write_locked()

    def held(self) -> frozenset[str]:
        """The media to pass over now."""
        now = self._clock()
        with self._lock:
            return frozenset(sha for sha, d in self._deaths.items()
                             if d["n"] >= DEATHS_TO_HOLD and now - d["last"] < HOLD_S)

    def reason(self, sha: str) -> str:
        with self._lock:
            d = self._deaths.get(sha, {"n": 0, "last": self._clock()})
        return (f"held back: the {self.who} died {d['n']} times while decoding this "
                f"{self.what}; tried again after {_iso(d['last'] + HOLD_S)}")

    def reason_pattern(self) -> str:
        """An SQL LIKE pattern matching every :meth:`reason` of this guard (so that a hold
        recorded as something else can be found again)."""
        return (f"%held back: the {self.who} died % times while decoding this {self.what}; "
                "tried again after %")

    def report(self) -> list[dict[str, Any]]:
        """The held media for the status (and so the heartbeat)."""
        held = self.held()
        with self._lock:
            return [{"media": sha, "deaths": d["n"], "until": _iso(d["last"] + HOLD_S)}
                    for sha, d in sorted(self._deaths.items()) if sha in held]

    def stop(self) -> None:
        """A clean exit: nothing is open any more (whatever libVLC still tears down)."""
        with self._lock:
            self._open.clear()
            self._write_locked()

    # ---- the note ---------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.warning("ignoring the decoder note %s (%s); it is written again", self.path, e)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_locked(self) -> None:
        """One ``pwrite`` at offset 0 of a file kept open: a process that dies finds the
        note either before or after the write, never half-written (the death of a
        process, unlike a power cut, cannot split a system call). Shorter text is padded
        with spaces, which JSON ignores, so the file is never truncated. A rename per
        write cost ~0.5 ms on ext4, a fifth of a first sync's time for 100 files."""
        data = json.dumps({"boot": self._boot, "pid": os.getpid(), "open": sorted(self._open),
                           "deaths": self._deaths,
                           "crashes": str(self._crashes) if self._crashes else ""}).encode()
        data += b" " * (self._size - len(data))
        try:
            if self._file is None or self._file.closed:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._file = io.FileIO(fd, "r+", closefd=True)
                self._size = os.fstat(fd).st_size
                data += b" " * (self._size - len(data))
            os.pwrite(self._file.fileno(), data, 0)
        except (OSError, ValueError) as e:  # ValueError: the file was closed under us
            if not self._write_failed:
                log.warning("cannot write the decoder note %s (%s): a %s that crashes its "
                            "decoder will not be held back until it can; check that %s is "
                            "writable by the user eboard runs as and has free space",
                            self.path, e, self.what, self.path.parent)
            self._write_failed = True
            if self._file is not None:
                self._file.close()
            self._file = None
            return
        self._size = max(self._size, len(data))
        if self._write_failed:
            log.info("the decoder note %s is written again", self.path)
        self._write_failed = False
