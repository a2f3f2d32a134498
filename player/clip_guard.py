"""Clips the player died with: held back, so that one bad clip cannot crash-loop the board.

libVLC decodes inside the player's process. A clip that crashes its decoder (or hangs
the player until the systemd watchdog kills it) takes the whole player down; systemd
starts it again, the schedule comes back to the same clip, and the board would flash
between a crash and a restart for as long as that clip is in the playlist.

So the player keeps a small note next to the database saying which clips it has open
(pre-rolled, starting, playing or being stopped) while they are open; a clean exit
leaves the note with none open. When the player starts and finds a note left by a
player of this same boot that is not running any more with clips open, that player
died with them: each gets a death. A clip with ``DEATHS_TO_HOLD`` deaths is held back
for ``HOLD_S``: the schedule passes over it, its items are recorded as skipped with the
reason, and the player's status (so the heartbeat and ``eboard status``) names it. After
``HOLD_S`` it is tried once more; one more death holds it again.

A power cut is not a death (the boot id changes), nor is a stop by SIGTERM (the player
exits cleanly). The note is written without fsync: it only has to survive the death of
the process, and the page cache does. It is best effort: a cache that cannot be written
only loses this protection, never the screen.
"""

from __future__ import annotations

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
MAX_CLIPS = 200  # the note stays small whatever happens
NOTE_NAME = "player-clips.json"
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


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class ClipGuard:
    """The note of open clips and the deaths counted from it (thread-safe: libVLC
    clips are released in background threads)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 boot: str | None = None) -> None:
        self.path = path
        self._clock = clock
        self._boot = boot_id() if boot is None else boot
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._deaths: dict[str, dict[str, Any]] = {}
        self._write_failed = False

    def start(self) -> dict[str, int]:
        """Read what the last player left; count a death for each clip a dead player of
        this boot had open. Returns those clips with their death counts."""
        new: dict[str, int] = {}
        note = self._read()
        now = self._clock()
        with self._lock:
            self._deaths = {}
            for sha, d in (note.get("deaths") or {}).items():
                if (isinstance(sha, str) and isinstance(d, dict)
                        and isinstance(d.get("n"), int) and isinstance(d.get("last"), float | int)
                        and now - float(d["last"]) < FORGET_S):
                    self._deaths[sha] = {"n": d["n"], "last": float(d["last"])}
            pid = note.get("pid")
            left_open = [s for s in note.get("open") or [] if isinstance(s, str)]
            died = (left_open and note.get("boot") == self._boot and self._boot
                    and isinstance(pid, int) and pid != os.getpid() and not _pid_running(pid))
            if died:
                for sha in dict.fromkeys(left_open):
                    d = self._deaths.setdefault(sha, {"n": 0, "last": now})
                    d["n"] += 1
                    d["last"] = now
                    new[sha] = d["n"]
            if len(self._deaths) > MAX_CLIPS:
                keep = sorted(self._deaths.items(), key=lambda kv: kv[1]["last"])[-MAX_CLIPS:]
                self._deaths = dict(keep)
            self._open.clear()
            self._write_locked()
        for sha, n in new.items():
            if n >= DEATHS_TO_HOLD:
                log.error("the player died %d times with clip %s… open (its decoder crashed or "
                          "hung); holding it back for %g h. Replace the clip at the source if "
                          "it keeps happening", n, sha[:12], HOLD_S / 3600)
            else:
                log.warning("the last player died with clip %s… open; one more death with it "
                            "and it is held back", sha[:12])
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
        """The clips the schedule must pass over now."""
        now = self._clock()
        with self._lock:
            return frozenset(sha for sha, d in self._deaths.items()
                             if d["n"] >= DEATHS_TO_HOLD and now - d["last"] < HOLD_S)

    def reason(self, sha: str) -> str:
        with self._lock:
            d = self._deaths.get(sha, {"n": 0, "last": self._clock()})
        return (f"held back: the player died {d['n']} times with this clip open; "
                f"tried again after {_iso(d['last'] + HOLD_S)}")

    def report(self) -> list[dict[str, Any]]:
        """The held clips for the player's status (and so the heartbeat)."""
        held = self.held()
        with self._lock:
            return [{"media": sha, "deaths": d["n"], "until": _iso(d["last"] + HOLD_S)}
                    for sha, d in sorted(self._deaths.items()) if sha in held]

    def stop(self) -> None:
        """A clean exit: nothing is open any more, whatever libVLC still tears down."""
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
            log.warning("ignoring the clip note %s (%s); it is written again", self.path, e)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_locked(self) -> None:
        note = {"boot": self._boot, "pid": os.getpid(), "open": sorted(self._open),
                "deaths": self._deaths}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(note), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            if not self._write_failed:
                log.warning("cannot write the clip note %s (%s): a clip that crashes the "
                            "player will not be held back until it can", self.path, e)
            self._write_failed = True
            return
        if self._write_failed:
            log.info("the clip note %s is written again", self.path)
        self._write_failed = False
