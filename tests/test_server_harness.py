"""The in-process reference server of the tests leaves no worker behind when it stops.

A server thread, or a store thread, still running when its server stops lives on into
later tests, and may touch the server's closed descriptors (their numbers by then
another test's files). The slowed answers of ``slow_after`` are the tests' own
long-running requests: stopping the server releases them, so every thread of the
server has ended when ``stop`` returns."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import requests

from tests.kit.status import reference_server, slow_after


def test_a_held_back_answer_does_not_outlive_its_server(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with reference_server(tmp_path / "src", middleware=slow_after("/boards.json", 60)) as srv:
        def ask() -> None:
            with contextlib.suppress(requests.RequestException):  # the server went away
                requests.get(srv.url + "boards.json", timeout=90)
        client = threading.Thread(target=ask, daemon=True)
        client.start()
        time.sleep(0.5)  # a worker now holds its answer back
        srv.stop()
    left = [t.name for t in threading.enumerate() if t not in before and t is not client]
    assert left == [], f"threads of the stopped server still running: {left}"
