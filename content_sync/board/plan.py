"""What one sync run does with a verified manifest, decided without I/O.

The engine (engine.py) reads what it needs — the manifest, the media the cache holds,
the media refused before, the decoder guard's held-back files, the cache's use — and
hands plain values to the functions here; they answer with a typed plan, and the engine,
fetch.py and cache.py carry it out. Three questions, each a pure function, because the
I/O between them changes the answer of the next:

- :func:`admit` — may this manifest be completed at all? Not when one of its media was
  refused before (the same bytes: the same hash) or is above ``source.max_media_mb``.
  Asked before the cache is touched, so a refused manifest changes nothing on disk.
- :func:`plan` — for an admitted manifest, once the cache is reconciled (files without
  rows adopted, rows without files dropped): each media's action, the order of the
  fetches (an emergency's own media first when the manifest changes the emergencies on
  screen, so that the interim manifest, interim.py, can go on screen early) and when
  the interim goes on screen.
- :func:`room` — which least-recently-used media to drop so that the fetches fit in the
  cache quota, never one that a manifest on screen or waiting references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from content_sync.protocol import Manifest

MB = 1024 * 1024


class Action(StrEnum):
    """What the run does with one media of the manifest."""

    KEEP = "keep"    # in the cache, recorded: nothing to do
    FETCH = "fetch"  # missing: download, verify, check, record
    HELD = "held"    # missing, but the decoder guard holds it back: not fetched until it ends


class Interim(StrEnum):
    """When the manifest's emergencies go on screen ahead of its other media."""

    NONE = "none"                # the emergencies on screen do not change, or nothing waits
    NOW = "now"                  # they change and their media are all present already
    AFTER_FIRST = "after_first"  # once the first stage (their own media) is all fetched


@dataclass(frozen=True)
class Limits:
    """The config's limits, in the units the technician wrote (messages name them)."""

    max_media_mb: int  # source.max_media_mb
    quota_mb: int      # cache.quota_mb

    @property
    def max_media_bytes(self) -> int:
        return self.max_media_mb * MB

    @property
    def quota_bytes(self) -> int:
        return self.quota_mb * MB


@dataclass(frozen=True)
class Refusal:
    """The manifest cannot be completed: ``sha`` is why, ``reason`` says so."""

    sha: str
    reason: str


@dataclass(frozen=True)
class Board:
    """What the board has, as plain values (read by the engine just before :func:`plan`)."""

    present: frozenset[str]                              # recorded, with their file
    held: Mapping[str, str] = field(default_factory=dict)  # decoder guard: sha -> why
    emergencies_changed: bool = False  # the manifest changes the emergencies on screen


@dataclass(frozen=True)
class SyncPlan:
    """What to do for one admitted manifest."""

    actions: Mapping[str, Action]          # every media of the manifest
    stages: tuple[tuple[str, ...], ...]    # the missing media (FETCH and HELD), in order
    held: Mapping[str, str]                # HELD media -> the refusal's reason
    interim: Interim
    needed_bytes: int                      # the room the missing media need

    @property
    def missing(self) -> tuple[str, ...]:
        """Every media that is not in the cache, in fetch order (held ones included)."""
        return tuple(s for stage in self.stages for s in stage)

    def of(self, action: Action) -> frozenset[str]:
        return frozenset(s for s, a in self.actions.items() if a is action)


@dataclass(frozen=True)
class CacheUse:
    """The cache as :func:`room` sees it."""

    lru: tuple[tuple[str, int], ...]  # (sha, size) of every recorded media, LRU first
    used_bytes: int                   # recorded media plus partial downloads
    protected: frozenset[str]         # referenced by a manifest on screen or waiting


@dataclass(frozen=True)
class Room:
    evict: tuple[tuple[str, int], ...]  # (sha, size) to drop, in this order
    fits: bool                          # whether the fetches fit once they are dropped


def admit(m: Manifest, refused: Mapping[str, str], limits: Limits) -> Refusal | None:
    """The first media of ``m`` (in manifest order) that refuses the whole manifest."""
    for sha, info in m.media.items():
        if sha in refused:
            return Refusal(sha, f"media {sha[:12]}… was refused: {refused[sha]}")
        if info.size > limits.max_media_bytes:
            return Refusal(sha, f"media {sha[:12]}… is {info.size / MB:.1f} MB, above "
                           f"source.max_media_mb = {limits.max_media_mb}")
    return None


def emergency_media(m: Manifest) -> frozenset[str]:
    """The media that the emergency playlists of ``m`` show."""
    return frozenset(it.media for p in m.playlists if p.priority == "emergency"
                     for it in p.items if it.media)


def plan(m: Manifest, board: Board) -> SyncPlan:
    """Each media's action and the order of the fetches for an admitted ``m``.

    A held-back file is refused only when it would be fetched: one already in the cache
    was checked when it arrived, and is kept. When ``m`` changes the emergencies on
    screen and must wait for media, the emergencies' own missing media come first; with
    none missing, the interim goes on screen at once.
    """
    actions = {sha: (Action.KEEP if sha in board.present else
                     Action.HELD if sha in board.held else Action.FETCH) for sha in m.media}
    missing = sorted(s for s, a in actions.items() if a is not Action.KEEP)
    held = {s: f"({m.media[s].type}) {board.held[s]}" for s in missing if s in board.held}
    stages: tuple[tuple[str, ...], ...] = (tuple(missing),) if missing else ()
    interim = Interim.NONE
    if missing and board.emergencies_changed:
        first = emergency_media(m) & set(missing)
        interim = Interim.AFTER_FIRST if first else Interim.NOW
        if first:
            rest = tuple(s for s in missing if s not in first)
            stages = (tuple(sorted(first)),) + ((rest,) if rest else ())
    fetched = (s for s in missing if actions[s] is Action.FETCH)  # a held file takes no room
    return SyncPlan(actions, stages, held, interim, sum(m.media[s].size for s in fetched))


def room(use: CacheUse, needed: int, quota: int) -> Room:
    """Drop unprotected media, least recently used first, until ``needed`` more bytes fit
    in ``quota``; stop as soon as they fit."""
    used = use.used_bytes
    evict: list[tuple[str, int]] = []
    for sha, size in use.lru:
        if used + needed <= quota:
            break
        if sha in use.protected:
            continue
        evict.append((sha, size))
        used -= size
    return Room(tuple(evict), used + needed <= quota)

