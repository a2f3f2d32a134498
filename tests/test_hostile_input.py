"""Hostile input: a man in the middle serving replayed, re-signed and tampered manifests,
one after another, to a board with content; and decompression bombs that reach the
player's cache by another way than the sync's checks (an older box, a copied disk).

The single cases (a forged signature, a rollback, another board's manifest, a traversal
media name) are in tests/test_sync_engine.py; here they come in a row against the same
box, which must keep its content, say why each time, and still take the next real
version."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot
from werkzeug.wrappers import Request, Response

from content_sync.board.engine import Engine, SyncState
from content_sync.db import store
from content_sync.protocol import dsse
from kiosk_config import load_config
from player import content
from player.window import PlayerWindow
from tests.kit.player import Board, make_config, playlist
from tests.kit.reliability import BOARD, box_config, check_box
from tests.kit.sync import Publisher, StaticApp, make_keys, png, serve_wsgi


def test_man_in_the_middle_serves_one_bad_manifest_after_another(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    evil, _ = make_keys(tmp_path / "evil")
    pub = Publisher(tmp_path / "src", key, board=BOARD)
    envelopes: dict[int, bytes] = {}
    for v in (1, 2, 3):
        pub.publish(v, {f"anh-{v}": (png(v), "image/png")})
        envelopes[v] = (tmp_path / "src" / "boards" / BOARD / "manifest.json").read_bytes()
    served: list[bytes] = []  # what the attacker answers for the manifest, when set

    def mitm(req: Request) -> Response | None:
        if served and req.path.endswith("/manifest.json"):
            return Response(served[0], 200, content_type="application/json")
        return None

    v3 = json.loads(base64.b64decode(json.loads(envelopes[3])["payload"]))
    with serve_wsgi(StaticApp(tmp_path / "src", hook=mitm)) as src:
        cfg = box_config(tmp_path / "box", src.url, [pubkey])
        config = load_config(cfg)
        conn = store.connect(config.db_path)
        assert Engine(config, conn).sync_once().ok
        assert store.active_version(conn) == 3

        def resign(body: dict[str, object], k: object = evil, ptype: str | None = None
                   ) -> bytes:
            raw = json.dumps(body).encode()
            env = json.loads(dsse.sign(raw, k))  # type: ignore[arg-type]
            if ptype is not None:
                env["payloadType"] = ptype
            return json.dumps(env).encode()

        tampered = json.loads(envelopes[3])
        tampered["payload"] = base64.b64encode(json.dumps({**v3, "version": 99}).encode()
                                               ).decode()
        trusted_keyid = json.loads(envelopes[3])["signatures"][0]["keyid"]
        spoofed = json.loads(resign({**v3, "version": 98}))
        spoofed["signatures"][0]["keyid"] = trusted_keyid
        attacks = {
            "replay of version 1": (envelopes[1], "rollback"),
            "replay of version 2": (envelopes[2], "rollback"),
            "re-signed by a stranger": (resign({**v3, "version": 97}), "no valid signature"),
            "stranger claiming the trusted keyid": (json.dumps(spoofed).encode(),
                                                    "no valid signature"),
            "payload changed under a good signature": (json.dumps(tampered).encode(),
                                                       "no valid signature"),
            "good signature, other payloadType": (
                resign({**v3, "version": 96}, key, "application/json"), "payloadType"),
            "good signature, traversal media name": (
                resign({**v3, "version": 95, "media": {"../../eboard.toml": {
                    "size": 10, "type": "image/png"}}}, key), "media"),
            "good signature, another board": (
                resign({**v3, "version": 94, "board": "other.board-02"}, key), "board"),
            "a signature list of garbage": (json.dumps({
                "payloadType": dsse.MANIFEST_TYPE, "payload": tampered["payload"],
                "signatures": [{"keyid": trusted_keyid, "sig": "!!"}, 7, None]}).encode(),
                "no valid signature"),
        }
        for name, (body, why) in attacks.items():
            served[:] = [body]
            r = Engine(config, conn).sync_once()
            assert r.state == SyncState.REFUSED, (name, r.state, r.reason)
            assert why in r.reason, (name, r.reason)
            assert store.active_version(conn) == 3, name
            check_box(config.db_path, config.cache_dir, 3)
        view = content.load(conn, config.cache_dir)
        assert view.version == 3 and view.available
        assert sorted(p.name for p in (tmp_path / "box").iterdir()) == \
            ["board.token", "cache", "eboard.toml"]
        # The attacker is gone; the real next version still gets in.
        served.clear()
        pub.publish(4, {"anh-4": (png(4), "image/png")})
        r = Engine(config, conn).sync_once()
        assert r.ok, r.reason
        assert store.active_version(conn) == 4
        refusals = conn.execute("SELECT count(*) FROM refusals").fetchone()[0]
        conn.close()
    # Recorded for the heartbeat, each distinct refusal once (the same reason is not
    # written again on every poll).
    assert 5 <= refusals <= len(attacks)


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose pixels would take width × height × 3 bytes once decoded (all black,
    so a few hundred KB on disk)."""
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_decompression_bomb_in_the_cache_is_skipped_by_the_player(
        qtbot: QtBot, tmp_path: Path) -> None:
    bomb = _bomb_png(20000, 10000)  # 200 Mpx: 600 MB as RGB
    assert len(bomb) < 1_000_000
    board = Board(make_config(tmp_path))
    sha = board.add_media(bomb, "image/png")
    board.publish([playlist("p", [
        {"id": "bomb", "type": "image", "media": sha, "duration": 1},
        {"id": "tb", "type": "text", "title": "THÔNG BÁO", "body": "Họp dân", "duration": 30},
    ])])
    rss0 = _rss_kb()
    w = PlayerWindow(board.config)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.current is not None and w.current.item.id == "tb", timeout=10000)
    grown_mb = (_rss_kb() - rss0) / 1024
    w.close()
    skipped = [p for p in board.plays() if p["item_id"] == "bomb"]
    board.close()
    assert skipped and skipped[0]["outcome"] == "skipped"
    assert "decompression bomb" in skipped[0]["detail"].lower() or \
        "exceeds limit" in skipped[0]["detail"], skipped[0]["detail"]
    assert grown_mb < 300, f"the player took {grown_mb:.0f} MB decoding a bomb"
    print(f"bomb skipped; the player grew by {grown_mb:.1f} MB")


def _rss_kb() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
