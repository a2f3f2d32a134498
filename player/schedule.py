"""What plays when: a pure function of (playlists, now, cursor), with no Qt in it.

Rules (DESIGN.md §2):

- A playlist is *active* at ``now`` when ``start <= now < end``, the local weekday is
  in ``days`` and the local time is inside one of ``times`` (no ``times`` = all day).
  A window whose end is not after its start crosses midnight: ``["22:00", "06:00"]``
  runs from 22:00 on a listed day to 06:00 the next morning (the part after midnight
  belongs to the day the window opened). A window whose start equals its end
  covers the whole day. Local time is in the config's timezone.
- An item is *playable* when ``valid_from <= now < valid_until`` and its media is in
  the cache (when the caller says which media is present).
- Priority classes are strict: while an ``emergency`` playlist is active nothing
  else plays and it pre-empts the item on screen at once; while a ``priority``
  playlist is active it plays next (the item on screen ends first) and ahead of
  ``normal``; ``normal`` playlists rotate.
- Within a class, active playlists take turns one item each, in a stable order
  (manifest order, then overlays), and each playlist continues after the item it
  last played, so several normal playlists share the screen fairly.
- A CAP advisory (a ``priority`` overlay with a ``rotation_share``, written by the
  sync side for Moderate alerts, see content_sync/cap/to_playlist.py) is not an
  operator's notice: it plays after operator ``priority`` content, and ahead of
  ``normal`` only while it has taken at most ``rotation_share`` of the items played
  since it came (0.5 = at most every other item), so that a 24-hour advisory does
  not push every normal notice off the screen. With nothing else to show it plays
  back to back. The share's account is the cursor's ``advisory_credit``.

The caller keeps the returned ``Cursor`` and passes it back at the next switch; it
measures item durations with a monotonic clock and re-asks at ``next_change``
(wall clock) or whenever the wall clock jumps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from fractions import Fraction

from pydantic import field_validator

from content_sync.protocol import KIND_RULES, Item, Playlist

CLASSES = ("emergency", "priority", "normal")
ADVISORY = "advisory"
TIERS = ("emergency", "priority", ADVISORY, "normal")  # the order decide serves them in


class OverlayPlaylist(Playlist):
    """An overlay playlist as the player reads it (player/content.py): a playlist and,
    for a CAP advisory, the largest share of the rotation it may take. Older players
    read overlays as plain playlists and ignore the field."""

    rotation_share: float | None = None

    @field_validator("rotation_share", mode="before")
    @classmethod
    def _share(cls, v: object) -> float | None:
        """A share this player cannot read plays as plain priority, as before."""
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1:
            return float(v)
        return None


def share_of(pl: Playlist) -> Fraction | None:
    """The rotation share of a CAP advisory, None for any other playlist."""
    share = getattr(pl, "rotation_share", None)
    if share is None or pl.priority != "priority":
        return None
    return max(Fraction(share).limit_denominator(1000), Fraction(1, 1000))


@dataclass(frozen=True)
class Cursor:
    """Rotation state between switches: per class the playlist that played last,
    and per playlist the id of the item that played last."""

    last_playlist: Mapping[str, str] = field(default_factory=dict)
    last_item: Mapping[str, str] = field(default_factory=dict)
    order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # per class, ids
    # share x items played - advisory items played, since an advisory and normal
    # content were both active; the advisory may play while it is >= 0
    advisory_credit: Fraction = Fraction(0)


@dataclass(frozen=True)
class Choice:
    playlist: Playlist
    item: Item
    priority: str
    duration: float | None  # seconds; None = the video clip's own length

    @property
    def key(self) -> tuple[str, str]:
        return (self.playlist.id, self.item.id)


@dataclass(frozen=True)
class Decision:
    choice: Choice | None  # None = nothing to play: the idle screen
    cursor: Cursor
    next_change: datetime | None  # next instant the set of active content may change


def item_duration(item: Item) -> float | None:
    if item.duration is not None:
        return float(item.duration)
    return KIND_RULES[item.type].default_duration


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _in_window(local: datetime, start: str, end: str, days: Collection[int]) -> bool:
    t = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    a, b = _minutes(start), _minutes(end)
    today = local.isoweekday()
    yesterday = (today - 2) % 7 + 1
    if a == b:
        return today in days
    if a < b:
        return a <= t < b and today in days
    return (t >= a and today in days) or (t < b and yesterday in days)


def playlist_active(pl: Playlist, now: datetime, tz: tzinfo) -> bool:
    s = pl.schedule
    if s.start is not None and now < s.start:
        return False
    if s.end is not None and now >= s.end:
        return False
    local = now.astimezone(tz)
    if not s.times:
        return local.isoweekday() in s.days
    return any(_in_window(local, a, b, s.days) for a, b in s.times)


def item_playable(item: Item, now: datetime, available: Collection[str] | None = None) -> bool:
    if item.valid_from is not None and now < item.valid_from:
        return False
    if item.valid_until is not None and now >= item.valid_until:
        return False
    return not (item.media is not None and available is not None and item.media not in available)


def _local_instant(d: date, hhmm: str, tz: tzinfo) -> datetime:
    minutes = _minutes(hhmm)
    return datetime.combine(d, time(0), tzinfo=tz) + timedelta(minutes=minutes)


def next_change(playlists: Sequence[Playlist], now: datetime, tz: tzinfo) -> datetime | None:
    """The earliest instant after ``now`` at which some playlist or item may start
    or stop being active (schedule edges, window edges, midnights, validity)."""
    candidates: list[datetime] = []
    today = now.astimezone(tz).date()
    days = [today + timedelta(days=k) for k in (-1, 0, 1, 2)]
    for pl in playlists:
        s = pl.schedule
        candidates += [t for t in (s.start, s.end) if t is not None]
        for it in pl.items:
            candidates += [t for t in (it.valid_from, it.valid_until) if t is not None]
        for d in days:
            if not s.times or len(s.days) < 7:
                candidates.append(datetime.combine(d, time(0), tzinfo=tz))
            for a, b in s.times:
                candidates.append(_local_instant(d, a, tz))
                candidates.append(_local_instant(d, b, tz))
    later = [t for t in candidates if t > now]
    return min(later) if later else None


def _class_of(pl: Playlist) -> str:
    return pl.priority if pl.priority in CLASSES else "normal"


def _tier_of(pl: Playlist) -> str:
    return ADVISORY if share_of(pl) is not None else _class_of(pl)


def active_classes(
    playlists: Sequence[Playlist], now: datetime, tz: tzinfo,
    available: Collection[str] | None = None,
) -> dict[str, list[Playlist]]:
    """Per class, the active playlists that have at least one playable item, in order."""
    out: dict[str, list[Playlist]] = {c: [] for c in CLASSES}
    for pl in playlists:
        if playlist_active(pl, now, tz) and any(
            item_playable(it, now, available) for it in pl.items
        ):
            out[_class_of(pl)].append(pl)
    return out


def top_class(
    playlists: Sequence[Playlist], now: datetime, tz: tzinfo,
    available: Collection[str] | None = None,
) -> str | None:
    classes = active_classes(playlists, now, tz, available)
    return next((c for c in CLASSES if classes[c]), None)


def _next_in_playlist(
    pl: Playlist, last_item: str | None, now: datetime, available: Collection[str] | None
) -> Item | None:
    ids = [it.id for it in pl.items]
    start = ids.index(last_item) + 1 if last_item in ids else 0
    n = len(pl.items)
    for k in range(n):
        it = pl.items[(start + k) % n]
        if item_playable(it, now, available):
            return it
    return None


def decide(
    playlists: Sequence[Playlist],
    now: datetime,
    cursor: Cursor,
    tz: tzinfo,
    available: Collection[str] | None = None,
) -> Decision:
    """The item to start at ``now`` (or None for the idle screen), the advanced cursor,
    and the next instant at which the answer may change without an item ending."""
    change = next_change(playlists, now, tz)
    tiers: dict[str, list[Playlist]] = {t: [] for t in TIERS}
    for pls in active_classes(playlists, now, tz, available).values():
        for pl in pls:
            tiers[_tier_of(pl)].append(pl)
    cls = next((c for c in TIERS if tiers[c]), None)
    if cls is None:
        return Decision(None, cursor, change)
    credit = cursor.advisory_credit
    if not tiers[ADVISORY]:
        credit = Fraction(0)  # the next advisory to come plays next
    elif cls == ADVISORY and tiers["normal"]:
        share = min(s for s in map(share_of, tiers[ADVISORY]) if s is not None)
        if credit < 0:
            cls = "normal"
        credit += share - 1 if cls == ADVISORY else share
    group = tiers[cls]
    ids = [pl.id for pl in group]
    last = cursor.last_playlist.get(cls)
    if last in ids:
        first = (ids.index(last) + 1) % len(group)
    else:
        # The playlist that played last is gone or inactive: continue after its place
        # in the order of the previous decision, so a vanishing playlist does not give
        # the turn back to the first one.
        old = list(cursor.order.get(cls, ()))
        pos = old.index(last) if last in old else -1
        later = [i for i, pl in enumerate(group) if pl.id in old and old.index(pl.id) > pos]
        first = later[0] if later else 0
    order = {**cursor.order, cls: tuple(pl.id for pl in playlists if _tier_of(pl) == cls)}
    for k in range(len(group)):
        pl = group[(first + k) % len(group)]
        it = _next_in_playlist(pl, cursor.last_item.get(pl.id), now, available)
        if it is not None:
            known = {p.id for p in playlists}
            last_items = {k: v for k, v in cursor.last_item.items() if k in known}
            new_cursor = Cursor(
                {**cursor.last_playlist, cls: pl.id}, {**last_items, pl.id: it.id}, order,
                credit,
            )
            return Decision(Choice(pl, it, _class_of(pl), item_duration(it)), new_cursor,
                            change)
    return Decision(None, cursor, change)  # unreachable: every group member has an item


def must_preempt(
    current: Choice | None,
    playlists: Sequence[Playlist],
    now: datetime,
    tz: tzinfo,
    available: Collection[str] | None = None,
) -> bool:
    """Whether the item on screen must be cut short at ``now``.

    An emergency starting cuts anything that is not an emergency, and the idle screen
    gives way to anything. An emergency item whose playlist ended or was withdrawn
    leaves at once so that normal rotation resumes. Other items play to their end.
    """
    cls = top_class(playlists, now, tz, available)
    if current is None:
        return cls is not None
    if cls == "emergency" and current.priority != "emergency":
        return True
    if current.priority == "emergency":
        same = next((pl for pl in playlists if pl.id == current.playlist.id), None)
        if same is None or _class_of(same) != "emergency" or not playlist_active(same, now, tz):
            return True
        still = next((it for it in same.items if it.id == current.item.id), None)
        return still is None or still != current.item or not item_playable(still, now, available)
    return False
