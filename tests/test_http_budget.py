"""Every request to the source has a budget (content_sync/net/deadline.py), against a
real server on 127.0.0.1 that sends its headers or its body a byte a second, never
answers, or asks for a Retry-After of a day. Each request ends as a clear failure of
that request; the waits below are a test's patience, never a timing assertion."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from content_sync.board import download
from content_sync.board.download import MediaError
from content_sync.board.source import HttpSource, SourceUnreachable
from content_sync.cap.fetch import FetchError
from content_sync.cap.fetch import fetch as cap_fetch
from content_sync.cap.fetch import make_session as cap_session
from content_sync.db import store
from content_sync.net import short_reason
from content_sync.net.http import DeadlineExceeded, make_session
from content_sync.report import outbox
from content_sync.report.status_report import run_heartbeat_once
from kiosk_config import load_config
from tests.kit.hostile_link import (
    Behaviour,
    Seen,
    drip_body,
    drip_headers,
    hostile_server,
    silent,
    status,
)
from tests.kit.reliability import box_config, eboard
from tests.kit.status import add_plays
from tests.kit.sync import BOARD, make_keys, write_config

PATIENCE_S = 90.0  # far above any budget here; a request still running then is the bug


def _every(behaviour: Behaviour) -> Any:
    return lambda seen, index: behaviour


def _ends(fn: Any) -> Any:
    """Run ``fn`` in a thread; its result or exception, or fail if it is still running
    (the thread is left to the server's closing, so the failure is reported at once)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn)
    try:
        return future.result(timeout=PATIENCE_S)
    except TimeoutError:
        pytest.fail(f"the request was still running after {PATIENCE_S:.0f} s")
    finally:
        pool.shutdown(wait=False)


def _config(tmp_path: Path, url: str, **source: Any) -> Any:
    return write_config(tmp_path, url, [], **{"connect_timeout": 1.0, "read_timeout": 2.0,
                                              **source})


def test_headers_a_byte_a_second_end_within_the_answer_budget(tmp_path: Path) -> None:
    with hostile_server(_every(drip_headers)) as (url, _):
        session = make_session(_config(tmp_path, url))

        def get() -> Exception:
            with pytest.raises(DeadlineExceeded) as caught:
                session.get(f"{url}boards/{BOARD}/manifest.json", stream=True)
            return caught.value

        e = _ends(get)
        assert "no answer within 3 s" in str(e)  # connect 1 s + read 2 s


def test_manifest_headers_dripped_is_a_clear_failure_of_the_poll(tmp_path: Path) -> None:
    with hostile_server(_every(drip_headers)) as (url, _):
        source = HttpSource(_config(tmp_path, url))

        def fetch() -> Exception:
            with pytest.raises(SourceUnreachable) as caught:
                source.fetch_manifest(BOARD, {})
            return caught.value

        assert "no answer within" in str(_ends(fetch))


@pytest.mark.parametrize("stream", [True, False])
def test_body_a_byte_a_second_is_a_stalled_transfer(tmp_path: Path, stream: bool) -> None:
    with hostile_server(_every(drip_body)) as (url, _):
        session = make_session(_config(tmp_path, url))

        def get() -> Exception:
            with pytest.raises(requests.RequestException) as caught:
                r = session.get(f"{url}boards/{BOARD}/events", stream=stream)
                for _ in r.iter_content(65536):
                    pass
            return caught.value

        e = _ends(get)
        assert "stalled" in short_reason(e) or "budget" in short_reason(e)


def test_manifest_body_dripped_is_a_clear_failure(tmp_path: Path) -> None:
    with hostile_server(_every(drip_body)) as (url, _):
        source = HttpSource(_config(tmp_path, url))

        def fetch() -> Exception:
            with pytest.raises(SourceUnreachable) as caught:
                source.fetch_manifest(BOARD, {})
            return caught.value

        assert "transfer stalled" in str(_ends(fetch))


def test_media_headers_dripped_end_the_download(tmp_path: Path) -> None:
    with hostile_server(_every(drip_headers)) as (url, _):
        session = make_session(_config(tmp_path, url))
        sha = "ab" * 32

        def get() -> Exception:
            with pytest.raises(MediaError) as caught:
                download.download_http(session, f"{url}media/{sha}", tmp_path / "c", sha,
                                       100_000, stall_window=2.0)
            return caught.value

        assert "no answer within" in str(_ends(get))


def test_heartbeat_answer_dripped_is_a_clear_failure(tmp_path: Path) -> None:
    with hostile_server(_every(drip_headers)) as (url, srv):
        config = load_config(box_config(tmp_path / "box", url, [],
                                        source={"read_timeout": 2.0, "connect_timeout": 1.0}))
        conn = store.connect(config.db_path)
        result = _ends(lambda: run_heartbeat_once(config, conn, make_session(config)))
        assert not result.ok and "no answer within" in (result.error or "")
        assert srv.count("POST", "/status") == 1


def test_cap_feed_dripped_is_a_clear_failure(tmp_path: Path) -> None:
    with hostile_server(_every(drip_headers)) as (url, _):
        session = cap_session(_config(tmp_path, url))

        def get() -> Exception:
            with pytest.raises(FetchError) as caught:
                cap_fetch(f"{url}cap.xml", session, 65536)
            return caught.value

        assert "no answer within" in str(_ends(get))


def test_a_slow_but_steady_body_is_not_a_stall(tmp_path: Path) -> None:
    """A body at 8 KB/s (a poor 3G link) over several windows comes through whole."""
    import socket
    import threading

    def steady(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n")
        for _ in range(32):
            if stop.wait(0.25):
                return
            conn.sendall(b"x" * 2048)

    with hostile_server(_every(steady)) as (url, _):
        session = make_session(_config(tmp_path, url, read_timeout=1.0))
        r = _ends(lambda: session.get(f"{url}media/x", stream=True))
        assert len(b"".join(r.iter_content(4096))) == 65536


# --- Retry-After ------------------------------------------------------------------------------

def test_a_retry_after_of_a_day_is_not_waited_for(tmp_path: Path) -> None:
    with hostile_server(_every(status(503, b"busy", Retry_After="86400"))) as (url, srv):
        session = make_session(_config(tmp_path, url))
        r = _ends(lambda: session.get(f"{url}boards/{BOARD}/manifest.json"))
        assert r.status_code == 503
        assert srv.count("GET") == 1  # taken as the answer: the daemon's backoff retries


def test_a_short_retry_after_is_still_honoured(tmp_path: Path) -> None:
    def behave(seen: Seen, index: int) -> Behaviour:
        return status(503, b"busy", Retry_After="1") if index == 0 else status(200, b"{}")

    with hostile_server(behave) as (url, srv):
        session = make_session(_config(tmp_path, url))
        r = _ends(lambda: session.get(f"{url}boards/{BOARD}/manifest.json"))
        assert r.status_code == 200 and srv.count("GET") == 2


def test_sync_once_with_a_retry_after_of_a_day_fails_promptly(tmp_path: Path) -> None:
    _, pub = make_keys(tmp_path / "keys")
    with hostile_server(_every(status(503, b"busy", Retry_After="86400"))) as (url, srv):
        cfg = box_config(tmp_path / "box", url, [pub])
        try:
            done = eboard("sync", "--once", "--config", str(cfg), timeout=PATIENCE_S)
        except Exception as e:  # subprocess.TimeoutExpired: parked by the Retry-After
            pytest.fail(f"eboard sync --once still running after {PATIENCE_S:.0f} s: {e}")
        assert done.returncode != 0
        assert "503" in done.stdout + done.stderr
        assert srv.count("GET", "manifest.json") == 1


# --- what is sent again -----------------------------------------------------------------------

def _silent_first(seen: Seen, index: int) -> Behaviour:
    if index == 0:
        return silent
    if seen.path.endswith("/plays"):
        ids = [r["id"] for r in json.loads(seen.body)["records"]]
        return status(200, json.dumps({"accepted": ids}).encode())
    return status(200, b'{"commands": []}')


def test_a_heartbeat_never_answered_is_not_sent_again(tmp_path: Path) -> None:
    with hostile_server(_silent_first) as (url, srv):
        config = load_config(box_config(tmp_path / "box", url, [],
                                        source={"read_timeout": 1.0, "connect_timeout": 1.0}))
        conn = store.connect(config.db_path)
        result = _ends(lambda: run_heartbeat_once(config, conn, make_session(config)))
        assert not result.ok and "status" in (result.error or "")
        assert srv.count("POST", "/status") == 1  # stored once, by a server that got it


def test_a_screenshot_never_answered_is_not_sent_again(tmp_path: Path) -> None:
    with hostile_server(_silent_first) as (url, srv):
        config = load_config(box_config(tmp_path / "box", url, [],
                                        source={"read_timeout": 1.0, "connect_timeout": 1.0}))
        session = make_session(config)
        with pytest.raises(requests.Timeout):
            _ends(lambda: session.put(f"{url}boards/{BOARD}/screenshot", data=b"\xff" * 1000))
        assert srv.count("PUT") == 1


def test_plays_never_answered_are_sent_again_and_accepted(tmp_path: Path) -> None:
    """Plays carry their ids (eboard/1: re-sending is harmless): the retry gets through."""
    with hostile_server(_silent_first) as (url, srv):
        config = load_config(box_config(tmp_path / "box", url, [],
                                        source={"read_timeout": 1.0, "connect_timeout": 1.0}))
        conn = store.connect(config.db_path)
        add_plays(config.db_path, 3)
        result = _ends(lambda: outbox.upload_plays_once(config, conn, make_session(config)))
        assert srv.count("POST", "/plays") == 2
        assert result.error is None and result.accepted == 3
