"""What boards and operators send, checked before anything is stored.

- plays: ``{"records": [...], "counts": [...]}``, each entry's id a UUID and each field
  of its type; a bad entry is refused alone, with its reason;
- commands: ``{"command": "name", "args": {...}, "ttl_s": N}`` from an operator.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_PLAYS_BYTES = 8 * 1024 * 1024
MAX_BATCH = 2000
MAX_SCREENSHOT_BYTES = 2 * 1024 * 1024
DEFAULT_COMMAND_TTL_S = 3600
MAX_COMMAND_TTL_S = 7 * 86400
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

TEXT = (str, type(None))
NUM = (int, float, type(None))
RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "item_id": TEXT, "playlist_id": TEXT, "manifest_version": (int, type(None)),
    "started_at": (str,), "ended_at": TEXT, "duration_s": NUM, "outcome": TEXT,
    "detail": TEXT,
}
COUNT_TYPES: dict[str, tuple[type, ...]] = {
    "day": (str,), "playlist_id": TEXT, "item_id": TEXT, "outcome": TEXT,
    "plays": (int,), "seconds": (int, float), "first_started": TEXT, "last_ended": TEXT,
}


def _describe(allowed: tuple[type, ...]) -> str:
    if float in allowed:
        words = ["a number"]
    elif int in allowed:
        words = ["an integer"]
    else:
        words = ["a string"]
    if type(None) in allowed:
        words.append("null")
    return " or ".join(words)


def _check(entry: Any, types: dict[str, tuple[type, ...]]) -> tuple[str, str | None]:
    """(id, reason it is refused or None)."""
    if not isinstance(entry, dict):
        return "", "not a JSON object"
    rid = entry.get("id")
    if not isinstance(rid, str) or not UUID_RE.match(rid):
        return str(rid), "id must be a UUID"
    for key, allowed in types.items():
        value = entry.get(key)
        if not isinstance(value, allowed) or isinstance(value, bool):
            return rid, f"{key} must be {_describe(allowed)}"
    return rid, None


def plays(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, str]]]:
    """(good records, good counts, rejected entries); ValueError when the body's shape
    is wrong as a whole (its message says what to send)."""
    if not isinstance(data, dict):
        raise ValueError('body must be {"records": [...], "counts": [...]}')
    records, counts = data.get("records") or [], data.get("counts") or []
    if not isinstance(records, list) or not isinstance(counts, list) \
            or len(records) + len(counts) > MAX_BATCH:
        raise ValueError(f"records and counts must be lists of at most {MAX_BATCH} in all")
    good_r: list[dict[str, Any]] = []
    good_c: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    for entries, types, good in ((records, RECORD_TYPES, good_r),
                                 (counts, COUNT_TYPES, good_c)):
        for entry in entries:
            rid, reason = _check(entry, types)
            if reason:
                rejected.append({"id": rid, "reason": reason})
            else:
                good.append({"id": rid, **{k: entry.get(k) for k in types}})
    return good_r, good_c, rejected


def command(data: Any, now: datetime | None = None) -> dict[str, Any]:
    """The command to queue, with its id and expiry; ValueError saying what to send."""
    if not isinstance(data, dict) or not isinstance(data.get("command"), str) \
            or not COMMAND_NAME_RE.match(data["command"]):
        raise ValueError('body must be {"command": "name", "args": {...}, "ttl_s": N}')
    args = data.get("args", {})
    ttl = data.get("ttl_s", DEFAULT_COMMAND_TTL_S)
    if not isinstance(args, dict) or not isinstance(ttl, int) or isinstance(ttl, bool) \
            or not 10 <= ttl <= MAX_COMMAND_TTL_S:
        raise ValueError(f"args must be an object and ttl_s 10..{MAX_COMMAND_TTL_S}")
    now = now or datetime.now(UTC)
    return {"id": str(uuid.uuid4()), "command": data["command"], "args": args,
            "created_at": now.isoformat(timespec="milliseconds"),
            "expires_at": (now + timedelta(seconds=ttl)).isoformat(timespec="milliseconds")}
