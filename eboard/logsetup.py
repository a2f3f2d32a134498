"""Logging for the journal: priorities, no double timestamps, no floods.

Under systemd, stderr goes to the journal (``$JOURNAL_STREAM`` names it). There,
each line starts with a ``<N>`` syslog priority prefix (sd-daemon(3)), so that
``journalctl -p err -u eboard-sync`` shows the errors, and carries no timestamp
(the journal has its own). At a terminal, lines get a timestamp instead.

:class:`RepeatFilter` keeps one repeated message (the same logger, level and text,
numbers aside) from flooding the journal on a box with little storage: the first
``burst`` in each ``interval`` pass, the rest are counted, and the next one that
passes says how many were held back. :class:`Transitions` logs a state only when
it changes, so a loop logs "source unreachable" once, not on every tick.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TextIO

_DIGITS = re.compile(r"\d+")

# logging level -> syslog priority (sd-daemon(3) prefixes)
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


def journal_stream(stream: TextIO) -> bool:
    """True when ``stream`` is the journal stream systemd connected us to."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class JournalFormatter(logging.Formatter):
    """``<3>eboard.sync: message`` — priority prefix, no timestamp."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        # Every line of a traceback gets the prefix, so it stays one priority.
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class RepeatFilter(logging.Filter):
    """Let ``burst`` copies of one message through per ``interval`` seconds.

    Messages are the same when logger, level and text are, with every run of
    digits counted as equal ("retry 3 in 40 s" repeats "retry 2 in 20 s").
    """

    def __init__(self, burst: int = 5, interval: float = 60.0, max_keys: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        # key -> [window start, passed in window, suppressed in window]
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string must still be logged
            return True
        key = (record.name, record.levelno, _DIGITS.sub("#", text))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.interval:
            held = int(entry[2]) if entry else 0
            self._seen[key] = [now, 1, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            if held:
                record.msg = f"{text} (and {held} more like it held back in the last " \
                             f"{self.interval:.0f} s)"
                record.args = None
            return True
        self._seen.move_to_end(key)
        if entry[1] < self.burst:
            entry[1] += 1
            if entry[1] == self.burst:
                record.msg = f"{text} (repeating; more like it are held back for " \
                             f"{self.interval:.0f} s)"
                record.args = None
            return True
        entry[2] += 1
        return False


class Transitions:
    """Log a subject's state only when it changes.

    >>> t = Transitions(logging.getLogger("eboard.sync"))
    >>> t.set("source", "unreachable", logging.WARNING, "source %s unreachable", url)
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._state: dict[str, object] = {}

    def set(self, subject: str, state: object, level: int, msg: str, *args: object) -> bool:
        """Log ``msg`` when ``subject`` enters a new ``state``; True when logged."""
        if self._state.get(subject, _UNSET) == state:
            return False
        self._state[subject] = state
        self.logger.log(level, msg, *args)
        return True

    def get(self, subject: str) -> object:
        return self._state.get(subject)


_UNSET = object()


def setup_logging(verbose: bool = False, level: int | None = None,
                  stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once for a daemon or a command; returns its handler."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    if journal_stream(stream):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_eboard", False)]:
        root.removeHandler(old)
    handler._eboard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if level is None:
        level = logging.DEBUG if verbose else logging.INFO
    root.setLevel(level)
    # Libraries that log every tick (each scheduled job run, each request) would drown
    # the transitions our own modules record; keep their warnings only.
    for noisy in ("apscheduler", "alembic", "urllib3"):
        lib = logging.getLogger(noisy)
        lib.setLevel(max(level, logging.WARNING, lib.level))
    return handler
