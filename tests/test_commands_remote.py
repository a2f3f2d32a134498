"""Remote commands end to end: operator → reference server → heartbeat answer or long-poll →
box (validated, run once) → player requests answered by the real Qt helper → result in the
next heartbeat → stored on the server."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from content_sync.db import player_requests, store
from content_sync.net.http import make_session
from content_sync.report.remote_commands import Executor, Refused, apply_log_level, parse
from content_sync.report.status_report import run_heartbeat_once
from tests.kit.status import BOARD, OPERATOR_TOKEN, make_config, reference_server, wait_until

OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def queue(url: str, command: str, args: dict[str, Any] | None = None, **extra: Any
          ) -> dict[str, Any]:
    r = requests.post(f"{url}boards/{BOARD}/commands", headers=OP, timeout=5,
                      json={"command": command, "args": args or {}, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def by_name(url: str) -> dict[str, dict[str, Any] | None]:
    r = requests.get(f"{url}boards/{BOARD}/commands", headers=OP, timeout=5)
    return {c["command"]: c["result"] for c in r.json()}


@pytest.mark.parametrize("raw, reason", [
    ({"id": "c1", "command": "format_disk"}, "unknown command 'format_disk'"),
    ({"id": "c2"}, "unknown command None"),
    ({"id": "c3", "command": "log_level", "args": {}}, "log_level needs args.level"),
    ({"id": "c4", "command": "log_level", "args": {"level": "debug", "minutes": 100000}},
     "minutes must be a whole number 1..1440"),
    ({"id": "c5", "command": "screenshot", "args": {"rm": "-rf"}}, "screenshot takes no arguments"),
    ({"id": "c6", "command": "reboot", "expires_at": "2020-01-01T00:00:00+00:00"},
     "expired at 2020-01-01"),
    ({"id": "c7", "command": "reboot", "expires_at": "tomorrow"}, "not an ISO 8601 time"),
    ({"id": "c8", "command": "sync_now", "args": [1]}, "args must be a JSON object"),
    ({"id": "bad id with spaces", "command": "reboot"}, "no usable id"),
    ("reboot", "must be a JSON object"),
])
def test_malformed_commands_are_refused_with_a_reason(raw: Any, reason: str) -> None:
    with pytest.raises(Refused, match=reason.replace("(", r"\(").replace(".", r"\.")):
        parse(raw)


def test_refused_commands_are_answered_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "rebooted"
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/", allow_reboot=False,
                            allow_clear_cache=False)
    conn = store.connect(config.db_path)
    media = store.media_path(config.cache_dir, "a" * 64)
    media.parent.mkdir(parents=True)
    media.write_bytes(b"x")
    with store.transaction(conn):
        store.record_media(conn, "a" * 64, 1, "image/png")
    ex = Executor(config, conn, reboot_argv=[sys.executable, "-c",
                                              f"open({str(marker)!r}, 'a').write('x')"])
    ex.handle([{"id": "r1", "command": "reboot"}, {"id": "r2", "command": "clear_cache"},
               {"id": "r3", "command": "self_destruct"}, {"command": "reboot"}])
    got = {r["id"]: r for r in ex.results_to_report()}
    assert set(got) == {"r1", "r2", "r3"}  # no id: nothing the server could match; logged
    assert got["r1"]["state"] == "refused" and "status.allow_reboot = false" in got["r1"]["detail"]
    assert got["r2"]["state"] == "refused" and "allow_clear_cache" in got["r2"]["detail"]
    assert got["r3"]["state"] == "refused" and "unknown command" in got["r3"]["detail"]
    assert not marker.exists() and media.exists()
    conn.close()


def test_allowed_commands_report_results_in_the_next_heartbeat(tmp_path: Path, qtbot: Any
                                                                ) -> None:
    from PySide6.QtWidgets import QLabel

    from player.capture import PlayerActions, poll_player_requests

    marker = tmp_path / "rebooted"
    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url, allow_reboot=True,
                                allow_clear_cache=True, screenshot_width=160)
        conn = store.connect(config.db_path)
        # Media on the box: one named by a pending manifest (kept), one stale (removed).
        keep, stale = "b" * 64, "c" * 64
        for sha in (keep, stale):
            p = store.media_path(config.cache_dir, sha)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"media")
            with store.transaction(conn):
                store.record_media(conn, sha, 5, "image/png")
        store.save_pending(conn, 7, BOARD, "2026-11-24T08:00:00+07:00",
                           json.dumps({"media": {keep: {}}}).encode(), "k")
        ex = Executor(config, conn, reboot_argv=[sys.executable, "-c",
                                                  f"open({str(marker)!r}, 'a').write('x')"])
        session = make_session(config)
        for name, args in [("sync_now", {}), ("log_level", {"level": "debug", "minutes": 5}),
                           ("clear_cache", {}), ("reboot", {}), ("screenshot", {}),
                           ("screen_off", {}), ("restart_player", {})]:
            queue(srv.url, name, args)

        hb = run_heartbeat_once(config, conn, session, ex)
        assert hb.ok and len(hb.commands) == 7
        assert wait_until(marker.exists) and marker.read_text() == "x"
        assert player_requests.screen_forced_off(conn)
        # The player answers its requests (real Qt widget, offscreen).
        label = QLabel("Thông báo")
        label.resize(320, 180)
        qtbot.addWidget(label)
        did: dict[str, bool] = {}
        actions = PlayerActions(set_forced_off=lambda off: did.update(forced=off),
                                restart=lambda: did.update(restarted=True))
        answered = poll_player_requests(conn, label, config.cache_dir, 160, actions)
        assert len(answered) == 3
        assert did == {"forced": True, "restarted": True}
        assert (config.cache_dir / "screenshot.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

        # The same commands again (answer and long-poll both carry them): run once only.
        hb2 = run_heartbeat_once(config, conn, session, ex)
        assert hb2.ok and hb2.results_reported == 7 and hb2.commands == []
        time.sleep(0.3)
        assert marker.read_text() == "x"
        results = by_name(srv.url)
        assert all(r is not None and r["ok"] for r in results.values()), results
        states = {c["state"] for c in requests.get(f"{srv.url}boards/{BOARD}/commands",
                                                    headers=OP, timeout=5).json()}
        assert states == {"answered"}
        assert "sync" in results["sync_now"]["detail"]  # type: ignore[index]
        assert "log level debug until" in results["log_level"]["detail"]  # type: ignore[index]
        assert "removed 1 files" in results["clear_cache"]["detail"]  # type: ignore[index]
        assert results["screenshot"]["detail"].startswith("screenshot ")  # type: ignore[index]
        assert store.media_path(config.cache_dir, keep).exists()
        assert not store.media_path(config.cache_dir, stale).exists()
        assert apply_log_level(conn, config) == "debug"

        # Nothing left to deliver: a third heartbeat gets no commands and reports nothing.
        hb3 = run_heartbeat_once(config, conn, session, ex)
        assert hb3.ok and hb3.commands == [] and hb3.results_reported == 0
        conn.close()


def test_command_is_an_event_on_the_long_poll(tmp_path: Path) -> None:
    from content_sync.board.source import HttpSource

    with reference_server(tmp_path / "source") as srv:
        config, _ = make_config(tmp_path / "box", srv.url)
        cmd = queue(srv.url, "screen_on")
        source = HttpSource(config)
        got = source.events(BOARD, 0, 2)
        assert got is not None
        events = [e for e in got[1] if e.type == "command"]
        assert events and events[0].command is not None and events[0].command["id"] == cmd["id"]
        conn = store.connect(config.db_path)
        ex = Executor(config, conn)
        assert ex.handle([events[0].command]) == [cmd["id"]]
        assert ex.handle([events[0].command]) == []  # delivered again: not run again
        assert player_requests.pending(conn)[0]["kind"] == "screen_on"
        conn.close()


def test_expired_and_unanswered_player_requests_fail_with_a_hint(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    conn = store.connect(config.db_path)
    ex = Executor(config, conn)
    ex.handle([{"id": "s1", "command": "screenshot"}])
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    conn.execute("UPDATE player_requests SET created_at=? WHERE id='s1'", (old,))
    (res,) = ex.results_to_report()
    assert res["state"] == "failed" and "is eboard-player running" in res["detail"]
    conn.close()


def test_log_level_override_ends_by_itself(tmp_path: Path) -> None:
    import logging

    config, _ = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    conn = store.connect(config.db_path)
    root = logging.getLogger()
    before = root.level
    try:
        Executor(config, conn).handle([{"id": "l1", "command": "log_level",
                                        "args": {"level": "debug", "minutes": 1}}])
        assert root.level == logging.DEBUG
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        with store.transaction(conn):
            store.set_meta(conn, "log_level.override", json.dumps({"level": "debug",
                                                                   "until": past}))
        assert apply_log_level(conn, config) is None
        assert root.level == logging.INFO
    finally:
        root.setLevel(before)
        conn.close()


def test_server_keeps_expired_commands_from_the_board_and_says_so(tmp_path: Path) -> None:
    from content_sync.server import Store
    from content_sync.server.store import ops

    db = Store(tmp_path / "server.db")
    db.migrate()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    db.write(ops.add_command, BOARD, {"id": "old-1", "command": "reboot", "args": {},
                                      "created_at": past, "expires_at": past})
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    assert db.write(ops.open_commands, BOARD, now) == []
    (cmd,) = db.commands(BOARD)
    assert cmd["state"] == "expired" and cmd["result"] is None


def test_the_player_window_switches_its_screen_through_the_actions_it_is_given(
        tmp_path: Path, qtbot: Any) -> None:
    """Real PlayerWindow, offscreen: given no way to switch the screen, the player says so
    and shows on; given the window's own switch, it blanks; after a restart the screen
    stays off (the operator's switch is in the database)."""
    from player.capture import PlayerActions, apply_forced_off_at_start, poll_player_requests
    from player.window import PlayerWindow
    from tests.kit.player import Board, playlist
    from tests.kit.player import make_config as player_config

    board = Board(player_config(tmp_path))
    board.publish([playlist("p", [{"id": "t", "type": "text", "title": "Một",
                                   "duration": 3600}])])
    board.close()
    config = board.config
    w = PlayerWindow(config)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.current is not None, timeout=5000)
    conn = store.connect(config.db_path)
    player_requests.add(conn, "off-1", "screen_off")
    assert poll_player_requests(conn, w, config.cache_dir, 160) == ["off-1"]
    (refused,) = player_requests.answered(conn)
    assert not refused["ok"] and "cannot switch the screen" in refused["detail"]
    assert w.mode == "normal"
    actions = PlayerActions(set_forced_off=w.set_forced_off)
    player_requests.add(conn, "off-2", "screen_off")
    assert poll_player_requests(conn, w, config.cache_dir, 160, actions) == ["off-2"]
    assert w.mode == "blanked" and w.status().screen.forced_off is True
    w.shutdown()

    again = PlayerWindow(config)  # the player restarted
    qtbot.addWidget(again)
    assert apply_forced_off_at_start(conn, PlayerActions(set_forced_off=again.set_forced_off))
    qtbot.waitUntil(lambda: again.mode == "blanked", timeout=5000)
    again.shutdown()
    conn.close()


def test_player_requests_are_answered_in_the_order_they_were_queued(tmp_path: Path) -> None:
    """Several requests of one heartbeat's answer share a millisecond; ordered by their
    random ids, a restart_player could come before a screen_off queued ahead of it."""
    conn = store.connect(tmp_path / "eboard.db")
    ids = [f"{chr(ord('z') - i)}-request" for i in range(20)]  # ids sort the other way
    with store.transaction(conn):
        for rid in ids:
            player_requests.add(conn, rid, "screenshot")
    assert [r["id"] for r in player_requests.pending(conn)] == ids
    conn.close()
