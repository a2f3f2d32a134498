"""The interim manifest: an emergency on screen before the rest of its manifest arrives.

A manifest becomes active only when every media it references is present and verified
(``engine.py``). Without more, an emergency published together with a new video for the
normal rotation would wait for that video: minutes on a 3G SIM. So when a verified
pending manifest changes the emergency playlists (adds, updates or withdraws one), the
engine fetches the emergency's own media first and then records an *interim* manifest:

- the **active** manifest's other playlists, ticker and media (all present), plus
- the **new** manifest's emergency playlists and the media they reference (all present).

Every media the interim references is present and verified, like any active manifest.
It is stored beside the active one (``meta.interim``, :func:`set_interim`), not in
its place: ``meta.active_version`` stays the last complete manifest, so the full
activation of the same version is not blocked and a rollback check still compares with
complete manifests only. The pending row keeps the original signed body for that full
activation, which clears the interim in the same transaction. Setting or clearing an
interim bumps ``meta.generation``, so the player reads it at once; the player reads it
through :func:`store.active_manifest` and needs no change. Its ``version`` field is the
new version (proof of play of the emergency names the manifest that carried it) and its
``interim`` field says what it was derived from.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from content_sync.db import store

log = logging.getLogger(__name__)


def _raw(body: bytes | None) -> dict[str, Any]:
    if body is None:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _playlists(raw: dict[str, Any]) -> list[dict[str, Any]]:
    pls = raw.get("playlists")
    return [p for p in pls if isinstance(p, dict)] if isinstance(pls, list) else []


def emergencies(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The emergency playlists of a manifest's JSON, in order."""
    return [p for p in _playlists(raw) if p.get("priority") == "emergency"]


def emergency_media(raw: dict[str, Any]) -> set[str]:
    """Media referenced by the emergency playlists."""
    return {str(it["media"]) for p in emergencies(raw) for it in p.get("items") or []
            if isinstance(it, dict) and it.get("media")}


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def due(conn: sqlite3.Connection, body: bytes) -> bool:
    """Whether the pending manifest ``body`` changes the emergencies on screen."""
    shown = store.active_manifest(conn)
    return not _same(emergencies(_raw(shown.body if shown else None)),
                     emergencies(_raw(body)))


def derive(base_body: bytes | None, body: bytes) -> dict[str, Any]:
    """The interim: the base (active) manifest with the emergencies of ``body``."""
    base, new = _raw(base_body), _raw(body)
    em = emergencies(new)
    ids = {p.get("id") for p in em}
    out: dict[str, Any] = dict(base) if base else {
        "format": new.get("format"), "board": new.get("board"), "media": {},
        "playlists": [], "ticker": []}
    kept = [p for p in _playlists(base) if p.get("priority") != "emergency"
            and p.get("id") not in ids]
    media = dict(base.get("media") or {})
    new_media = new.get("media") or {}
    media.update({sha: new_media[sha] for sha in emergency_media(new) if sha in new_media})
    out.update(version=new.get("version"), issued_at=new.get("issued_at"), media=media,
               playlists=kept + em,
               interim={"base_version": base.get("version", 0),
                        "emergency_playlists": sorted(str(i) for i in ids)})
    return out


def set_interim(conn: sqlite3.Connection, version: int, base: int, keyid: str,
                body: bytes) -> None:
    """Show ``body`` (derived from active ``base`` and pending ``version``) until the next
    activation; ``active_version`` is unchanged (content_sync/board/interim.py)."""
    with store.transaction(conn):
        store.set_meta(conn, "interim", json.dumps(
            {"version": version, "base": base, "keyid": keyid, "body": body.decode("utf-8")}))
        store.bump_generation(conn)


def clear_interim(conn: sqlite3.Connection) -> bool:
    """Back to the active manifest; False when there was no interim."""
    with store.transaction(conn):
        if store.get_meta(conn, "interim") is None:
            return False
        conn.execute("DELETE FROM meta WHERE key='interim'")
        store.bump_generation(conn)
    return True


def show(conn: sqlite3.Connection, version: int, keyid: str, body: bytes) -> None:
    """Record the interim for pending ``version`` (one transaction, a new generation)."""
    base = store.complete_manifest(conn)
    base_body = base.body if base else None
    if _same(emergencies(_raw(base_body)), emergencies(_raw(body))):
        if clear_interim(conn):  # same emergencies as the active manifest again
            log.info("interim manifest cleared: manifest version %d keeps the emergencies "
                     "of the active version", version)
        return
    derived = derive(base_body, body)
    set_interim(conn, version, store.active_version(conn), keyid,
                json.dumps(derived, ensure_ascii=False).encode("utf-8"))
    ids = derived["interim"]["emergency_playlists"]
    log.info("interim manifest: the emergencies of version %d (%s) are on screen ahead of "
             "its other media; the full manifest activates when they are all present",
             version, ", ".join(ids) if ids else "all withdrawn")
