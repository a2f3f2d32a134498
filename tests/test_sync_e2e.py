"""End to end through the real commands: keys generate → publish → serve-source → sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from content_sync.db import store
from tests.kit.sync import BOARD, free_port, wait_until, write_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def eboard(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True,
                       text=True, env=ENV, cwd=ROOT, timeout=120)
    assert not check or r.returncode == 0, r.stderr
    return r


def _active(db: Path) -> int:
    conn = store.connect(db)
    try:
        return store.active_version(conn)
    finally:
        conn.close()


def test_publish_serve_sync_daemon_and_status(tmp_path: Path) -> None:
    eboard("keys", "generate", "--out", str(tmp_path / "keys"))
    key = tmp_path / "keys" / "eboard-signing.key"
    data = tmp_path / "data"
    playlist = ROOT / "assets" / "demo" / "playlist.toml"
    eboard("publish", "--to", str(data), "--board", BOARD, "--key", str(key), str(playlist))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[boards]\n"{BOARD}" = "tok-e2e"\n')
    tokens.chmod(0o600)
    token_file = tmp_path / "board.token"
    token_file.write_text("tok-e2e\n")
    token_file.chmod(0o600)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "eboard", "serve-source", "--data", str(data), "--port",
         str(port), "--tokens", str(tokens)], env=ENV, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert wait_until(lambda: _up(url), timeout=20)
        config = write_config(tmp_path, url, [tmp_path / "keys" / "eboard-signing.pub"],
                              token_file=str(token_file), poll_interval=3600,
                              poll_jitter=0.0)
        cfg = str(tmp_path / "eboard.toml")
        r = eboard("sync", "--once", "--config", cfg)
        assert "up to date" in r.stdout
        v1 = _active(config.db_path)
        assert v1 > 0
        status = json.loads(eboard("status", "--json", "--config", cfg).stdout)
        assert status["sync"]["state"] == "up_to_date"
        assert status["manifest"]["active_version"] == v1

        daemon = subprocess.Popen([sys.executable, "-m", "eboard", "sync", "--config", cfg],
                                  env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: any(b.get("board") == BOARD for b in
                                          requests.get(f"{url}boards.json", timeout=5).json()))
            eboard("publish", "--to", str(data), "--board", BOARD, "--key", str(key),
                   str(playlist))
            # poll_interval is an hour: the new version can only come by the long-poll.
            assert wait_until(lambda: _active(config.db_path) > v1, timeout=30)
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        assert "Traceback" not in err
    finally:
        server.terminate()
        server.wait(timeout=10)


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False
