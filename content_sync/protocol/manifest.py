"""The eboard/1 manifest: parsing and validation into typed, immutable values.

Unknown fields are ignored (forward compatible). Missing or ill-typed required
fields refuse the whole manifest with one clear reason. An item of a kind this
release does not know is left out with its reason in ``Manifest.skipped``, and the
rest of its playlist plays (docs/ARCHITECTURE.md, "Item kinds").
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

FORMAT = "eboard.manifest/1"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
Priority = Literal["normal", "priority", "emergency"]
# Versions (docs/ARCHITECTURE.md, "Manifest versions"): at most the largest integer that
# JSON carries exactly (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER; SQLite holds up to
# 2^63 - 1), and no further ahead than a year and a day past the active version or the
# time now, in ms since 1970 as eboard publish makes them.
MAX_VERSION = 2**53 - 1
VERSION_HORIZON_DAYS = 366
DAY_MS = 86_400_000
# 2026-01-01T00:00:00Z in ms: no box's clock is right before this release was made, so a
# box whose clock lost its RTC battery still takes versions of now.
VERSION_FLOOR_MS = 1_767_225_600_000


class ItemKind(StrEnum):
    """What an item is; the value is the manifest's ``"type"``."""

    IMAGE = "image"
    VIDEO = "video"
    TEXT = "text"


@dataclass(frozen=True)
class KindRule:
    """What the manifest asks of an item of one kind, and how long it shows."""

    needs_media: bool  # a "media" hash, listed in "media"
    needs_words: bool  # a "title" or a "body"
    default_duration: float | None  # seconds without "duration"; None: the media's length


# The registry: one entry per kind (a new kind also needs its media check in
# content_sync/board/media_check.py and its renderer in player/stage.py).
KIND_RULES: dict[ItemKind, KindRule] = {
    ItemKind.IMAGE: KindRule(needs_media=True, needs_words=False, default_duration=10.0),
    ItemKind.VIDEO: KindRule(needs_media=True, needs_words=False, default_duration=None),
    ItemKind.TEXT: KindRule(needs_media=False, needs_words=True, default_duration=15.0),
}

# Media types a board takes, and the kind of item that shows each.
MEDIA_KINDS: dict[str, ItemKind] = {
    "image/jpeg": ItemKind.IMAGE, "image/png": ItemKind.IMAGE, "image/webp": ItemKind.IMAGE,
    "image/gif": ItemKind.IMAGE, "image/bmp": ItemKind.IMAGE,
    "video/mp4": ItemKind.VIDEO, "video/webm": ItemKind.VIDEO,
    "video/x-matroska": ItemKind.VIDEO, "video/quicktime": ItemKind.VIDEO,
    "video/mpeg": ItemKind.VIDEO,
}
ALLOWED_TYPES = frozenset(MEDIA_KINDS)


@dataclass(frozen=True)
class SkippedItem:
    """An item left out of its playlist because this release cannot show it."""

    playlist: str
    item: str
    reason: str


class ManifestError(Exception):
    """A manifest was refused; the message is one line a technician can act on."""


def _nfc(v: str) -> str:
    return unicodedata.normalize("NFC", v)


NFCStr = Annotated[str, AfterValidator(_nfc)]


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("a date-time with a UTC offset, e.g. 2026-11-24T08:00:00+07:00")
    return v


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MediaInfo(_Model):
    size: StrictInt = Field(ge=0)
    type: str

    @field_validator("type")
    @classmethod
    def _allowed(cls, v: str) -> str:
        if v not in ALLOWED_TYPES:
            raise ValueError(f"a media type in {sorted(ALLOWED_TYPES)}, not {v!r}")
        return v


