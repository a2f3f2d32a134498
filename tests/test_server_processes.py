"""Several server processes on one PostgreSQL: a board's events cross processes.

Two real ``eboard serve-source --store postgresql://…`` processes on one database: a
publish received by process A wakes the board long-polling process B; a command queued
through B reaches a board heartbeating A. The folder is shared (the static part)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.kit.status import free_port

ROOT = Path(__file__).resolve().parents[1]
OP = "operator-token"
BOARD, TOKEN = "xa-a.board-01", "token-a"


def envelope(version: int) -> bytes:
    payload = base64.b64encode(json.dumps({"version": version}).encode()).decode()
    return json.dumps({"payloadType": "application/vnd.eboard.manifest+json",
                       "payload": payload, "signatures": [{"keyid": "k", "sig": "x"}]}).encode()


@contextmanager
def server_process(data: Path, tokens: Path, store: str, log: Path,
                   *extra: str) -> Iterator[str]:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eboard.cli", "serve-source", "--data", str(data),
             "--tokens", str(tokens), "--port", str(port), "--store", store, *extra],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"server on {port} did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_events_cross_server_processes(tmp_path: Path, pg_dsn: str) -> None:
    data = tmp_path / "data"
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'operator = "{OP}"\n[boards]\n"{BOARD}" = "{TOKEN}"\n')
    board = {"Authorization": f"Bearer {TOKEN}"}
    op = {"Authorization": f"Bearer {OP}"}
    with server_process(data, tokens, pg_dsn, tmp_path / "a.log") as a, \
            server_process(data, tokens, pg_dsn, tmp_path / "b.log", "--no-watch") as b:
        start = requests.get(f"{b}boards/{BOARD}/events?after=0&wait=0", headers=board,
                             timeout=10).json()["next"]
        answer: list[dict[str, Any]] = []

        def poll() -> None:
            answer.append(requests.get(f"{b}boards/{BOARD}/events",
                                       params={"after": start, "wait": 20},
                                       headers=board, timeout=30).json())
        waiting = threading.Thread(target=poll)
        waiting.start()
        time.sleep(1.0)  # the long-poll is parked in process B
        sent = time.monotonic()
        assert requests.put(f"{a}boards/{BOARD}/manifest.json", data=envelope(5), headers=op,
                            timeout=10).status_code == 201
        waiting.join(25)
        took = time.monotonic() - sent
        assert answer, "process B's long-poll never answered"
        assert [e.get("version") for e in answer[0]["events"]] == [5], answer
        assert took < 15, f"woken only by its wait running out ({took:.1f} s)"
        # the other way: a command queued through B is answered to a heartbeat at A
        cmd = requests.post(f"{b}boards/{BOARD}/commands", json={"command": "screenshot"},
                            headers=op, timeout=10).json()
        hb = requests.post(f"{a}boards/{BOARD}/status", json={"board": BOARD},
                           headers=board, timeout=10).json()
        assert [c["id"] for c in hb["commands"]] == [cmd["id"]]
        # and both processes list the board (one store)
        assert [x["board"] for x in requests.get(f"{b}boards.json", timeout=10).json()] == \
            [BOARD]
