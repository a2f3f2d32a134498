"""The memory of wrong bytes a source sent for a media, under the validator it sent them
with (ETag or Last-Modified): so that a metered link does not fetch the same wrong file
again and again, yet one corrupted answer never blocks a good file for good.

When the bytes of a download do not match the manifest's SHA-256 (or size), the
download keeps a small marker beside the partial file (``partial/{sha}.bad``) naming the
URL and validator of that answer. What the next attempt does with it:

- an **unconfirmed** marker (one wrong answer) is not trusted: the next download is a
  fresh, unconditional one. A proxy or CDN edge that corrupted one answer, or a source
  that fixed the file without changing its validator, gives the right bytes then;
- wrong bytes again under the same validator **confirm** it: from then on the download
  asks conditionally (``If-None-Match``, else ``If-Modified-Since``) and a 304 says the
  source still holds the same wrong file, without a byte fetched;
- a confirmed marker **expires** after :data:`TRUST_S` (or when the wall clock is
  before it: stepped back): the next download is fresh again, and confirms it again if
  the bytes are still wrong.

A marker of an older release (the bare ETag, no JSON) reads as unconfirmed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

TRUST_S = 24 * 3600.0  # how long two wrong answers under one validator are believed


class Ask(StrEnum):
    """How the next download of a media with a marker asks the source."""

    FRESH = "fresh"              # unconditionally: the memory is unconfirmed or expired
    CONDITIONAL = "conditional"  # with the validator: a 304 means the same wrong bytes


@dataclass(frozen=True)
class Marker:
    url: str
    etag: str
    last_modified: str
    at: float          # wall clock of the last wrong answer
    confirmed: bool    # two wrong answers under this validator, the last one fresh

    def same_answer(self, url: str, etag: str, last_modified: str) -> bool:
        return self.url == url and (etag, last_modified) == (self.etag, self.last_modified)

    def headers(self) -> dict[str, str]:
        if self.etag:
            return {"If-None-Match": self.etag}
        return {"If-Modified-Since": self.last_modified}

    def until(self) -> str:
        return datetime.fromtimestamp(self.at + TRUST_S, UTC).isoformat(timespec="seconds")


def marker_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".bad")


def read(partial: Path) -> Marker | None:
    try:
        text = marker_path(partial).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # an older release wrote the bare ETag
        return Marker("", text.strip(), "", 0.0, False) if text.strip() else None
    try:
        return Marker(str(data["url"]), str(data["etag"]), str(data["last_modified"]),
                      float(data["at"]), bool(data["confirmed"]))
    except (KeyError, TypeError, ValueError):
        return None


def ask(marker: Marker | None, url: str, now: float) -> Ask:
    """Pure: how to ask for a media whose last answer left ``marker``."""
    if (marker is None or not marker.confirmed or marker.url != url
            or not (marker.etag or marker.last_modified)):
        return Ask.FRESH
    if not 0 <= now - marker.at < TRUST_S:
        return Ask.FRESH
    return Ask.CONDITIONAL


def remember(partial: Path, url: str, etag: str, last_modified: str,
             clock: Callable[[], float] = time.time) -> Marker | None:
    """Note a wrong answer (its validators as the partial's sidecar had them). Confirmed when
    the marker already held this very answer; none when the answer had no validator."""
    if not (etag or last_modified):
        forget(partial)
        return None
    old = read(partial)
    marker = Marker(url, etag, last_modified, clock(),
                    old is not None and old.same_answer(url, etag, last_modified))
    path = marker_path(partial)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(marker)), encoding="utf-8")
    os.replace(tmp, path)
    return marker


def forget(partial: Path) -> None:
    marker_path(partial).unlink(missing_ok=True)
