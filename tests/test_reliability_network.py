"""Network faults the other tests leave out, each through the real box: the source down
for a (simulated) week, a link flapping every few seconds, DNS failure, a TLS error, a
captive portal. Each time: a clear reason in ``eboard status --json``, nothing lost,
the active content kept and playable, and the board catches up once the source is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from content_sync.board.engine import Engine
from content_sync.board.source import HttpSource
from content_sync.daemon import Daemon
from content_sync.db import store
from content_sync.net.http import make_session
from kiosk_config import load_config
from player import content
from tests.kit.reliability import (
    BOARD,
    box_config,
    check_box,
    eboard,
    flaky_link,
    start_sync,
    status_json,
)
from tests.kit.status import reference_server, wait_until
from tests.kit.sync import (
    Plan,
    Publisher,
    StaticApp,
    make_keys,
    misbehaving,
    png,
    self_signed,
    serve_wsgi,
)

DAY_S = 24 * 3600
WEEK_S = 7 * DAY_S


def _publish(pub: Publisher, version: int, seeds: range) -> None:
    pub.publish(version, {f"anh-{s}": (png(s), "image/png") for s in seeds})


def test_source_down_for_a_simulated_day(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    _source_down_for(tmp_path, caplog, DAY_S)


@pytest.mark.soak
def test_source_down_for_a_simulated_week(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    _source_down_for(tmp_path, caplog, WEEK_S)


def _source_down_for(tmp_path: Path, caplog: pytest.LogCaptureFixture, span: float) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key, board=BOARD)
    _publish(pub, 1, range(3))
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        cfg = box_config(tmp_path / "box", served.url, [pubkey], source={"poll_interval": 60})
        assert eboard("sync", "--once", "--config", str(cfg)).returncode == 0
        port = served.port
    # The source is gone (the port refuses). The daemon's own poll loop runs one attempt
    # after another; its scheduler is paused, so each attempt's next run time is read
    # instead of waited for: a day or a week of retries in seconds, on the daemon's own
    # schedule (its HTTP session built with no urllib3 retries, so each attempt is quick).
    config = load_config(cfg)
    assert config.source.url == f"http://127.0.0.1:{port}/"
    daemon = Daemon(config, source=HttpSource(config, make_session(config, retries=0)))
    daemon.scheduler.start(paused=True)
    caplog.set_level(logging.INFO)
    delays: list[float] = []
    size_after_10 = 0
    try:
        while sum(delays) < span:
            before = datetime.now()
            daemon._poll()
            job = daemon.scheduler.get_job("poll")
            delays.append((job.next_run_time.replace(tzinfo=None) - before).total_seconds())
            if len(delays) == 10:
                size_after_10 = _logical_size(config.db_path)
    finally:
        daemon.scheduler.shutdown(wait=False)
        daemon.conn.close()
    # Backoff grows, then stays at its cap: at most 15 min between attempts, and not a
    # hammering either (a 3G SIM pays for each): about 4 to 6 attempts an hour.
    assert max(delays) <= 900
    assert delays[-1] >= 450 and len(delays) <= span / 400
    assert delays[0] < delays[6]
    # Nothing deleted, nothing grown: the active manifest and its files are intact, the
    # database did not grow with the failures, and the failure was logged once.
    assert check_box(config.db_path, config.cache_dir) == 1
    assert _logical_size(config.db_path) <= size_after_10 + 64 * 1024
    offline = [r for r in caplog.records if "sync offline" in r.getMessage()]
    assert len(offline) == 1, [r.getMessage() for r in offline]
    st = status_json(cfg)
    assert st["sync"]["state"] == "offline"
    assert f"cannot reach http://127.0.0.1:{port}/" in st["sync"]["reason"]
    assert "playing the active content" in st["sync"]["reason"]
    assert st["manifest"]["active_version"] == 1
    # The player still has everything it needs, and plays it.
    conn = store.connect(config.db_path)
    view = content.load(conn, config.cache_dir)
    conn.close()
    needed = {it.media for pl in view.playlists for it in pl.items if it.media}
    assert len(needed) == 3 and needed <= view.available
    r = eboard("play", "--duration", "4", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    conn = store.connect(config.db_path)
    played = [dict(x) for x in conn.execute("SELECT item_id, outcome FROM plays")]
    conn.close()
    assert played and {p["outcome"] for p in played} == {"played"}
    print(f"simulated {span / DAY_S:g} day(s) offline: {len(delays)} attempts, longest wait "
          f"{max(delays):.0f} s, mean {sum(delays) / len(delays):.0f} s")


def _logical_size(db: Path) -> int:
    """Pages in use, WAL included (the WAL file's own size only says how busy it was)."""
    conn = store.connect(db, readonly=True)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0]) * \
            int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_link_flapping_every_few_seconds(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    with reference_server(tmp_path / "data") as srv, flaky_link(srv.port) as link:
        pub = Publisher(tmp_path / "data", key, board=BOARD)
        _publish(pub, 1, range(2))
        cfg = box_config(tmp_path / "box", link.url, [pubkey], source={"poll_interval": 5})
        db, cache = tmp_path / "box" / "cache" / "eboard.db", tmp_path / "box" / "cache"
        sync = start_sync(cfg, tmp_path / "logs")
        try:
            last = 0
            for i in range(6):  # up 1 s, down 1 s; a publish every other flap
                if i % 2 == 0:
                    _publish(pub, 2 + i // 2, range(i, i + 3))
                time.sleep(1.0)
                link.down()
                last = check_box(db, cache, last)
                time.sleep(1.0)
                link.up()
            # The link stays up: the newest version arrives, whatever the backoff was.
            assert wait_until(lambda: check_box(db, cache) == 4, timeout=90)
            assert wait_until(lambda: status_json(cfg)["sync"]["state"] == "up_to_date",
                              timeout=30)
            assert link.cuts == 6
        finally:
            rc = sync.stop()
    assert rc == 0
    log = sync.text()
    assert "Traceback" not in log, log[log.find("Traceback") - 300:][:3000]


# --- sources that answer wrongly -----------------------------------------------------------

def _portal(request: Request) -> Response:
    """A hotel/airport style captive portal: 200 and a login page, whatever is asked."""
    return Response("<!doctype html><html><head><title>Đăng nhập Wi-Fi</title></head>"
                    "<body><form>Mật khẩu: <input name=p></form></body></html>", 200,
                    content_type="text/html; charset=utf-8")


@contextmanager
def _dns(tmp: Path) -> Iterator[str]:
    yield "https://nonexistent.invalid/eboard/v1/"


@contextmanager
def _tls(tmp: Path) -> Iterator[str]:
    cert, certkey = self_signed(tmp / "tls")
    with misbehaving(Plan(), tls=(cert, certkey)) as url:
        yield url


@contextmanager
def _captive(tmp: Path) -> Iterator[str]:
    with serve_wsgi(StaticApp(tmp / "nothing", hook=_portal)) as served:
        yield served.url


def _engine_sync(cfg: Path) -> None:
    """One sync in this process: the same Engine that ``eboard sync --once`` runs."""
    config = load_config(cfg)
    conn = store.connect(config.db_path)
    try:
        r = Engine(config, conn).sync_once()
    finally:
        conn.close()
    assert r.ok, r.reason


Fault = Callable[[Path], AbstractContextManager[str]]
FAULTS: dict[str, tuple[Fault, str, list[str]]] = {
    # name: (the faulty source, the state, words the reason must hold)
    "dns": (_dns, "offline", ["cannot reach", "nonexistent.invalid"]),
    "tls": (_tls, "source_error", ["TLS", "source.ca_bundle"]),
    "captive_portal": (_captive, "source_error", ["web page (HTML)", "captive portal"]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_wrong_answers_keep_the_content_and_say_why(tmp_path: Path, fault: str) -> None:
    make, state, words = FAULTS[fault]
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key, board=BOARD)
    _publish(pub, 1, range(3))
    with serve_wsgi(StaticApp(tmp_path / "src")) as good:
        box = tmp_path / "box"
        cache = box / "cache"
        cfg = box_config(box, good.url, [pubkey], cache_dir=cache)
        _engine_sync(cfg)
        _publish(pub, 2, range(2, 5))
        with make(tmp_path) as bad_url:
            box_config(box, bad_url, [pubkey], cache_dir=cache)
            r = eboard("sync", "--once", "--config", str(cfg))
            assert r.returncode == 1
            st = status_json(cfg)
        reason = st["sync"]["reason"]
        assert st["sync"]["state"] == state, reason
        for w in words:
            assert w in reason, reason
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) <= 3, r.stderr
        assert st["manifest"]["active_version"] == 1
        assert check_box(cache / "eboard.db", cache) == 1
        # The fault is gone: the board catches up from where it was.
        box_config(box, good.url, [pubkey], cache_dir=cache)
        _engine_sync(cfg)
    assert check_box(cache / "eboard.db", cache) == 2
    print(f"{fault}: {state}: {reason}")
