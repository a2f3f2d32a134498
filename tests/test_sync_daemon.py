"""The sync daemon and the `eboard sync` command, against real servers on 127.0.0.1.

The reference source server (content_sync.server) provides the events long-poll and
the status endpoint; a plain static server stands for nginx/CDN/folder sources.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from content_sync.board.engine import SyncResult, SyncState
from content_sync.daemon import Daemon, next_delay
from content_sync.db import store
from content_sync.server import Store, Tokens, create_app
from kiosk_config import ConfigError, load_config
from tests.kit.status import Middleware, serve_app
from tests.kit.sync import (
    BOARD,
    Publisher,
    StaticApp,
    free_port,
    make_keys,
    png,
    serve_wsgi,
    wait_until,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
EBOARD = [sys.executable, "-m", "eboard"]


def _version(config_db: Path) -> int:
    conn = store.connect(config_db)
    try:
        return store.active_version(conn)
    finally:
        conn.close()


@pytest.fixture
def reference_server(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    data = tmp_path / "data"
    data.mkdir()
    token = "board-token-123"
    app = create_app(data, Tokens(boards={BOARD: token}), long_poll_max=25.0)
    with serve_app(app) as served:
        yield served.url, data, token


def test_long_poll_brings_a_publish_at_once_and_heartbeat_arrives(
        tmp_path: Path, reference_server: tuple[str, Path, str]) -> None:
    url, data, token = reference_server
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(data, key)
    pub.publish(1, {"a": (png(1), "image/png")})
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    # An hour between polls: only the long-poll can bring version 2 within the test.
    write_config(tmp_path, url, [pubkey], poll_interval=3600, poll_jitter=0.0,
                 token_file=str(token_file))
    cfg = tmp_path / "eboard.toml"
    cfg.write_text(cfg.read_text() + "\n[status]\nheartbeat_interval = 5\n")
    config = load_config(cfg)
    daemon = Daemon(config)
    daemon.start()
    try:
        assert wait_until(lambda: _version(config.db_path) == 1)
        db = Store(data / ".server" / "server.db")
        assert wait_until(lambda: any(b.get("board") == BOARD for b in db.boards()))
        pub.publish(2, {"b": (png(2), "image/png")})
        assert wait_until(lambda: _version(config.db_path) == 2, timeout=20)
        # A forged version 3: refused, and the refusal reaches the province by heartbeat.
        stranger, _ = make_keys(tmp_path / "stranger")
        pub.write(pub.manifest(3), key=stranger)

        def reported() -> bool:
            last = db.boards()[0].get("status") or {}
            errors = (last.get("sync") or {}).get("errors") or []
            return any("no valid signature" in e for e in errors)

        assert wait_until(reported, timeout=20)
        assert _version(config.db_path) == 2
    finally:
        daemon.stop()
    conn = store.connect(config.db_path)
    assert store.get_meta(conn, "sync.events_after") not in (None, "0")
    conn.close()


def test_without_events_channel_polling_carries_on(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    app = StaticApp(tmp_path / "src")
    with serve_wsgi(app) as served:
        config = write_config(tmp_path, served.url, [pubkey], poll_interval=5, poll_jitter=0.0)
        daemon = Daemon(config)
        daemon.start()
        try:
            assert wait_until(lambda: _version(config.db_path) == 1)
            pub.publish(2, {"b": (png(2), "image/png")})
            assert wait_until(lambda: _version(config.db_path) == 2, timeout=20)
        finally:
            daemon.stop()
        assert any(p.endswith("/events") for p in app.log.paths())  # it tried long-poll


def test_backoff_grows_and_is_capped(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/", [], poll_interval=60)
    offline = SyncResult(SyncState.OFFLINE)
    delays = [next_delay(config, offline, n) for n in range(1, 12)]
    assert max(delays[:2]) <= 30 and max(delays) <= 900 and delays[-1] >= 450
    fine = next_delay(config, SyncResult(SyncState.UP_TO_DATE), 0)
    assert 48 <= fine <= 72  # poll_interval with the default ±20 % jitter


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(EBOARD + ["sync", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_cli_once_exit_codes_and_plain_lines(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png"), "b": (png(2), "image/png")})
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        write_config(tmp_path, served.url, [pubkey])
        cfg = tmp_path / "eboard.toml"
        r = _cli(cfg, "--once")
        assert r.returncode == 0, r.stderr
        assert "downloading 2 media" in r.stdout and "[2/2]" in r.stdout
        assert "\r" not in r.stdout  # not a terminal: plain lines
        stranger, _ = make_keys(tmp_path / "stranger")
        pub.write(pub.manifest(2), key=stranger)
        r = _cli(cfg, "--once")
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert "no valid signature by a trusted key" in lines[-1]
        assert "Traceback" not in r.stderr


def test_cli_once_offline_is_nonzero_with_reason(tmp_path: Path) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    write_config(tmp_path, "http://127.0.0.1:9/", [pubkey], connect_timeout=1.0)
    r = _cli(tmp_path / "eboard.toml", "--once")
    assert r.returncode == 1 and "offline" in r.stderr and "cannot reach" in r.stderr
    reason = [line for line in r.stderr.splitlines() if line.startswith("eboard sync:")]
    assert len(reason) == 1 and "Retrying" not in r.stderr


def test_cli_refuses_plain_http_to_a_remote_host(tmp_path: Path) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    with pytest.raises(ConfigError, match="allow_insecure_http"):  # the file is written first
        write_config(tmp_path, "http://httt.example.gov.vn/eboard/v1/", [pubkey])
    r = _cli(tmp_path / "eboard.toml", "--once")
    assert r.returncode == 2 and "allow_insecure_http" in r.stderr


def test_cli_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "src", key).publish(1, {"a": (png(1), "image/png")})
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        write_config(tmp_path, served.url, [pubkey])
        master, slave = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen(EBOARD + ["sync", "--once", "--config", str(tmp_path / "eboard.toml")],
                             stdout=slave, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert p.wait(timeout=60) == 0
        os.close(master)
    text = out.decode()
    assert "\r[" in text and "1/1 files" in text and "/s" in text


def test_daemon_reconnects_when_the_source_comes_back(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    port = free_port()  # nothing listens there yet: the network is "down"
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/", [pubkey], poll_interval=5,
                          long_poll=False, connect_timeout=1.0)
    daemon = Daemon(config)
    daemon.start()
    try:
        conn = store.connect(config.db_path)
        assert wait_until(lambda: (store.get_status(conn, "sync") or {}).get("state")
                          == "offline")
        with serve_wsgi(StaticApp(tmp_path / "src"), port=port):
            assert wait_until(lambda: _version(config.db_path) == 1, timeout=30)
        assert (store.get_status(conn, "sync") or {}).get("state") == "up_to_date"
        conn.close()
    finally:
        daemon.stop()


def test_one_sync_at_a_time_per_cache(tmp_path: Path) -> None:
    from content_sync.board.engine import Engine, sync_lock
    _, pubkey = make_keys(tmp_path / "keys")
    config = write_config(tmp_path, "http://127.0.0.1:9/", [pubkey])
    conn = store.connect(config.db_path)
    with sync_lock(config.cache_dir) as held:
        assert held
        r = Engine(config, conn).sync_once()
    assert r.state == SyncState.BUSY and "another eboard sync" in r.reason


def test_cli_unusable_cache_dir_is_one_clear_line(tmp_path: Path) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    (tmp_path / "file").write_text("not a directory")
    write_config(tmp_path, "http://127.0.0.1:9/", [pubkey], cache_dir=tmp_path / "file" / "c")
    r = _cli(tmp_path / "eboard.toml", "--once")
    assert r.returncode == 2 and "cannot use the cache" in r.stderr
    assert "Traceback" not in r.stderr


CAP_DOC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cap" / \
    "oasis-amber-alert.cap.xml"


@pytest.mark.skipif(not CAP_DOC.exists(), reason="../shared/data/cap is not here (a fresh "
                    "clone elsewhere); the CAP schedule test needs its example document")
def test_daemon_schedules_the_cap_source_when_configured(tmp_path: Path) -> None:
    from kiosk_config import load_config

    key, pubkey = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "src", key).publish(1)
    write_config(tmp_path, (tmp_path / "src").as_uri() + "/", [pubkey])
    cfg = tmp_path / "eboard.toml"
    cfg.write_text(cfg.read_text() + f'\n[cap]\nfeed_url = "{CAP_DOC.as_uri()}"\n'
                   'area_names = ["Xã Pa Vệ Sủ"]\n')
    config = load_config(cfg)
    daemon = Daemon(config)
    daemon.start()
    try:
        assert daemon.scheduler.get_job("cap") is not None
        conn = store.connect(config.db_path)
        assert wait_until(lambda: store.get_status(conn, "cap") is not None)
        conn.close()
    finally:
        daemon.stop()


def test_turning_cap_off_clears_its_alert_at_the_next_start(tmp_path: Path) -> None:
    """With no feed_url the CAP job is not polled; the daemon still clears, once at
    start, the alert the last feed left (it would stay until it expired)."""
    from datetime import UTC, datetime

    from content_sync.cap import poll_once
    from tests.kit.cap import alert, info

    key, pubkey = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "src", key).publish(1)
    config = write_config(tmp_path, (tmp_path / "src").as_uri() + "/", [pubkey])
    sent = datetime.now(UTC).replace(microsecond=0).isoformat()
    feed = tmp_path / "cap" / "alert.xml"
    feed.parent.mkdir()
    feed.write_bytes(alert(sent=sent, infos=(info(effective=None, expires=None),)))
    with_cap = config.model_copy(update={"cap": config.cap.model_copy(update={
        "feed_url": feed.as_uri(), "area_names": ["Pa Vệ Sủ"]})})
    conn = store.connect(config.db_path)
    try:
        assert poll_once(with_cap, conn).shown  # on screen, for cap.no_expiry_hours
        assert len(store.overlays(conn)) == 1
        daemon = Daemon(config)  # the technician removed [cap] and restarted eboard-sync
        daemon.start()
        try:
            assert wait_until(lambda: store.overlays(conn) == []
                              and (store.get_status(conn, "cap") or {}).get("state") == "off")
        finally:
            daemon.stop()
    finally:
        conn.close()


def test_a_failing_run_does_not_stop_the_polling(tmp_path: Path) -> None:
    _, pubkey = make_keys(tmp_path / "keys")
    config = write_config(tmp_path, "http://127.0.0.1:9/", [pubkey], poll_interval=5,
                          long_poll=False, connect_timeout=1.0)
    daemon = Daemon(config)
    daemon.start()
    cache = config.cache_dir
    try:
        assert wait_until(lambda: daemon.last_result is not None and
                          daemon.last_result.state == SyncState.OFFLINE)
        cache.rename(tmp_path / "moved")
        cache.write_text("a file where the cache directory should be")  # a real OS error
        assert wait_until(lambda: daemon.last_result is not None and
                          daemon.last_result.state == SyncState.FAILED, timeout=30)
        cache.unlink()
        (tmp_path / "moved").rename(cache)
        assert wait_until(lambda: daemon.last_result is not None and
                          daemon.last_result.state == SyncState.OFFLINE, timeout=30)
    finally:
        daemon.stop()


def test_events_backoff_is_capped_at_about_a_minute() -> None:
    from content_sync.board.events_channel import events_delay

    delays = [events_delay(n) for n in range(1, 40) for _ in range(5)]
    assert max(delays) <= 60 and min(delays[-20:]) >= 30  # capped, jittered, not collapsed
    assert max(events_delay(1) for _ in range(20)) <= 15


@contextmanager
def _reference_on(data: Path, port: int, token: str,
                  long_polls: list[float]) -> Iterator[str]:
    """The reference server on ``port``, noting when each events long-poll arrives; on
    leaving, its long-polls end, then it stops."""
    app = create_app(data, Tokens(boards={BOARD: token}), long_poll_max=25.0)

    class Noting(Middleware):
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/events"):
                long_polls.append(time.monotonic())
            await self.app(scope, receive, send)

    with serve_app(Noting(app), port=port) as served:
        yield served.url


def test_events_channel_reconnects_as_soon_as_a_poll_gets_through(tmp_path: Path) -> None:
    """The source goes down and comes back: the events long-poll does not sit out its
    backoff once a normal poll has reached the source again."""
    key, pubkey = make_keys(tmp_path / "keys")
    data, port, token = tmp_path / "data", free_port(), "board-token-123"
    data.mkdir()
    Publisher(data, key).publish(1)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/", [pubkey], poll_interval=5,
                          poll_jitter=0.0, token_file=str(token_file), connect_timeout=1.0)
    daemon = Daemon(config)
    long_polls: list[float] = []
    try:
        with _reference_on(data, port, token, long_polls):
            daemon.start()
            assert wait_until(lambda: daemon.events_state == "up"
                              and _version(config.db_path) == 1)
        assert wait_until(lambda: daemon.events_state == "failing", timeout=20)  # down
        time.sleep(1)
        with _reference_on(data, port, token, long_polls):
            back = time.monotonic()
            # Its backoff after a failure is 7.5 s or more; the first good poll (within
            # the 5 s poll interval) cuts it short.
            assert wait_until(lambda: long_polls[-1] > back, timeout=20)
            assert long_polls[-1] - back < 7, long_polls[-1] - back
            assert daemon.last_result is not None and daemon.last_result.ok
    finally:
        daemon.stop()