class Schedule(_Model):
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    times: tuple[tuple[str, str], ...] = ()

    @field_validator("days")
    @classmethod
    def _days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 7 for d in v):
            raise ValueError("ISO weekdays 1 (Monday) to 7 (Sunday)")
        return v

    @field_validator("times")
    @classmethod
    def _times(cls, v: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for a, b in v:
            if not TIME_RE.match(a) or not TIME_RE.match(b):
                raise ValueError("time windows as [\"HH:MM\", \"HH:MM\"]")
        return v


class Item(_Model):
    id: str = Field(min_length=1, max_length=200)
    type: ItemKind
    media: str | None = None
    duration: float | None = Field(default=None, gt=0, le=86400)
    title: NFCStr = ""
    body: NFCStr = ""
    instructions: NFCStr = ""
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _shape(self) -> Item:
        rule = KIND_RULES[self.type]
        if rule.needs_media:
            if not self.media:
                raise ValueError(f"{self.type} item {self.id!r} needs a 'media' hash")
            if not SHA256_RE.match(self.media):
                raise ValueError(
                    f"item {self.id!r} media {self.media[:80]!r} is not 64 lowercase hex digits"
                )
        if rule.needs_words and not (self.title or self.body):
            raise ValueError(f"{self.type} item {self.id!r} needs a title or a body")
        return self


class Playlist(_Model):
    id: str = Field(min_length=1, max_length=200)
    title: NFCStr = ""
    priority: Priority = "normal"
    risk_level: int | None = Field(default=None, ge=1, le=5)
    schedule: Schedule = Schedule()
    items: tuple[Item, ...]


class TickerLine(_Model):
    id: str
    text: NFCStr
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None


class Manifest(_Model):
    format: Literal["eboard.manifest/1"]
    board: str
    version: StrictInt = Field(ge=1)
    issued_at: AwareDatetime
    media: dict[str, MediaInfo] = Field(default_factory=dict)
    playlists: tuple[Playlist, ...] = ()
    ticker: tuple[TickerLine, ...] = ()
    # Set by parse() alone (whatever the JSON says): the items of unknown kinds left out.
    skipped: tuple[SkippedItem, ...] = Field(default=(), exclude=True)

    @field_validator("version")
    @classmethod
    def _json_safe(cls, v: int) -> int:
        if v > MAX_VERSION:
            raise ValueError(f"{str(v)[:40]} is above {MAX_VERSION} (2^53 - 1), the largest "
                             "integer JSON carries exactly; versions are ms since 1970")
        return v

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        for name in self.media:
            if not SHA256_RE.match(name):
                raise ValueError(f"media name {name[:80]!r} is not 64 lowercase hex digits")
        for pl in self.playlists:
            for item in pl.items:
                if item.media is not None and item.media not in self.media:
                    raise ValueError(
                        f"item {item.id!r} refers to media {item.media[:12]}… "
                        "that is not listed in 'media'"
                    )
        return self


def version_ceiling(active: int, now_ms: int) -> int:
    """The highest version a board with ``active`` takes when its clock says ``now_ms``."""
    start = max(active, now_ms, VERSION_FLOOR_MS)
    return min(MAX_VERSION, start + VERSION_HORIZON_DAYS * DAY_MS)


def version_too_far(version: int, active: int, now_ms: int) -> str | None:
    """Why ``version`` is further ahead than a board takes, or None (see MAX_VERSION)."""
    ceiling = version_ceiling(active, now_ms)
    if version <= ceiling:
        return None
    return (f"version {version} is more than {VERSION_HORIZON_DAYS} days ahead of the active "
            f"version {active} and of the box's clock, as ms since 1970 (at most {ceiling}); "
            "taken, it would make every version of the time between a rollback. Check the "
            "publisher's clock, or the version it was given by hand")


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "manifest"
    msg = str(err["msg"]).removeprefix("Value error, ")
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {msg}{more}"


# A JSON escape of half a UTF-16 surrogate pair: json.loads keeps it as a lone surrogate,
# which no UTF-8 encoder takes (SQLite, pydantic's error messages, the heartbeat).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogates(body: bytes) -> bool:
    """Whether json.loads may have made lone surrogates of ``body``: from an escape, or
    from the bytes of one encoded as if it were a character (json.loads decodes bytes
    with "surrogatepass"; strict UTF-8 refuses them, as it refuses UTF-16 and UTF-32)."""
    if _SURROGATE_ESCAPE.search(body):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _without_lone_surrogates(data: object) -> object:
    """Each lone surrogate in every string (keys included) replaced by U+FFFD: a title
    cut in the middle of an emoji by a UTF-16 publishing tool shows one "�" instead of
    refusing the manifest, and an id or a media name with one is refused as malformed.
    Iterative: the document may be nested as deep as json.loads allows."""
    def fix(v: object) -> object:
        return _LONE_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v

    root = [fix(data)]
    stack: list[list[object] | dict[object, object]] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, v in enumerate(node):
                node[i] = fix(v)
                if isinstance(node[i], list | dict):
                    stack.append(node[i])  # type: ignore[arg-type]
        else:
            for k in list(node):
                v = fix(node.pop(k))
                node[fix(k)] = v
                if isinstance(v, list | dict):
                    stack.append(v)
    return root[0]


def _skip_unknown_kinds(data: dict[str, Any]) -> list[SkippedItem]:
    """Take the items whose ``type`` is a string but no kind this release knows out of
    their playlists (in place), and the media only they used out of ``media``. Anything
    else malformed is left for validation to refuse."""
    known = {k.value for k in ItemKind}
    skipped: list[SkippedItem] = []
    kept_media: set[str] = set()
    dropped_media: set[str] = set()
    playlists = data.get("playlists")
    for pl in playlists if isinstance(playlists, list) else ():
        items = pl.get("items") if isinstance(pl, dict) else None
        if not isinstance(items, list):
            continue
        keep = []
        for it in items:
            kind = it.get("type") if isinstance(it, dict) else None
            if isinstance(kind, str) and kind not in known:
                skipped.append(SkippedItem(
                    str(pl.get("id", "")), str(it.get("id", "")),
                    f"item type {kind[:40]!r} is not one this board shows "
                    f"({', '.join(sorted(known))}); the item is left out"))
                if isinstance(it.get("media"), str):
                    dropped_media.add(it["media"])
                continue
            if isinstance(it, dict) and isinstance(it.get("media"), str):
                kept_media.add(it["media"])
            keep.append(it)
        pl["items"] = keep
    media = data.get("media")
    if isinstance(media, dict):
        for sha in dropped_media - kept_media:
            media.pop(sha, None)
    return skipped


def parse(body: bytes) -> Manifest:
    """Parse manifest JSON bytes or raise ManifestError with one clear reason."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # [[[[… nested too deep
        raise ManifestError(f"manifest is not valid JSON: {e}") from None
    if _has_lone_surrogates(body):
        data = _without_lone_surrogates(data)
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    if data.get("format") != FORMAT:
        raise ManifestError(f"manifest format is {data.get('format')!r}, expected {FORMAT!r}")
    data["skipped"] = _skip_unknown_kinds(data)
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise ManifestError(f"manifest refused: {_one_line(e)}") from None
