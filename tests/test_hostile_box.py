"""Hostile input and what a stranger could learn, through the real processes.

- No secret (board token, operator token, signing key) appears in the logs of the sync
  daemon and the player at debug level, ``eboard status`` (text and JSON), ``eboard
  config check``, ``eboard keys generate``/``publish`` output, the heartbeat the server
  stored, the screenshot the server stored, or the box's database.
- The box opens no listening port: the sockets of the running sync daemon and player,
  matched by inode between /proc/<pid>/fd and /proc/<pid>/net/{tcp,tcp6,udp,udp6}.
- Every write endpoint of the reference server (found from its URL map, so a new one is
  covered without editing this test) refuses a missing, wrong or other-board token, and
  stores nothing; paths that try to climb out of the data folder get nothing.
"""

from __future__ import annotations

import base64
import http.client
import os
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from PIL import Image

from content_sync.server import Tokens, create_app
from tests.kit.reliability import (
    BOARD,
    box_config,
    check_box,
    eboard,
    listening,
    start,
)
from tests.kit.status import BOARD_TOKEN, OPERATOR_TOKEN, reference_server, serve_app, wait_until


def _secrets(key_file: Path) -> dict[str, str]:
    pem = key_file.read_text()
    key = load_pem_private_key(pem.encode(), None)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    body = "".join(ln for ln in pem.splitlines() if not ln.startswith("-----"))
    return {"board token": BOARD_TOKEN, "operator token": OPERATOR_TOKEN,
            "private key PEM": body[8:40], "private key hex": raw.hex(),
            "private key b64": base64.b64encode(raw).decode()[:24]}


def _leaks(where: str, blob: bytes | str, secrets: dict[str, str]) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    return [f"{name} in {where}" for name, s in secrets.items() if s.encode() in data]


def test_no_secret_leaks_and_no_listening_port(tmp_path: Path) -> None:
    r = eboard("keys", "generate", "--out", str(tmp_path / "keys"))
    assert r.returncode == 0, r.stderr
    key_file = tmp_path / "keys" / "eboard-signing.key"
    secrets = _secrets(key_file)
    outputs: dict[str, bytes | str] = {"keys generate": r.stdout + r.stderr}
    Image.new("RGB", (320, 180), (200, 30, 30)).save(tmp_path / "do.png")
    (tmp_path / "playlist.toml").write_text(
        '[[playlists]]\nid = "thong-bao"\n[[playlists.items]]\nid = "anh"\nfile = "do.png"\n'
        'duration = 1\n[[playlists.items]]\nid = "tb"\ntype = "text"\ntitle = "THÔNG BÁO"\n'
        'body = "Họp dân"\nduration = 1\n', encoding="utf-8")
    op_token = tmp_path / "operator.token"
    op_token.write_text(OPERATOR_TOKEN + "\n")
    op_token.chmod(0o600)
    with reference_server(tmp_path / "data") as srv:
        r = eboard("-v", "publish", "--to", srv.url, "--board", BOARD, "--key", str(key_file),
                   "--token-file", str(op_token), str(tmp_path / "playlist.toml"))
        assert r.returncode == 0, r.stderr
        outputs["publish"] = r.stdout + r.stderr
        cfg = box_config(tmp_path / "box", srv.url, [tmp_path / "keys" / "eboard-signing.pub"],
                         status={"heartbeat_interval": 5, "screenshot_interval": 2})
        logs = tmp_path / "logs"
        sync = start("sync", ["-v", "sync", "--config", str(cfg)], logs)
        player = start("player", ["-v", "play", "--config", str(cfg)], logs)
        try:
            def delivered() -> bool:
                n = srv.db.execute("SELECT count(*) FROM heartbeats")[0][0]
                shots = srv.db.execute("SELECT count(*) FROM screenshots")[0][0]
                return n >= 1 and shots >= 1

            assert wait_until(delivered, timeout=60), sync.text()[-3000:]
            # The box listens on nothing; the detector does see the server in this process.
            assert listening(sync.pid) == [] and listening(player.pid) == []
            assert any(f":{srv.port:04X}" in line for line in listening(os.getpid()))
        finally:
            player.stop()
            sync.stop()
        outputs["sync log (debug)"] = sync.text()
        outputs["player log (debug)"] = player.text()
        for args in (["status", "--json"], ["status"], ["config", "check"]):
            r = eboard(*args, "--config", str(cfg))
            outputs[" ".join(args)] = r.stdout + r.stderr
        outputs["heartbeats stored by the server"] = "\n".join(
            str(row[0]) for row in srv.db.execute("SELECT * FROM heartbeats"))
        for p in srv.data.rglob("*"):
            if p.is_file() and "server.db" not in p.name and "media" not in p.parts:
                outputs[f"server file {p.name}"] = p.read_bytes()
        db = tmp_path / "box" / "cache" / "eboard.db"
        outputs["box database"] = b"".join(
            p.read_bytes() for p in db.parent.glob("eboard.db*") if p.is_file())
    assert check_box(db, db.parent) > 0
    assert "board-secret-token" not in outputs["config check"]  # masked, yet the file is named
    leaks = [x for where, blob in outputs.items() for x in _leaks(where, blob, secrets)]
    assert leaks == []
    # The scan would have seen them: they are in the files that must hold them.
    assert _leaks("token file", (tmp_path / "box" / "board.token").read_text(), secrets)
    assert _leaks("key file", key_file.read_text(), secrets)


