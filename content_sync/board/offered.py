"""The manifest the source offers, fetched and authenticated before anything of it is kept.

One (conditional) request per run (content_sync/board/source.py). A changed answer is
verified first (content_sync/protocol/dsse.py, bounded before any signature is checked),
then remembered in ``meta``:

- ``sync.envelope``: the envelope, only ever one signed by a trusted key, so that a
  later ``304 Not Modified`` re-reads authenticated bytes, never an unsigned document
  a stranger shaped to cost memory;
- ``sync.refused``: for an envelope refused, only its reason, the trusted keys it was
  refused under and when, so the 304s that follow repeat the refusal without downloading
  it again (a box on a SIM) for at most ``REFUSAL_TRUST_S``; then, or when the trusted
  keys change or the clock went back, it is fetched afresh, unconditionally: one bad
  answer under a good validator (a CDN's or a proxy's) never blocks a board for good;
- ``sync.validators``: the answer's ETag and Last-Modified, sent only while one of the
  two above stands for that answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from content_sync.board.source import Source, SourceError
from content_sync.db import store
from content_sync.protocol import dsse
from content_sync.runtime import age_s

ENVELOPE = "sync.envelope"
REFUSED = "sync.refused"
VALIDATORS = "sync.validators"
REFUSAL_TRUST_S = 3600  # how long a refusal stands for the same answer without a re-fetch


@dataclass(frozen=True)
class Offered:
    """What the source offers now: its verified payload, or why its envelope was refused."""

    verified: dsse.Verified | None
    refusal: str = ""
    server_date: datetime | None = None


def _keys_id(trusted: dsse.TrustedKeys) -> str:
    return hashlib.sha256(",".join(sorted(dsse.keyid(k) for k in trusted)).encode()).hexdigest()


def _refused_before(conn: sqlite3.Connection, keys_id: str) -> str | None:
    """The reason the last answer was refused for, if it was, under these trusted keys."""
    try:
        memo = json.loads(store.get_meta(conn, REFUSED) or "null")
    except ValueError:
        return None
    if not (isinstance(memo, dict) and memo.get("keys") == keys_id
            and isinstance(memo.get("reason"), str)):
        return None
    age = age_s(memo.get("at"))  # None for a memo of an older build: fetch afresh
    if age is None or not 0 <= age <= REFUSAL_TRUST_S:
        return None
    return str(memo["reason"])


def fetch(conn: sqlite3.Connection, source: Source, board: str,
          trusted: dsse.TrustedKeys) -> Offered:
    """Fetch and verify the offered envelope. Raises SourceUnreachable and SourceError
    (content_sync/board/source.py), the latter also for a 304 with nothing to stand for."""
    keys_id = _keys_id(trusted)
    stored = store.get_meta(conn, ENVELOPE)
    refused = None if stored is not None else _refused_before(conn, keys_id)
    validators: dict[str, str] = {}
    if stored is not None or refused is not None:
        try:
            raw = json.loads(store.get_meta(conn, VALIDATORS) or "{}")
        except ValueError:
            raw = {}
        validators = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    fetched = source.fetch_manifest(board, validators)
    if not fetched.changed:
        if refused is not None:
            return Offered(None, refused, fetched.server_date)
        if stored is None:  # a Source that says "not modified" to an unconditional read
            raise SourceError(f"{source.url} said the manifest of board {board} is not "
                              "modified, but this board holds no copy of it")
        envelope = stored.encode("utf-8")
    else:
        envelope = fetched.body
    try:
        verified = dsse.verify(envelope, trusted)
    except dsse.EnvelopeError as e:
        # Also a stored one (the trusted keys changed, or an older release kept it unsigned):
        # only its reason stays.
        with store.transaction(conn):
            conn.execute("DELETE FROM meta WHERE key=?", (ENVELOPE,))
            store.set_meta(conn, REFUSED, json.dumps({"reason": str(e), "keys": keys_id,
                                                      "at": store.utcnow()}))
            if fetched.changed:
                store.set_meta(conn, VALIDATORS, json.dumps(fetched.validators))
        return Offered(None, str(e), fetched.server_date)
    if fetched.changed:
        with store.transaction(conn):
            # verify() took it as UTF-8: the text is the very bytes.
            store.set_meta(conn, ENVELOPE, envelope.decode("utf-8"))
            conn.execute("DELETE FROM meta WHERE key=?", (REFUSED,))
            store.set_meta(conn, VALIDATORS, json.dumps(fetched.validators))
    return Offered(verified, "", fetched.server_date)
