"""The source server's core on both engines: SQLite (the embedded default) and a real
PostgreSQL (a throwaway cluster, tests/kit/postgres.py). Each test runs the real app
under uvicorn on 127.0.0.1 and speaks eboard/1 to it over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from content_sync.server import Store, Tokens, create_app
from tests.kit.status import ServedApp, make_play, serve_app

OP = "operator-token"
BOARDS = {"xa-a.board-01": "token-a", "xa-b.board-01": "token-b"}
A, B = sorted(BOARDS)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "sqlite":
        return None  # the default: data/.server/server.db
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
def server(tmp_path: Path, store_url: str | None) -> Iterator[ServedApp]:
    app = create_app(tmp_path / "data", Tokens(operator=OP, boards=BOARDS),
                     long_poll_max=10, store=store_url)
    with serve_app(app) as served:
        yield served


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def envelope(version: int) -> bytes:
    payload = base64.b64encode(json.dumps({"version": version}).encode()).decode()
    return json.dumps({"payloadType": "application/vnd.eboard.manifest+json",
                       "payload": payload, "signatures": [{"keyid": "k", "sig": "x"}]}).encode()


def long_poll(url: str, board: str, after: int, wait: float) -> dict[str, Any]:
    r = requests.get(f"{url}boards/{board}/events", params={"after": after, "wait": wait},
                     headers=auth(BOARDS[board]), timeout=wait + 10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_heartbeat_is_stored_and_answered_with_open_commands(server: ServedApp) -> None:
    url = server.url
    hb = {"board": A, "name": "Bảng tin xã A", "heartbeat_interval_s": 60}
    r = requests.post(f"{url}boards/{A}/status", json=hb, headers=auth(BOARDS[A]), timeout=10)
    assert r.status_code == 200 and r.json() == {"ok": True, "commands": []}
    r = requests.post(f"{url}boards/{A}/commands", json={"command": "screenshot"},
                      headers=auth(OP), timeout=10)
    assert r.status_code == 201, r.text
    cmd = r.json()
    r = requests.post(f"{url}boards/{A}/status", json=hb, headers=auth(BOARDS[A]), timeout=10)
    assert [c["id"] for c in r.json()["commands"]] == [cmd["id"]]
    done = {**hb, "command_results": [{"id": cmd["id"], "ok": True, "detail": "sent"}]}
    r = requests.post(f"{url}boards/{A}/status", json=done, headers=auth(BOARDS[A]), timeout=10)
    assert r.json()["commands"] == []
    (listed,) = requests.get(f"{url}boards/{A}/commands", headers=auth(OP), timeout=10).json()
    assert listed["state"] == "answered" and listed["result"]["detail"] == "sent"
    boards = requests.get(f"{url}boards.json", timeout=10).json()
    assert [(b["board"], b["status"]["name"]) for b in boards] == [(A, "Bảng tin xã A")]


def test_plays_are_stored_once_however_often_they_come(server: ServedApp) -> None:
    from datetime import UTC, datetime

    recs = [make_play(f"item-{i}", "pl", datetime.now(UTC), 5.0) for i in range(50)]
    body = {"records": recs, "counts": []}
    for _ in range(3):  # the board did not hear the answer: it sends the batch again
        r = requests.post(f"{server.url}boards/{A}/plays", json=body,
                          headers=auth(BOARDS[A]), timeout=10)
        assert r.status_code == 200 and len(r.json()["accepted"]) == 50
    bad = {"records": [{"id": "not-a-uuid"}, {**recs[0], "id": str(uuid.uuid4()),
                                               "duration_s": "long"}]}
    r = requests.post(f"{server.url}boards/{A}/plays", json=bad, headers=auth(BOARDS[A]),
                      timeout=10)
    assert [x["reason"] for x in r.json()["rejected"]] == [
        "id must be a UUID", "duration_s must be a number or null"]
    summary = requests.get(f"{server.url}boards/{A}/plays/summary", headers=auth(OP),
                           timeout=10).json()
    assert summary["records"] == 50 and summary["seconds"] == 250.0


def test_a_publish_wakes_its_own_board_and_no_other(server: ServedApp) -> None:
    hub = server.app.state.source.hub
    start = {b: long_poll(server.url, b, 0, 0)["next"] for b in BOARDS}
    answers: dict[str, dict[str, Any]] = {}
    polls = [threading.Thread(target=lambda b=b: answers.__setitem__(
        b, long_poll(server.url, b, start[b], 8))) for b in BOARDS]
    for t in polls:
        t.start()
    deadline = time.monotonic() + 10
    while hub.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.waiting == 2
    r = requests.put(f"{server.url}boards/{A}/manifest.json", data=envelope(7),
                     headers=auth(OP), timeout=10)
    assert r.status_code == 201
    polls[sorted(BOARDS).index(A)].join(10)
    assert [e["version"] for e in answers[A]["events"] if e["type"] == "manifest"] == [7]
    assert hub.waiting == 1  # B's long-poll is still parked: nothing woke it
    polls[sorted(BOARDS).index(B)].join(15)
    assert answers[B]["events"] == [] and answers[B]["next"] == start[B]
    # the same version again (a second PUT, the folder watcher) is not a second event
    requests.put(f"{server.url}boards/{A}/manifest.json", data=envelope(7), headers=auth(OP),
                 timeout=10)
    assert long_poll(server.url, A, answers[A]["next"], 0)["events"] == []


def test_a_manifest_written_into_the_folder_is_offered(server: ServedApp, tmp_path: Path
                                                       ) -> None:
    first = long_poll(server.url, B, 0, 0)["next"]
    got: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: got.append(long_poll(server.url, B, first, 10)))
    waiting.start()
    dest = tmp_path / "data" / "boards" / B / "manifest.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(".manifest.tmp")
    tmp.write_bytes(envelope(12))
    tmp.replace(dest)  # as `eboard publish --to DIR` writes it
    waiting.join(15)
    assert [e.get("version") for e in got[0]["events"]] == [12]
    r = requests.get(f"{server.url}boards/{B}/manifest.json", timeout=10)
    assert r.content == envelope(12)
    again = requests.get(f"{server.url}boards/{B}/manifest.json", timeout=10,
                         headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_media_resume_from_a_byte_range_and_refuse_a_wrong_hash(server: ServedApp) -> None:
    import hashlib

    blob = bytes(range(256)) * 4096
    name = hashlib.sha256(blob).hexdigest()
    r = requests.put(f"{server.url}media/{'0' * 64}", data=blob, headers=auth(OP), timeout=10)
    assert r.status_code == 400 and "SHA-256" in r.text
    assert requests.put(f"{server.url}media/{name}", data=blob, headers=auth(OP),
                        timeout=10).status_code == 201
    assert requests.put(f"{server.url}media/{name}", data=blob, headers=auth(OP),
                        timeout=10).status_code == 204
    part = requests.get(f"{server.url}media/{name}", headers={"Range": "bytes=1000-"},
                        timeout=10)
    assert part.status_code == 206 and part.content == blob[1000:]
    assert requests.get(f"{server.url}media/{name}", timeout=10,
                        headers={"If-None-Match": f'"{name}"'}).status_code == 304


def test_events_survive_a_restart_and_ids_continue(tmp_path: Path, store_url: str | None
                                                   ) -> None:
    tokens = Tokens(operator=OP, boards=BOARDS)
    with serve_app(create_app(tmp_path / "data", tokens, store=store_url)) as first:
        requests.put(f"{first.url}boards/{A}/manifest.json", data=envelope(3),
                     headers=auth(OP), timeout=10)
        before = long_poll(first.url, A, 0, 0)["next"]
    with serve_app(create_app(tmp_path / "data", tokens, store=store_url)) as second:
        assert long_poll(second.url, A, before, 0)["events"] == []  # v3 is not offered twice
        requests.put(f"{second.url}boards/{A}/manifest.json", data=envelope(4),
                     headers=auth(OP), timeout=10)
        (event,) = long_poll(second.url, A, before, 0)["events"]
        assert event["id"] > before and event["version"] == 4


def test_the_store_is_migrated_once_and_says_its_revision(tmp_path: Path,
                                                          store_url: str | None) -> None:
    db = Store(store_url or tmp_path / "server.db")
    try:
        db.migrate()
        db.migrate()  # a second start changes nothing
        assert [r[0] for r in db.execute("SELECT version_num FROM alembic_version")] == ["0002"]
    finally:
        db.close()


def test_the_hub_answers_from_memory_only_what_it_holds_whole(tmp_path: Path) -> None:
    """The kept events answer a woken long-poll; a cursor older than what is kept, or
    events this process did not see, are read from the store — never a gap."""
    import asyncio

    from content_sync.server.hub import KEEP_RECENT, EventHub
    from content_sync.server.store import AsyncStore, ops

    db = Store(tmp_path / "server.db")
    db.migrate()
    db.write(ops.add_event, A, "command", {"n": 0})  # before this hub started

    async def run() -> None:
        store = AsyncStore(db)
        store.start()
        hub = EventHub(store)
        await hub.start()
        ids = [await hub.publish(A, "command", {"n": i}) for i in range(1, 13)]
        newest = await hub.wait(A, ids[-4] or 0, 1)
        assert [e["n"] for e in newest] == [10, 11, 12] and hub.answered_from_memory == 1
        everything = await hub.wait(A, 0, 1)  # older than the KEEP_RECENT kept
        assert [e["n"] for e in everything] == list(range(13)) and KEEP_RECENT < 13
        assert hub.answered_from_memory == 1
        other = db.write(ops.add_event, A, "command", {"n": 13})  # another writer's event
        hub.bump(A, other or 0)  # known by id only, as a bare notification says
        assert [e["n"] for e in await hub.wait(A, ids[-1] or 0, 1)] == [13]
        assert hub.answered_from_memory == 1
        await store.close()

    asyncio.run(run())
    db.close()


def test_old_heartbeats_are_pruned_and_each_board_keeps_its_latest(
        tmp_path: Path, store_url: str | None) -> None:
    from content_sync.server.store import ops

    db = Store(store_url or tmp_path / "server.db")
    try:
        db.migrate()
        for hour in range(10):  # one heartbeat an hour, the newest at 09:00
            db.write(ops.store_heartbeat, A, {"n": hour}, f"2026-12-01T{hour:02d}:00:00.000+00:00")
        gone = db.write(ops.prune_heartbeats, "2026-12-01T06:00:00.000+00:00", 4)
        gone += db.write(ops.prune_heartbeats, "2026-12-01T06:00:00.000+00:00", 4)
        assert gone == 6  # in bounded steps
        left = [r[0] for r in db.execute("SELECT received_at FROM heartbeats ORDER BY id")]
        assert [x[11:13] for x in left] == ["06", "07", "08", "09"]
        (board,) = db.boards()
        assert board["status"] == {"n": 9}
    finally:
        db.close()


def test_metrics_say_what_the_server_did(server: ServedApp) -> None:
    hb = {"board": A}
    for _ in range(3):
        requests.post(f"{server.url}boards/{A}/status", json=hb, headers=auth(BOARDS[A]),
                      timeout=10)
    parked = threading.Thread(target=lambda: long_poll(server.url, B, 10**9, 3))
    parked.start()
    time.sleep(0.5)
    text = requests.get(f"{server.url}metrics", timeout=10).text
    parked.join(10)
    lines = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
             if ln and not ln.startswith("#")}
    assert lines['eboard_source_handled_seconds_count{kind="heartbeat"}'] == 3
    assert lines["eboard_source_longpolls_parked"] == 1
    assert lines["eboard_source_store_writes_total"] >= 3
    assert lines["eboard_source_store_commit_seconds_count"] >= 1
