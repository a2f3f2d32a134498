"""Proof of play leaves the box exactly once: batches, acknowledged ids, folding.

The player appends records to ``plays`` (``store.add_play``). Here they are sent in
batches to ``POST boards/{id}/plays``; a record is deleted only in the transaction
that reads the server's acknowledgement of its id, and the same transaction adds it
to ``play_history`` (what ``eboard report`` reads). Ids of a batch are written to
``outbox_inflight`` before it is sent: after a crash they are re-sent first (the
server de-duplicates by id) and they are never folded.

When the outbox would pass ``status.outbox_max_records`` the oldest records are
folded into per-item counts for their local day (``play_counts``, each row with
its own UUID, uploaded the same way) instead of being dropped.
"""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import requests

from content_sync.db import store
from content_sync.net import EboardSession, short_reason
from kiosk_config import Config

log = logging.getLogger(__name__)
BATCH_SIZE = 500
COUNTS_PER_BATCH = 200
MAX_BATCHES_PER_RUN = 20
GZIP_MIN_BYTES = 512  # smaller bodies are not worth compressing
FOLD_TARGET = 0.9  # fold down to 90 % of the bound, so folding is not done every minute
HISTORY_DAYS = 400  # play_history kept for reports: a year and a month
REJECTED_KEEP = 1000  # refused records kept for a human, the newest
RECORD_FIELDS = ("id", "item_id", "playlist_id", "manifest_version", "started_at",
                 "ended_at", "duration_s", "outcome", "detail")


@dataclass
class UploadResult:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    counts_accepted: int = 0
    remaining: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def local_day(started_at: str, tz: tzinfo) -> str:
    """The box's local calendar day (YYYY-MM-DD) on which a play started."""
    try:
        dt = datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return str(started_at)[:10]
    if dt.tzinfo is None:
        return dt.date().isoformat()
    return dt.astimezone(tz).date().isoformat()


def _add_history(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str, int, float]]
                 ) -> None:
    conn.executemany(
        "INSERT INTO play_history(day, playlist_id, item_id, outcome, plays, seconds) "
        "VALUES (?,?,?,?,?,?) ON CONFLICT(day, playlist_id, item_id, outcome) DO UPDATE SET "
        "plays=plays+excluded.plays, seconds=seconds+excluded.seconds", rows)


def _history_row(r: dict[str, Any], tz: tzinfo) -> tuple[str, str, str, str, int, float]:
    return (local_day(str(r["started_at"]), tz), str(r["playlist_id"] or ""),
            str(r["item_id"] or ""), str(r["outcome"] or ""), 1, float(r["duration_s"] or 0))


def fold_if_needed(conn: sqlite3.Connection, max_records: int, tz: tzinfo) -> int:
    """Fold the oldest records into daily counts when the outbox passes ``max_records``.

    Returns how many records were folded. Records of a batch in flight are kept.
    """
    if store.outbox_size(conn) <= max_records:
        return 0
    with store.transaction(conn):
        size = store.outbox_size(conn)
        excess = size - int(max_records * FOLD_TARGET)
        if size <= max_records or excess <= 0:
            return 0
        rows = [dict(r) for r in conn.execute(
            "SELECT * FROM plays WHERE id NOT IN (SELECT id FROM outbox_inflight) "
            "ORDER BY started_at, id LIMIT ?", (excess,))]
        groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            day, playlist, item, outcome, _, _ = _history_row(r, tz)
            groups[(day, playlist, item, outcome)].append(r)
        now = store.utcnow()
        conn.executemany(
            "INSERT INTO play_counts(id, day, playlist_id, item_id, outcome, plays, seconds,"
            " first_started, last_ended, folded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(str(uuid.uuid4()), *key, len(rs), round(sum(float(r["duration_s"] or 0)
              for r in rs), 3), min(str(r["started_at"]) for r in rs),
              max(str(r["ended_at"]) for r in rs), now) for key, rs in groups.items()])
        _add_history(conn, [_history_row(r, tz) for r in rows])
        conn.executemany("DELETE FROM plays WHERE id=?", [(r["id"],) for r in rows])
    log.warning("the proof-of-play outbox passed %d records (server unreachable for long?); "
                "folded the %d oldest into %d per-item daily counts", max_records, len(rows),
                len(groups))
    return len(rows)


