"""content_sync/board/plan.py on its own: plain values in, a typed plan out; no files,
no database, no network."""

from __future__ import annotations

from typing import Any

from content_sync.board.plan import (
    MB,
    Action,
    Board,
    CacheUse,
    Interim,
    Limits,
    Refusal,
    admit,
    emergency_media,
    plan,
    room,
)
from content_sync.protocol.manifest import Manifest

A, B, C, E, F = ("a" * 64, "b" * 64, "c" * 64, "e" * 64, "f" * 64)
LIMITS = Limits(max_media_mb=10, quota_mb=100)


def manifest(media: dict[str, int], emergency: tuple[str, ...] = ()) -> Manifest:
    """Version 2 with a normal playlist showing every media not in ``emergency`` and an
    emergency playlist showing those in it (sizes in bytes)."""
    def items(shas: list[str]) -> list[dict[str, Any]]:
        return [{"id": f"it-{s[0]}", "type": "image", "media": s, "duration": 5} for s in shas]

    playlists: list[dict[str, Any]] = [
        {"id": "pl-1", "items": items([s for s in media if s not in emergency])
         + [{"id": "tb-1", "type": "text", "body": "Lịch tiêm chủng"}]}]
    if emergency:
        playlists.append({"id": "bao-lu", "priority": "emergency", "items": items(list(emergency))})
    return Manifest.model_validate({
        "format": "eboard.manifest/1", "board": "test.board-01", "version": 2,
        "issued_at": "2026-11-24T08:00:00+07:00",
        "media": {s: {"size": n, "type": "image/png"} for s, n in media.items()},
        "playlists": playlists})


# --- admit: refused before, size limits ------------------------------------------------------

def test_a_manifest_with_nothing_refused_and_nothing_too_large_is_admitted() -> None:
    assert admit(manifest({A: 10, B: 20}), {C: "image is garbage"}, LIMITS) is None


def test_a_media_refused_before_with_the_same_hash_is_refused_again() -> None:
    r = admit(manifest({A: 10, B: 20}), {B: "(image/png) cannot be decoded"}, LIMITS)
    assert r == Refusal(B, f"media {B[:12]}… was refused: (image/png) cannot be decoded")


def test_a_media_above_max_media_mb_refuses_the_manifest_and_names_the_key() -> None:
    assert admit(manifest({A: 10 * MB}), {}, LIMITS) is None  # at the limit: fine
    r = admit(manifest({A: 10, B: 10 * MB + 1}), {}, LIMITS)
    assert r is not None and r.sha == B
    assert r.reason == f"media {B[:12]}… is 10.0 MB, above source.max_media_mb = 10"


def test_the_first_offending_media_in_manifest_order_is_the_reason() -> None:
    m = manifest({C: 11 * MB, A: 10})
    r = admit(m, {A: "refused"}, LIMITS)
    assert r is not None and r.sha == C


# --- plan: keep, fetch, held, in which order ------------------------------------------------

def test_every_media_present_nothing_to_fetch() -> None:
    p = plan(manifest({A: 10, B: 20}), Board(frozenset({A, B}), emergencies_changed=True))
    assert p.actions == {A: Action.KEEP, B: Action.KEEP}
    assert p.stages == () and p.missing == () and p.needed_bytes == 0
    assert p.interim is Interim.NONE  # nothing waits: the full manifest activates now


def test_the_missing_media_are_fetched_in_one_stage_in_a_stable_order() -> None:
    p = plan(manifest({C: 30, A: 10, B: 20}), Board(frozenset({B})))
    assert p.actions == {A: Action.FETCH, B: Action.KEEP, C: Action.FETCH}
    assert p.stages == ((A, C),)
    assert p.needed_bytes == 40
    assert p.of(Action.FETCH) == {A, C}


def test_a_new_emergency_fetches_its_own_media_first() -> None:
    m = manifest({A: 10, B: 20, F: 5, E: 1}, emergency=(F, E))
    p = plan(m, Board(frozenset({A}), emergencies_changed=True))
    assert p.stages == ((E, F), (B,))
    assert p.interim is Interim.AFTER_FIRST
    assert p.needed_bytes == 26


def test_an_emergency_whose_media_are_all_present_goes_on_screen_at_once() -> None:
    p = plan(manifest({A: 10, E: 1}, emergency=(E,)),
             Board(frozenset({E}), emergencies_changed=True))
    assert p.interim is Interim.NOW and p.stages == ((A,),)


def test_an_emergency_with_only_its_own_media_missing_is_one_stage() -> None:
    p = plan(manifest({A: 10, E: 1}, emergency=(E,)),
             Board(frozenset({A}), emergencies_changed=True))
    assert p.interim is Interim.AFTER_FIRST and p.stages == ((E,),)


def test_unchanged_emergencies_need_no_interim_and_no_split() -> None:
    p = plan(manifest({A: 10, E: 1}, emergency=(E,)), Board(frozenset()))
    assert p.interim is Interim.NONE and p.stages == ((A, E),)


def test_the_emergency_media_are_those_of_the_emergency_playlists() -> None:
    assert emergency_media(manifest({A: 1, E: 1, F: 1}, emergency=(E, F))) == {E, F}
    assert emergency_media(manifest({A: 1})) == frozenset()


def test_a_held_back_file_is_refused_without_a_fetch_with_the_guards_reason() -> None:
    why = "held back: the sync died 2 times while decoding this file"
    p = plan(manifest({A: 10, B: 20}), Board(frozenset(), held={B: why}))
    assert p.actions == {A: Action.FETCH, B: Action.HELD}
    assert p.held == {B: f"(image/png) {why}"}
    assert p.stages == ((A, B),)  # still in its stage: the fetch reports it, refused


def test_a_held_back_file_takes_no_room_in_the_cache() -> None:
    """Only what this run downloads needs room: counting a held file made the cache evict
    older media for bytes that never came."""
    p = plan(manifest({A: 10, B: 20}), Board(frozenset(), held={B: "held back"}))
    assert p.needed_bytes == 10


def test_a_held_back_file_already_in_the_cache_is_kept() -> None:
    p = plan(manifest({A: 10}), Board(frozenset({A}), held={A: "held back"}))
    assert p.actions == {A: Action.KEEP} and p.held == {} and p.stages == ()


# --- room: the cache quota -------------------------------------------------------------------

def test_under_quota_nothing_is_evicted() -> None:
    r = room(CacheUse(((A, 40),), used_bytes=40, protected=frozenset()), needed=60, quota=100)
    assert r.evict == () and r.fits


def test_over_quota_the_least_recently_used_unreferenced_media_go_first() -> None:
    use = CacheUse(((A, 30), (B, 30), (C, 30)), used_bytes=90, protected=frozenset())
    r = room(use, needed=40, quota=100)
    assert r.evict == ((A, 30),) and r.fits  # 60 + 40 fits: B and C stay
    r = room(use, needed=70, quota=100)
    assert r.evict == ((A, 30), (B, 30)) and r.fits


def test_media_a_manifest_references_are_never_evicted() -> None:
    use = CacheUse(((A, 30), (B, 30), (C, 30)), used_bytes=90, protected=frozenset({A, C}))
    r = room(use, needed=40, quota=100)
    assert r.evict == ((B, 30),) and r.fits
    r = room(use, needed=50, quota=100)  # 60 protected + 50 > 100
    assert r.evict == ((B, 30),) and not r.fits

