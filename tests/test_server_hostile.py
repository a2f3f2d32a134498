"""Bad input at the source server: each bounded, refused with a clear status, and never
starving the other boards. The real app under uvicorn on 127.0.0.1; the attackers are
raw sockets and ordinary clients."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from content_sync.server import Tokens, create_app
from tests.kit.status import ServedApp, serve_app

OP = "operator-token"
BOARDS = {"xa-a.board-01": "token-a", "xa-b.board-01": "token-b"}
A, B = sorted(BOARDS)
HB = {"board": B, "heartbeat_interval_s": 60}


def auth(board: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BOARDS[board]}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApp]:
    app = create_app(tmp_path / "data", Tokens(operator=OP, boards=BOARDS), long_poll_max=10,
                     board_requests_per_minute=40, body_idle_s=1.0)
    with serve_app(app, header_timeout_s=1.0) as served:
        yield served


def heartbeat_ok(url: str) -> bool:
    r = requests.post(f"{url}boards/{B}/status", json=HB, headers=auth(B), timeout=5)
    return r.status_code == 200


def test_oversized_malformed_and_bomb_bodies_are_refused(server: ServedApp) -> None:
    url = f"{server.url}boards/{A}/status"
    big = requests.post(url, data=b"x" * (300 * 1024), headers=auth(A), timeout=10)
    assert big.status_code == 413 and "limited to 262144 bytes" in big.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as bytes come
        for _ in range(100):
            yield b"x" * 8192
    chunked = requests.post(url, data=chunks(), headers=auth(A), timeout=10)
    assert chunked.status_code == 413
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}")
    r = requests.post(url, data=bomb, headers={**auth(A), "Content-Encoding": "gzip"},
                      timeout=10)
    assert r.status_code == 413 and "inflated body" in r.text
    r = requests.post(url, data=b"{not json", headers=auth(A), timeout=10)
    assert r.status_code == 400 and "JSON object" in r.text
    r = requests.post(url, data=b"[" * 100_000 + b"]" * 100_000, headers=auth(A), timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{server.url}boards/{A}/plays", data=b'{"records": 5}',
                      headers=auth(A), timeout=10)
    assert r.status_code == 400 and "lists" in r.text
    r = requests.get(f"{server.url}boards/{A}/events?after=x", headers=auth(A), timeout=10)
    assert r.status_code == 400 and "integer" in r.text
    assert heartbeat_ok(server.url)
    assert requests.get(f"{server.url}boards.json", timeout=10).json()[0]["board"] == B


def test_slow_clients_are_cut_off_and_others_are_served(server: ServedApp) -> None:
    """300 slowloris connections (headers a byte at a time) and a body that stalls:
    the board next door is answered throughout, the slow ones get 408 and are closed."""
    slow = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"POST /boards/xa-a.board-01/status HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    stalled.sendall(b"POST /boards/xa-a.board-01/status HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer token-a\r\nContent-Length: 1000\r\n\r\n{\"a\":")
    answered = 0
    for i in range(5):
        for s in slow:
            with contextlib.suppress(OSError):  # cut off already
                s.send(b"X")
        answered += heartbeat_ok(server.url)
        time.sleep(0.3 if i < 4 else 0)
    assert answered == 5
    time.sleep(1.5)
    cut = 0
    for s in slow:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        cut += data.startswith(b"HTTP/1.1 408") or data == b""
        s.close()
    assert cut == 300
    reply = stalled.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408") and b"no bytes of" in reply, reply[:200]
    stalled.close()
    assert heartbeat_ok(server.url)


def test_a_flood_from_one_token_is_refused_and_its_neighbour_is_served(
        server: ServedApp) -> None:
    codes: list[int] = []
    retry: set[str] = set()
    session = requests.Session()
    for _ in range(120):
        r = session.post(f"{server.url}boards/{A}/status", json={"board": A},
                         headers=auth(A), timeout=5)
        codes.append(r.status_code)
        if r.status_code == 429:
            retry.add(r.headers.get("Retry-After", ""))
            assert "more than 40 requests a minute" in r.text
    assert codes.count(200) <= 42 and codes.count(429) >= 78, codes
    assert retry and all(x.isdigit() and 1 <= int(x) <= 60 for x in retry)
    assert heartbeat_ok(server.url)  # B has its own budget
    rows = server.app.state.source.db.execute(
        "SELECT count(*) FROM heartbeats WHERE board=?", (A,))
    assert rows[0][0] == codes.count(200)  # refused requests cost no write


def test_a_board_holds_at_most_two_long_polls(server: ServedApp) -> None:
    hub = server.app.state.source.hub
    start = requests.get(f"{server.url}boards/{A}/events?after=0&wait=0", headers=auth(A),
                         timeout=5).json()["next"]
    answers: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def poll() -> None:
        r = requests.get(f"{server.url}boards/{A}/events",
                         params={"after": start, "wait": 8}, headers=auth(A), timeout=20)
        answers.append((time.monotonic() - t0, r.status_code))
    polls = [threading.Thread(target=poll) for _ in range(6)]
    for t in polls:
        t.start()
        time.sleep(0.1)
    time.sleep(0.5)
    assert hub.waiting == 2
    assert len(answers) == 4 and all(code == 200 for _, code in answers)  # replaced, answered
    for t in polls:
        t.join(20)
    assert len(answers) == 6


def test_unknown_paths_and_ids_get_nothing(server: ServedApp) -> None:
    for path in ("boards/UPPER/status", "boards/a b/events", "nope", "media/xyz"):
        r = requests.get(server.url + path, headers=auth(A), timeout=5)
        assert r.status_code in (404, 405), (path, r.status_code)
    r = requests.post(f"{server.url}boards/{A}/status", json=HB, headers=auth(B), timeout=5)
    assert r.status_code == 401


def test_the_budget_refills_with_time() -> None:
    """A bucket per board: a burst up to the minute's budget, then one request per
    1/rate seconds; another board's bucket is its own (a frozen clock, no sleeping)."""
    from starlette.exceptions import HTTPException

    from content_sync.server.guard import BoardBudget

    now = [1000.0]
    budget = BoardBudget(60, clock=lambda: now[0])
    for _ in range(60):
        budget.spend(A)
    with pytest.raises(HTTPException) as refused:
        budget.spend(A)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "1"}
    budget.spend(B)  # its own budget
    now[0] += 1.0  # one request a second comes back
    budget.spend(A)
    with pytest.raises(HTTPException):
        budget.spend(A)
    now[0] += 3600
    for _ in range(60):  # a quiet hour refills the burst, not more
        budget.spend(A)
    with pytest.raises(HTTPException):
        budget.spend(A)