def prune_history(conn: sqlite3.Connection, today: date, keep_days: int = HISTORY_DAYS,
                  keep_rejected: int = REJECTED_KEEP) -> int:
    """Forget play history older than ``keep_days`` and all but the newest
    ``keep_rejected`` refused records, so that months unattended do not grow the
    database without bound (each day adds a row per item played). Reads first and
    writes only when there is something to forget. Returns the rows deleted."""
    cutoff = (today - timedelta(days=keep_days)).isoformat()
    old = conn.execute("SELECT EXISTS(SELECT 1 FROM play_history WHERE day < ?)",
                       (cutoff,)).fetchone()[0]
    extra = int(conn.execute("SELECT count(*) FROM plays_rejected").fetchone()[0]) - keep_rejected
    if not old and extra <= 0:
        return 0
    with store.transaction(conn):
        gone = conn.execute("DELETE FROM play_history WHERE day < ?", (cutoff,)).rowcount
        if extra > 0:
            gone += conn.execute(
                "DELETE FROM plays_rejected WHERE id IN (SELECT id FROM plays_rejected "
                "ORDER BY at, id LIMIT ?)", (extra,)).rowcount
    log.info("forgot %d old rows: play history of days before %s (it is kept %d days) and "
             "refused records beyond the newest %d", gone, cutoff, keep_days, keep_rejected)
    return gone


