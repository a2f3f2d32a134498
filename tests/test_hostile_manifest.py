"""Hostile manifests, tried as someone on the path (or a careless publisher) would: the
active version again with another body, a version no store can hold, a version years
ahead, and an unsigned envelope shaped to cost memory before any signature is checked.
Real HTTP servers on 127.0.0.1, real SQLite files, the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from content_sync.board.engine import Engine, SyncResult, SyncState
from content_sync.db import store
from content_sync.protocol import dsse, manifest
from tests.kit.reliability import ROOT
from tests.kit.sync import (
    Publisher,
    Served,
    StaticApp,
    make_keys,
    png,
    serve_wsgi,
    sha256,
    write_config,
)


@dataclass
class Env:
    tmp: Path
    pub: Publisher
    pubkey: Path
    app: StaticApp
    served: Served

    def box(self, name: str = "box") -> tuple[Engine, store.sqlite3.Connection]:
        (self.tmp / name).mkdir()
        config = write_config(self.tmp / name, self.served.url, [self.pubkey])
        conn = store.connect(config.db_path)
        return Engine(config, conn), conn


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    (tmp_path / "src").mkdir()
    app = StaticApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        yield Env(tmp_path, pub, pubkey, app, served)


def _status(conn: store.sqlite3.Connection, r: SyncResult) -> None:
    row = store.get_status(conn, "sync")
    assert row is not None and row["state"] == r.state.value and row["reason"] == r.reason


# --- 1. the active version with another body ------------------------------------------------

def test_the_active_version_with_another_body_is_refused_and_nothing_fetched(env: Env) -> None:
    env.pub.publish(7, {"a": (png(1), "image/png")})
    engine, conn = env.box()
    assert engine.sync_once().ok
    active = store.complete_manifest(conn)
    assert active is not None
    env.app.log.clear()
    env.pub.publish(7, {"b": (png(2), "image/png")})  # signed, same version, other content
    r = engine.sync_once()
    assert r.state == SyncState.REFUSED, (r.state, r.reason)
    assert "rollback" in r.reason and "version 7" in r.reason and "differ" in r.reason
    assert env.app.log.paths("/media/") == []  # its new media are not fetched
    _status(conn, r)
    assert store.complete_manifest(conn) == active
    assert any("differ" in x["reason"] for x in store.recent_refusals(conn))
    assert engine.sync_once().state == SyncState.REFUSED  # and again at the next poll
    # The very envelope that is active again: up to date (and repaired if need be).
    env.pub.publish(7, {"a": (png(1), "image/png")})
    assert engine.sync_once().ok
    conn.close()


def test_a_pending_version_with_another_body_is_refused(env: Env) -> None:
    env.pub.publish(1)
    engine, conn = env.box()
    assert engine.sync_once().ok
    env.pub.publish(2, {"a": (png(1), "image/png")})
    (env.pub.root / "media" / sha256(png(1))).unlink()  # its media is not there yet
    assert engine.sync_once().state == SyncState.INCOMPLETE
    assert store.pending_version(conn) == 2
    env.pub.publish(2, {"b": (png(2), "image/png")})  # version 2 again, other content
    r = engine.sync_once()
    assert r.state == SyncState.REFUSED and "version 2" in r.reason and "differ" in r.reason
    assert store.active_version(conn) == 1
    _status(conn, r)
    env.pub.publish(3, {"b": (png(2), "image/png")})
    assert engine.sync_once().ok and store.active_version(conn) == 3
    body = store.complete_manifest(conn)
    assert body is not None and sha256(png(2)) in json.loads(body.body)["media"]
    conn.close()


# --- 6. versions no store can hold, or years ahead --------------------------------------------

def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("version, words", [
    (2**63, "9007199254740991"),
    (2**64 + 5, "9007199254740991"),
    (2**53, "9007199254740991"),
    (2**53 - 1, "ahead"),
    (None, "ahead"),  # a year and a bit past the box's clock
])
def test_a_version_out_of_range_is_refused_with_its_reason(env: Env, version: int | None,
                                                           words: str) -> None:
    offered = version or _now_ms() + (manifest.VERSION_HORIZON_DAYS + 2) * 86_400_000
    env.pub.publish(offered)
    engine, conn = env.box()
    r = engine.sync_once()
    assert r.state == SyncState.REFUSED, (r.state, r.reason)
    assert words in r.reason, r.reason
    _status(conn, r)
    assert store.active_version(conn) == 0
    env.pub.publish(_now_ms())  # a version of now, as eboard publish makes them
    assert engine.sync_once().ok
    conn.close()


def test_the_horizon_counts_from_the_active_version(env: Env) -> None:
    """A board whose versions ran ahead of the clock (a publisher's clock years fast)
    goes on taking the next ones, each within the horizon of the one before."""
    step = (manifest.VERSION_HORIZON_DAYS - 30) * manifest.DAY_MS
    far = _now_ms() + 4 * step
    engine, conn = env.box()
    env.pub.publish(far)
    assert engine.sync_once().state == SyncState.REFUSED  # four steps ahead of the clock
    env.pub.publish(3)  # small versions (1, 2, 3 …) are below any clock's
    assert engine.sync_once().ok
    for i in range(1, 5):
        env.pub.publish(_now_ms() + i * step)
        r = engine.sync_once()
        assert r.ok, (i, r.reason)
    assert store.active_version(conn) >= far
    conn.close()


# --- 5. memory before authentication -------------------------------------------------------

def test_a_refused_envelope_is_not_kept_nor_fetched_again_until_the_keys_change(
        env: Env) -> None:
    stranger, stranger_pub = make_keys(env.tmp / "stranger")
    env.pub.write(env.pub.manifest(1), key=stranger)
    engine, conn = env.box()
    r = engine.sync_once()
    assert r.state == SyncState.REFUSED and "no valid signature" in r.reason
    assert store.get_meta(conn, "sync.envelope") is None  # only signed envelopes are kept
    env.app.log.clear()
    again = engine.sync_once()  # the same answer: a 304, refused by its remembered reason
    assert again.state == SyncState.REFUSED and again.reason == r.reason
    assert [h.status for h in env.app.log.hits] == [304]
    # The technician adds the publisher's new key: the envelope is fetched and taken.
    config = write_config(env.tmp / "box", env.served.url, [env.pubkey, stranger_pub])
    env.app.log.clear()
    assert Engine(config, conn).sync_once().ok
    assert [h.status for h in env.app.log.hits] == [200]
    assert store.get_meta(conn, "sync.envelope") is not None
    conn.close()


def test_a_remembered_refusal_expires_and_the_answer_is_fetched_afresh(env: Env) -> None:
    """One bad answer under a validator must not be repeated from memory for good: after
    REFUSAL_TRUST_S (or with the clock gone back) the board asks unconditionally."""
    from content_sync.board.offered import REFUSAL_TRUST_S, REFUSED

    stranger, _ = make_keys(env.tmp / "stranger")
    env.pub.write(env.pub.manifest(1), key=stranger)
    engine, conn = env.box()
    assert engine.sync_once().state == SyncState.REFUSED
    env.app.log.clear()
    assert engine.sync_once().state == SyncState.REFUSED
    assert [h.status for h in env.app.log.hits] == [304]  # within the trust: from memory
    for moved in (-(REFUSAL_TRUST_S + 60), 3600):  # the memo grew old; the clock went back
        memo = json.loads(store.get_meta(conn, REFUSED) or "{}")
        when = datetime.now(UTC) + timedelta(seconds=moved)
        with store.transaction(conn):
            store.set_meta(conn, REFUSED, json.dumps({**memo, "at": when.isoformat()}))
        env.app.log.clear()
        assert engine.sync_once().state == SyncState.REFUSED
        assert [h.status for h in env.app.log.hits] == [200], moved  # asked afresh
    conn.close()


PEAK = """
import json, sys
from pathlib import Path
from eboard import malloc_tuning
malloc_tuning.tune()  # as eboard sync does first thing
def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
from content_sync.board.engine import Engine
from content_sync.db import store
from kiosk_config import load_config
config = load_config(Path(sys.argv[1]))
conn = store.connect(config.db_path)
engine = Engine(config, conn)
base = kb("VmRSS:")
results = []
for _ in range(2):  # the second run: what a later poll costs
    r = engine.sync_once()
    results.append([r.state.value, r.reason])
stored = len(store.get_meta(conn, "sync.envelope") or "")
print(json.dumps({"base_kb": base, "peak_kb": kb("VmHWM:"), "results": results,
                  "stored": stored}))
"""


def _hostile_envelopes(key: object) -> dict[str, bytes]:
    """Unsigned (or wrongly signed) envelopes of about 31 MB, each a shape that costs a
    parser the most: millions of tiny containers, or a payload that is all of them."""
    n = 31 * 1024 * 1024
    head = json.dumps({"payloadType": dsse.MANIFEST_TYPE, "payload": "",
                       "signatures": [{"keyid": "k", "sig": "AA=="}]}).encode()[:-1] + b', "x": '
    tiny_objects = head + b"[" + b"{}," * ((n - len(head)) // 3) + b"{}]}"
    tiny_lists = b"[" + b"[]," * (n // 3) + b"[]]"
    inner = b'{"format": "eboard.manifest/1", "x": [' + b"{}," * (n * 3 // 4 // 3 - 20) + b"{}]}"
    signed = json.loads(dsse.sign(inner, key))  # type: ignore[arg-type]
    signed["signatures"][0]["sig"] = "A" * 86 + "=="  # a signature that does not verify
    return {"tiny objects beside the payload": tiny_objects,
            "a list of tiny lists": tiny_lists,
            "a payload of tiny objects, badly signed": json.dumps(signed).encode()}


def test_an_unsigned_envelope_costs_little_memory_whatever_its_shape(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    documents = _hostile_envelopes(key)
    served: list[bytes] = []

    def hostile(req: Request) -> Response | None:
        if req.path.endswith("/manifest.json"):
            return Response(served[0], 200, content_type="application/json")
        return None

    (tmp_path / "src").mkdir()
    peaks: dict[str, float] = {}
    runs: dict[str, dict[str, Any]] = {}
    with serve_wsgi(StaticApp(tmp_path / "src", hook=hostile)) as srv:
        for i, (name, body) in enumerate(documents.items()):
            served[:] = [body]
            (tmp_path / f"b{i}").mkdir()
            write_config(tmp_path / f"b{i}", srv.url, [pubkey])
            out = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / f"b{i}" /
                                                                   "eboard.toml")],
                                 capture_output=True, text=True, cwd=ROOT, timeout=300,
                                 env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
            assert out.returncode == 0, out.stderr[-2000:]
            got = json.loads(out.stdout)
            peaks[name] = (got["peak_kb"] - got["base_kb"]) / 1024
            runs[name] = got
    print("peak RSS above the box's own, MB:", {k: round(v) for k, v in peaks.items()})
    for name, got in runs.items():
        for state, reason in got["results"]:
            assert state == "refused", (name, state, reason)
            assert reason, name
        assert got["stored"] == 0, f"{name}: the unauthenticated envelope was stored"
    # The body itself is 31 MB, held as bytes by the fetch; with what the checks before
    # the signature add, a few times that (94 MB at most when measured), never the GB of
    # a full parse of millions of tiny objects (873 MB before the fix).
    for name, mb in peaks.items():
        body_mb = len(documents[name]) / 2**20
        assert mb < 5 * body_mb, f"{name}: {mb:.0f} MB above the box's own before any " \
            f"signature, for {body_mb:.0f} MB of it"
