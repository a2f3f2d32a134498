"""Transport settings against real servers: https with a CA bundle, a proxy, a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from content_sync.board.engine import Engine, SyncState
from content_sync.db import store
from tests.kit.sync import BOARD, Plan, Publisher, make_keys, misbehaving, png, self_signed
from tests.kit.sync import write_config as cfg


def _plan(pub: Publisher, prefix: str = "") -> Plan:
    return Plan(files={f"{prefix}/{p.relative_to(pub.root)}": p.read_bytes()
                       for p in pub.root.rglob("*") if p.is_file()})


def test_https_with_the_configured_ca_bundle(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    cert, certkey = self_signed(tmp_path / "tls")
    plan = _plan(pub)
    with misbehaving(plan, tls=(cert, certkey)) as url:
        assert url.startswith("https://")
        conn = store.connect(tmp_path / "cache" / "eboard.db")
        r = Engine(cfg(tmp_path, url, [pubkey]), conn).sync_once()
        assert r.state == SyncState.SOURCE_ERROR and "source.ca_bundle" in r.reason
        r = Engine(cfg(tmp_path, url, [pubkey], ca_bundle=str(cert)), conn).sync_once()
        assert r.ok, r.reason
    assert store.active_version(conn) == 1


def test_proxy_from_config_and_bearer_token(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    origin = "http://httt.example.invalid/eboard/v1"
    plan = _plan(pub, prefix=origin)  # a forward proxy sees absolute URLs
    token = tmp_path / "token"
    token.write_text("s3cret-board-token\n")
    token.chmod(0o600)
    with misbehaving(plan) as proxy:
        config = cfg(tmp_path, origin + "/", [pubkey], proxy=proxy, allow_insecure_http=True,
                     token_file=str(token))
        conn = store.connect(config.db_path)
        r = Engine(config, conn).sync_once()
    assert r.ok, r.reason
    first = plan.requests[0]
    assert first.path == f"{origin}/boards/{BOARD}/manifest.json"
    assert first.headers["Authorization"] == "Bearer s3cret-board-token"
    assert first.headers["User-Agent"].startswith("eboard/")


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    token = tmp_path / "token"
    token.write_text("t\n")
    token.chmod(0o644)
    config = cfg(tmp_path, "http://127.0.0.1:9/", [pubkey], token_file=str(token))
    from content_sync.net.http import SourceConfigError, make_session
    try:
        make_session(config)
    except SourceConfigError as e:
        assert "chmod 600" in str(e)
    else:
        raise AssertionError("a 0644 token file was accepted")


def test_proxy_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    origin = "http://httt.example.invalid/eboard/v1"
    plan = _plan(pub, prefix=origin)
    with misbehaving(plan) as proxy:
        for var in ("no_proxy", "NO_PROXY", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("http_proxy", proxy)
        config = cfg(tmp_path, origin + "/", [pubkey], allow_insecure_http=True)
        r = Engine(config, store.connect(config.db_path)).sync_once()
    assert r.ok, r.reason
    assert plan.requests[0].path == f"{origin}/boards/{BOARD}/manifest.json"
