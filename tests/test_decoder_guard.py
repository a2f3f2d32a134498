"""A media that crashes its decoder is contained. A clip that crashes the player: the player
died with it open twice, so the next player passes over it, says why, and keeps the board
playing. An image that crashes the sync's check: refused at the third run, and later
versions still arrive.

The crash of a decoder is played by SIGSEGV sent to the process while the clip is on
screen, or while the sync checks the image (its note says so): what systemd sees (the
process dies by a signal) and what the next process finds (the note it left) are the
same. A real crashing decoder cannot be made on demand.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report.status_report import run_heartbeat_once
from content_sync.runtime import decoder_guard
from content_sync.runtime.decoder_guard import DEATHS_TO_HOLD, HOLD_S, DecoderGuard
from kiosk_config import load_config
from player import video
from tests.kit.player import Board, make_clip, playlist, png
from tests.kit.reliability import (
    BOARD,
    ROOT,
    Proc,
    box_config,
    eboard,
    start,
    start_player,
    status_json,
)
from tests.kit.status import reference_server, wait_until
from tests.kit.sync import Publisher, make_keys
from tests.kit.sync import png as sync_png

A, B = "a" * 64, "b" * 64


def die_with_open(note: Path, *shas: str, how: str = "segv") -> int:
    """Run a player-like process that opens ``shas`` and then dies (or exits cleanly)."""
    code = f"""
import os, signal, sys
from pathlib import Path
from content_sync.runtime.decoder_guard import DecoderGuard
g = DecoderGuard(Path({str(note)!r}))
g.start()
for sha in {list(shas)!r}:
    g.opened(sha)
how = {how!r}
if how == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
if how == "null-read":  # a real fault in C code, as a decoder's would be
    import ctypes
    ctypes.string_at(0)
if how == "abort":  # what systemd's watchdog sends a hung process
    os.abort()
if how == "kill":  # the OOM killer, a stop time-out, kill -9
    os.kill(os.getpid(), signal.SIGKILL)
if how == "closed-then-kill":
    for sha in {list(shas)!r}:
        g.closed(sha)
    os.kill(os.getpid(), signal.SIGKILL)
if how == "clean":
    g.stop()
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return p.returncode


def test_two_deaths_with_a_clip_open_hold_it_back_for_a_while(tmp_path: Path) -> None:
    note = tmp_path / "player-clips.json"
    now = [1_800_000_000.0]
    assert die_with_open(note, A, B) == -signal.SIGSEGV
    g = DecoderGuard(note, clock=lambda: now[0])
    assert g.start() == {A: 1, B: 1}
    assert g.held() == frozenset()  # one death may be bad luck
    assert die_with_open(note, A) == -signal.SIGSEGV
    g = DecoderGuard(note, clock=lambda: now[0])
    assert g.start() == {A: DEATHS_TO_HOLD}
    assert g.held() == {A}
    assert g.report() == [{"media": A, "deaths": 2, "until": "2027-01-16T08:00:00+00:00"}]
    assert "died 2 times" in g.reason(A)
    now[0] += HOLD_S + 1  # tried again after a day
    assert g.held() == frozenset()