WRITE_METHODS = {"POST", "PUT", "DELETE", "PATCH"}


def test_every_write_endpoint_refuses_a_missing_or_wrong_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = create_app(data, Tokens(operator=OPERATOR_TOKEN,
                                  boards={BOARD: BOARD_TOKEN, "other.board-02": "other-token"}))
    rules = [(route.path, m) for route in app.routes
             for m in sorted((getattr(route, "methods", None) or set()) & WRITE_METHODS)]
    assert len(rules) >= 6, rules  # status, plays, screenshot, commands, media, manifest
    with serve_app(app) as served:
        db = app.state.source.db
        before = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file()
                        and ".server" not in p.parts)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: db.execute(f"SELECT count(*) FROM {t}")[0][0] for t in tables}
        sha = "a" * 64
        client = requests.Session()
        for rule, method in rules:
            url = served.url.rstrip("/") + rule.replace("{board}", BOARD).replace("{name}", sha)
            assert "{" not in url, f"a new path parameter in {rule}: teach this test about it"
            for token in (None, "", "wrong", "other-token", OPERATOR_TOKEN[:-1],
                          BOARD_TOKEN + "x", "Basic " + BOARD_TOKEN):
                headers = {"Content-Type": "application/json"}
                if token is not None:
                    headers["Authorization"] = f"Bearer {token}"
                r = client.request(method, url, headers=headers, data=b'{"a": 1}', timeout=10)
                assert r.status_code in (401, 403), (method, url, token, r.status_code)
            # Each side's token opens only its own doors.
            wrong_side = OPERATOR_TOKEN if "/status" in url or "/plays" in url or \
                url.endswith("/screenshot") else BOARD_TOKEN
            r = client.request(method, url, data=b'{"a": 1}', timeout=10,
                               headers={"Authorization": f"Bearer {wrong_side}",
                                        "Content-Type": "application/json"})
            assert r.status_code in (401, 403), (method, url, "other side", r.status_code)
        after = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file()
                       and ".server" not in p.parts)
        assert after == before
        assert {t: db.execute(f"SELECT count(*) FROM {t}")[0][0] for t in tables} == counts


@pytest.mark.parametrize("path", [
    "/media/..%2F..%2Fsecret.txt", "/media/../../secret.txt", "/media/%2e%2e/secret.txt",
    "/boards/..%2F..%2Fsecret.txt/manifest.json", "/boards/../../secret.txt",
    "/boards/%2e%2e/manifest.json", "/boards/test.status-01/../../secret.txt",
    "//secret.txt", "/media/" + "a" * 64 + "/../../../secret.txt",
])
def test_paths_climbing_out_of_the_data_folder_get_nothing(tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.txt").write_text("TOP-SECRET-FILE\n")
    (tmp_path / "data").mkdir()
    with reference_server(tmp_path / "data") as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for method in ("GET", "PUT"):
            conn.request(method, path, body=b"x" if method == "PUT" else None,
                         headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
            r = conn.getresponse()
            body = r.read()
            assert b"TOP-SECRET" not in body and r.status >= 300, (method, r.status)
        conn.close()
        time.sleep(0.05)
    assert (tmp_path / "secret.txt").read_text() == "TOP-SECRET-FILE\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "secret.txt"]