def _next_batch(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inflight = [dict(r) for r in conn.execute(
        "SELECT p.* FROM plays p JOIN outbox_inflight i ON i.id=p.id "
        "ORDER BY p.started_at, p.id LIMIT ?", (BATCH_SIZE,))]
    records = inflight + [dict(r) for r in conn.execute(
        "SELECT * FROM plays WHERE id NOT IN (SELECT id FROM outbox_inflight) "
        "ORDER BY started_at, id LIMIT ?", (BATCH_SIZE - len(inflight),))]
    counts = [dict(r) for r in conn.execute(
        "SELECT id, day, playlist_id, item_id, outcome, plays, seconds, first_started, "
        "last_ended FROM play_counts ORDER BY day, id LIMIT ?", (COUNTS_PER_BATCH,))]
    return [{k: r.get(k) for k in RECORD_FIELDS} for r in records], counts


def _apply_answer(conn: sqlite3.Connection, records: list[dict[str, Any]],
                  counts: list[dict[str, Any]], answer: dict[str, Any], tz: tzinfo
                  ) -> tuple[int, int, int]:
    """Delete what the server acknowledged, in one transaction. Returns the tallies."""
    accepted = {str(i) for i in answer.get("accepted") or []}
    rejected = {str(r.get("id")): str(r.get("reason") or "no reason given")
                for r in answer.get("rejected") or [] if isinstance(r, dict)}
    by_id = {r["id"]: r for r in records}
    done = [by_id[i] for i in by_id if i in accepted]
    refused = [by_id[i] for i in by_id if i in rejected and i not in accepted]
    count_ids = [c["id"] for c in counts if c["id"] in accepted]
    now = store.utcnow()
    with store.transaction(conn):
        gone = [(r["id"],) for r in done + refused]
        _add_history(conn, [_history_row(r, tz) for r in done + refused])
        conn.executemany(
            "INSERT OR REPLACE INTO plays_rejected(id, record, reason, at) VALUES (?,?,?,?)",
            [(r["id"], json.dumps(r, ensure_ascii=False), rejected[r["id"]], now)
             for r in refused])
        conn.executemany("DELETE FROM plays WHERE id=?", gone)
        conn.executemany("DELETE FROM outbox_inflight WHERE id=?", gone)
        conn.executemany("DELETE FROM play_counts WHERE id=?", [(i,) for i in count_ids])
    if refused:
        log.warning("the source refused %d proof-of-play records, e.g. %s: %s; kept in "
                    "plays_rejected", len(refused), refused[0]["id"], rejected[refused[0]["id"]])
    return len(done), len(refused), len(count_ids)


def failure(e: Exception, url: str) -> str:
    """A stable one-line reason (no object addresses), so a repeated failure logs once."""
    if isinstance(e, requests.ConnectionError | requests.Timeout):
        return f"cannot reach {url}: {short_reason(e)}"
    if isinstance(e, requests.RequestException):
        return f"{url}: {short_reason(e)}"
    if isinstance(e, RecursionError):
        return f"{url} answered JSON nested too deep to read"
    return str(e)


_plain_only: set[str] = set()  # URLs whose server refused a gzip body (this process)


def post_json(session: requests.Session, url: str, payload: Any,
              timeout: tuple[float, float], idempotent: bool = False) -> requests.Response:
    """POST compact JSON, gzip-compressed (Content-Encoding) when worth it.

    On a 3G SIM every byte counts: a batch of plays shrinks about eight times. A source
    that refuses compressed bodies (400/415) gets the plain body, now and from then on.
    ``idempotent``: the transport may send it again after a read time-out or a 5xx
    (plays: each record has its id); else only when it could not be sent at all
    (content_sync/net/http.py says which endpoint is which).
    """
    options: dict[str, Any] = {"idempotent": idempotent} if isinstance(
        session, EboardSession) else {}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if len(body) >= GZIP_MIN_BYTES and url not in _plain_only:
        resp = session.post(url, data=gzip.compress(body, 6), timeout=timeout,
                            headers={**headers, "Content-Encoding": "gzip"}, **options)
        if resp.status_code not in (400, 415):
            return resp
        _plain_only.add(url)
        log.info("%s does not take gzip-compressed bodies (HTTP %d); sending them plain",
                 url, resp.status_code)
    return session.post(url, data=body, headers=headers, timeout=timeout, **options)


def plays_url(config: Config) -> str:
    return f"{config.source.url}boards/{config.board.id}/plays"


def _log_transition(conn: sqlite3.Connection, error: str | None) -> None:
    previous = store.get_meta(conn, "outbox.last_error") or ""
    if (error or "") == previous:
        return
    if error:
        log.warning("proof of play not uploaded: %s; records stay in the outbox", error)
    else:
        log.info("proof-of-play upload works again")
    with store.transaction(conn):
        store.set_meta(conn, "outbox.last_error", error or "")


def upload_plays_once(config: Config, conn: sqlite3.Connection, session: requests.Session,
                      max_batches: int = MAX_BATCHES_PER_RUN) -> UploadResult:
    """Fold if over the bound, then send batches until the outbox is empty or a send fails."""
    result = UploadResult()
    fold_if_needed(conn, config.status.outbox_max_records, config.tz)
    prune_history(conn, datetime.now(config.tz).date())
    if not config.source.url.startswith("http"):
        result.error = "the source is a folder (file://): it has no plays endpoint"
        result.remaining = store.outbox_size(conn)
        return result
    timeout = (config.source.connect_timeout, config.source.read_timeout)
    for _ in range(max_batches):
        records, counts = _next_batch(conn)
        if not records and not counts:
            break
        with store.transaction(conn):
            now = store.utcnow()
            conn.executemany("INSERT OR IGNORE INTO outbox_inflight(id, sent_at) VALUES (?,?)",
                             [(r["id"], now) for r in records])
        result.sent += len(records)
        try:
            resp = post_json(session, plays_url(config),  # ids: re-sending is harmless
                             {"records": records, "counts": counts}, timeout, idempotent=True)
            if resp.status_code != 200:
                raise _Refused(f"{plays_url(config)} answered HTTP {resp.status_code}: "
                               f"{resp.text.strip()[:200]}")
            answer = resp.json()
            if not isinstance(answer, dict):
                raise _Refused(f"{plays_url(config)} answered something that is not a JSON "
                               "object")
        except (requests.RequestException, ValueError, RecursionError, _Refused) as e:
            result.error = failure(e, plays_url(config))
            break
        a, r, c = _apply_answer(conn, records, counts, answer, config.tz)
        result.accepted += a
        result.rejected += r
        result.counts_accepted += c
        if a + r + c == 0:
            result.error = f"{plays_url(config)} acknowledged none of {len(records)} records"
            break
    result.remaining = store.outbox_size(conn)
    _log_transition(conn, result.error)
    return result


class _Refused(Exception):
    pass


def counts_waiting(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM play_counts").fetchone()[0])