def test_a_kill_from_outside_is_not_a_death_a_real_crash_is(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer, a stop time-out, kill -9) cannot be caught, so the dead
    process left no crash record: twice killed with the file open, it is not held. A
    fault in C code and an abort (the watchdog's signal for a hang) are recorded."""
    note = tmp_path / "sync-checks.json"
    for _ in range(2 * DEATHS_TO_HOLD):
        assert die_with_open(note, A, how="kill") == -signal.SIGKILL
    g = DecoderGuard(note)
    assert g.start() == {} and g.held() == frozenset()
    assert die_with_open(note, A, how="null-read") == -signal.SIGSEGV
    assert die_with_open(note, A, how="abort") == -signal.SIGABRT
    g = DecoderGuard(note)
    assert g.start() == {A: DEATHS_TO_HOLD} and g.held() == {A}
    assert "Fatal Python error: Segmentation fault" not in g.reason(A)


def test_a_clean_exit_a_closed_clip_another_boot_and_a_bad_note_are_not_deaths(
        tmp_path: Path) -> None:
    note = tmp_path / "player-clips.json"
    assert die_with_open(note, A, how="clean") == 0
    assert DecoderGuard(note).start() == {}
    assert die_with_open(note, A, how="closed-then-kill") == -signal.SIGKILL
    assert DecoderGuard(note).start() == {}
    assert die_with_open(note, A) == -signal.SIGSEGV
    assert DecoderGuard(note, boot="a-boot-before-a-power-cut").start() == {}
    note.write_text('{"boot": ')  # cut short
    g = DecoderGuard(note)
    assert g.start() == {}
    assert json.loads(note.read_text())["open"] == []  # written again, whole


def test_a_note_that_cannot_be_written_never_stops_the_player(tmp_path: Path) -> None:
    g = DecoderGuard(tmp_path / "no-such-dir" / "player-clips.json")
    assert g.start() == {}
    g.opened(A)
    g.closed(A)
    g.stop()
    assert g.held() == frozenset()


def _player(board: Board) -> dict[str, Any]:
    return board.status() or {}


def _on_screen(board: Board, pid: int) -> str | None:
    st = _player(board)
    if st.get("pid") != pid:
        return None
    return (st.get("current") or {}).get("item_id")


@pytest.mark.skipif(not video.available(), reason="libVLC is not installed")
def test_a_clip_that_kills_the_player_twice_is_held_back_and_the_board_plays_on(
        tmp_path: Path) -> None:
    with ExitStack() as stack:
        _clip_kills_the_player_twice(tmp_path, stack)


def _clip_kills_the_player_twice(tmp_path: Path, stack: ExitStack) -> None:
    srv = stack.enter_context(reference_server(tmp_path / "source"))
    cfg = box_config(tmp_path / "box", srv.url, [])
    config = load_config(cfg)
    board = Board(config)
    clip = board.add_file(make_clip(tmp_path / "c.mp4", seconds=30), "video/mp4")
    pic = board.add_media(png((200, 20, 20)))
    board.publish([playlist("tb", [
        {"id": "phim", "type": "video", "media": clip},
        {"id": "anh", "type": "image", "media": pic, "duration": 1}])])
    logs = tmp_path / "logs"
    started: list[Proc] = []
    try:
        # A clean stop (SIGTERM: systemd, restart_player) with the clip on screen is
        # not a death; the two crashes after it are.
        for end in ("term", "segv", "segv"):
            player = start_player(cfg, logs)
            started.append(player)
            assert wait_until(lambda p=player.pid: _on_screen(board, p) == "phim",
                              timeout=40), \
                player.text()[-3000:]
            if end == "term":
                assert player.stop() == 0
            else:
                os.kill(player.pid, signal.SIGSEGV)
                player.popen.wait(30)
                player.close()
                assert player.popen.returncode == -signal.SIGSEGV

        player = start_player(cfg, logs)
        started.append(player)
        assert wait_until(lambda: _on_screen(board, player.pid) == "anh", timeout=40), \
            player.text()[-3000:]
        seen: set[str | None] = set()
        end_at = time.monotonic() + 4  # the 1-s picture comes round several times
        while time.monotonic() < end_at:
            seen.add(_on_screen(board, player.pid))
            time.sleep(0.05)
        assert player.alive(), player.text()[-3000:]
        assert "phim" not in seen and "anh" in seen
        assert _player(board)["clips_held"] == [
            {"media": clip, "deaths": 2, "until": _player(board)["clips_held"][0]["until"]}]
        skipped = [p for p in board.plays() if p["item_id"] == "phim"
                   and p["outcome"] == "skipped"]
        assert len(skipped) == 1 and "died 2 times" in skipped[0]["detail"]
        assert "holding it back" in player.text()

        # What the province and the technician see.
        assert status_json(cfg)["player"]["clips_held"][0]["media"] == clip
        out = eboard("status", "--config", str(cfg)).stdout
        assert "clip held back" in out and clip[:12] in out, out
        conn = store.connect(config.db_path)  # a real heartbeat to the reference server
        assert run_heartbeat_once(config, conn, make_session(config)).ok
        conn.close()
        page = requests.get(srv.url + "status", timeout=10).text
        assert f"clip {clip[:12]}… held back, the player died 2 times" in page, page
        doctor = eboard("doctor", "--config", str(cfg)).stdout
        assert [line for line in doctor.splitlines()
                if "WARN" in line and f"clip {clip[:12]}" in line and "held back" in line], doctor
        assert player.stop() == 0
    finally:
        for proc in started:  # a failed assertion must not leave a player running
            proc.kill9()
        board.close()
    assert decoder_guard.CLIP_NOTE in os.listdir(config.db_path.parent)


def _big_png() -> bytes:
    """A valid 6300×6300 PNG (just under the board's pixel budget) that takes a few tenths
    of a second to decode: long enough for the test to crash the sync inside the decode."""
    buf = io.BytesIO()
    Image.new("RGB", (6300, 6300), (30, 90, 160)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _checking(note: Path, pid: int | None = None) -> list[str]:
    """What the note says is being decoded (by process ``pid`` only, when given)."""
    try:
        data = json.loads(note.read_text())
    except (OSError, ValueError):
        return []
    if pid is not None and data.get("pid") != pid:
        return []
    return list(data.get("open") or [])


def test_a_file_that_kills_the_sync_twice_is_refused_and_later_versions_still_arrive(
        tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    with reference_server(tmp_path / "data") as srv:
        pub = Publisher(tmp_path / "data", key, board=BOARD)
        pub.publish(1, {"anh-1": (sync_png(1), "image/png")})
        cfg = box_config(tmp_path / "box", srv.url, [pubkey])
        config = load_config(cfg)
        assert eboard("sync", "--once", "--config", str(cfg)).returncode == 0
        poison = pub.publish(2, {"anh-lon": (_big_png(), "image/png")})
        sha = next(iter(poison["media"]))
        note = config.cache_dir / decoder_guard.CHECK_NOTE
        logs = tmp_path / "logs"
        for _ in range(DEATHS_TO_HOLD):  # the decoder "crashes" inside the check, twice
            once = start("once", ["sync", "--once", "--config", str(cfg)], logs)
            try:
                assert wait_until(lambda p=once.pid: sha in _checking(note, p), timeout=60,
                                  step=0.002), once.text()[-3000:]
                os.kill(once.pid, signal.SIGSEGV)
                once.popen.wait(30)
            finally:
                once.kill9()
            assert once.popen.returncode == -signal.SIGSEGV

        # The third run does not fetch or decode the file again: refused, with the reason;
        # version 1 stays on screen.
        r = eboard("sync", "--once", "--config", str(cfg))
        assert "holding it back" in r.stdout + r.stderr, r.stdout + r.stderr
        st = status_json(cfg)
        assert st["manifest"]["active_version"] == 1
        reasons = " ".join(x["reason"] for x in st["recent_refusals"])
        assert "held back: the sync died 2 times while decoding this file" in reasons, \
            (st, r.stdout + r.stderr)
        assert sha not in _checking(note)

        # The province replaces the picture: the next version arrives as usual.
        pub.publish(3, {"anh-2": (sync_png(2), "image/png")})
        assert eboard("sync", "--once", "--config", str(cfg)).returncode == 0
        assert status_json(cfg)["manifest"]["active_version"] == 3


def test_a_sync_killed_from_outside_twice_while_checking_holds_nothing_back(
        tmp_path: Path) -> None:
    """SIGKILL twice inside the check (the OOM killer, a stop time-out, kill -9): no
    crash, so no hold; the third run checks the file again and activates it."""
    key, pubkey = make_keys(tmp_path / "keys")
    with reference_server(tmp_path / "data") as srv:
        pub = Publisher(tmp_path / "data", key, board=BOARD)
        pub.publish(1, {"anh-1": (sync_png(1), "image/png")})
        cfg = box_config(tmp_path / "box", srv.url, [pubkey])
        config = load_config(cfg)
        assert eboard("sync", "--once", "--config", str(cfg)).returncode == 0
        sha = next(iter(pub.publish(2, {"anh-lon": (_big_png(), "image/png")})["media"]))
        note = config.cache_dir / decoder_guard.CHECK_NOTE
        logs = tmp_path / "logs"
        for _ in range(DEATHS_TO_HOLD):
            once = start("once", ["sync", "--once", "--config", str(cfg)], logs)
            try:
                assert wait_until(lambda p=once.pid: sha in _checking(note, p), timeout=60,
                                  step=0.002), once.text()[-3000:]
                os.kill(once.pid, signal.SIGKILL)
                once.popen.wait(30)
            finally:
                once.kill9()
            assert once.popen.returncode == -signal.SIGKILL
        r = eboard("sync", "--once", "--config", str(cfg))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "killed from outside" in r.stdout + r.stderr, r.stdout + r.stderr
        assert "holding it back" not in r.stdout + r.stderr
        assert status_json(cfg)["manifest"]["active_version"] == 2


def test_a_note_closed_under_the_guard_never_writes_through_a_reused_number(
        tmp_path: Path) -> None:
    """The cycle collector can finalize a freed window's guard (closing its note) while a
    clip's release thread still holds it and reports the clip closed. The next file
    opened takes the note's old descriptor number; the guard must not write into it
    (it once overwrote a SQLite database's header)."""
    from content_sync.runtime.decoder_guard import DecoderGuard

    guard = DecoderGuard(tmp_path / "player-clips.json", "player", "clip")
    guard.start()
    sha = "a" * 64
    guard.opened(sha)
    assert guard._file is not None
    number = guard._file.fileno()
    guard._file.close()  # what finalization does
    header = b"SQLite format 3\x00" + b"\x00" * 84
    fd = os.open(tmp_path / "eboard.db", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert fd == number, "the lowest free number is reused"
        os.write(fd, header)
        guard.closed(sha)
    finally:
        os.close(fd)
    assert (tmp_path / "eboard.db").read_bytes() == header
    assert json.loads((tmp_path / "player-clips.json").read_text())["open"] == []


def test_a_held_back_file_is_tried_again_when_its_hold_ends(tmp_path: Path) -> None:
    """The hold is not a refusal for good: with the clock 25 h on, a newer version that
    uses the file arrives, and so does the version it was held in, offered again."""
    from content_sync.board.engine import Engine, SyncState
    from tests.kit.sync import StaticApp, serve_wsgi, write_config

    key, pubkey = make_keys(tmp_path / "keys")
    (tmp_path / "src").mkdir()
    pub = Publisher(tmp_path / "src", key)
    now = [time.time()]  # the deaths are counted on the real clock by the dying processes
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)

        def engine() -> Engine:
            e = Engine(config, conn)
            e.guard = DecoderGuard(config.cache_dir / decoder_guard.CHECK_NOTE, "sync", "file",
                                   clock=lambda: now[0])
            return e

        pub.publish(1, {"anh-1": (sync_png(1), "image/png")})
        assert engine().sync_once().state is SyncState.UP_TO_DATE
        pic = sync_png(7)
        sha = next(iter(pub.publish(2, {"anh-2": (pic, "image/png")})["media"]))
        note = config.cache_dir / decoder_guard.CHECK_NOTE
        for _ in range(DEATHS_TO_HOLD):  # two real crashes of a process checking it
            assert die_with_open(note, sha) == -signal.SIGSEGV
        r = engine().sync_once()
        assert r.state is SyncState.REFUSED and "held back: the sync died 2 times" in r.reason
        assert f"tried again after {decoder_guard._iso(now[0] + HOLD_S)}" in r.reason, r.reason
        assert engine().sync_once().state is SyncState.REFUSED  # within the day: still held

        now[0] += 25 * 3600
        r = engine().sync_once()  # the same version, offered again after the hold
        assert r.state is SyncState.UP_TO_DATE and store.active_version(conn) == 2, r.reason
        pub.publish(3, {"anh-2": (pic, "image/png"), "anh-3": (sync_png(3), "image/png")})
        r = engine().sync_once()  # and a newer one that uses the file
        assert r.state is SyncState.UP_TO_DATE and store.active_version(conn) == 3, r.reason
        assert sha not in store.refused_media(conn)
        conn.close()


def test_holds_an_older_release_wrote_as_refusals_are_forgotten(tmp_path: Path) -> None:
    """Before the fix a hold was also a refused media (and its manifest refused) for
    good; the first run of this release forgets those, so the file is tried again."""
    from content_sync.board.engine import Engine, SyncState
    from tests.kit.sync import StaticApp, serve_wsgi, write_config

    key, pubkey = make_keys(tmp_path / "keys")
    (tmp_path / "src").mkdir()
    pub = Publisher(tmp_path / "src", key)
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        body = pub.publish(1, {"anh-1": (sync_png(1), "image/png")})
        sha = next(iter(body["media"]))
        old = ("(image/png) held back: the sync died 2 times while decoding this file; "
               "tried again after 2026-01-02T03:04:05+00:00")
        store.refuse_media(conn, sha, old)
        store.save_pending(conn, 1, BOARD, "2026-01-01T00:00:00+00:00", b"{}", "k")
        store.refuse_manifest(conn, 1, f"media {sha[:12]}… {old}")
        store.refuse_media(conn, "c" * 64, "(image/png) not an image Pillow can read")
        r = Engine(config, conn).sync_once()
        assert r.state is SyncState.UP_TO_DATE and store.active_version(conn) == 1, r.reason
        assert store.refused_media(conn) == {"c" * 64: "(image/png) not an image Pillow can read"}
        conn.close()
