"""The wall clock steps under both real processes: forward and back by an hour and by
a day, as an NTP step after weeks on a drifting RTC or a technician setting the date.

``tests/test_reliability_clock.py`` moves the player's clock inside one window; here
the sync daemon (``eboard sync``) and the player (``eboard play``) run as they do on a
box, and their wall clock is really stepped: ``tests/native/clockshift.c``, built here
with the C compiler and preloaded into both, adds an offset read from a file to
CLOCK_REALTIME (Python's ``time.time``/``datetime.now``, Qt, SQLite) and leaves the
monotonic clocks alone, as a real step does. The reference server keeps the real time.

The board has a morning playlist (06:00-12:00, not on Tuesdays) and an afternoon one
(12:00-18:00). After each step: the playlist of the new time is what plays; the
heartbeat keeps coming (APScheduler plans on the wall clock: without the daemon's
clock watch a step back by a day held every job for a day); the poll keeps running (a
version published after the steps becomes active); nothing crashes. At the end, every
proof-of-play record reached the server once, every played record lasted its whole
item (items are timed on the monotonic clock), and the played time adds up to no more
than the time that passed: nothing played twice because of a step.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from content_sync.db import store
from tests.kit.reliability import box_config, start_player, start_sync
from tests.kit.status import BOARD, reference_server, wait_until
from tests.kit.sync import Publisher, make_keys

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ITEM_S = 1.0
HEARTBEAT_S = 5
SHIM = Path(__file__).parent / "native" / "clockshift.c"
MORNING = {"days": [1, 3, 4, 5, 6, 7], "times": [["06:00", "12:00"]]}  # not Tuesday
AFTERNOON = {"times": [["12:00", "18:00"]]}


@pytest.fixture(scope="module")
def clockshift(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (make setup installs gcc) to build tests/native/clockshift.c")
    out = tmp_path_factory.mktemp("clockshift") / "clockshift.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl"],
                   check=True, capture_output=True, text=True)
    return out


class SteppedClock:
    """The offset file the shim reads: the box's wall clock is ``real + offset``."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = path
        self.offset = 0.0
        self.set(start)

    def set(self, wall: datetime) -> None:
        self.offset = wall.timestamp() - time.time()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:.3f}\n")
        tmp.replace(self.path)

    def step(self, seconds: float) -> None:
        self.set(self.now() + timedelta(seconds=seconds))

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, VN)


def next_monday_11(after: datetime) -> datetime:
    """Monday 11:00 (Vietnam) at least two days after ``after``: every step of the test
    stays after the real time, so the manifest's issue time never looks in the future."""
    day = (after + timedelta(days=2)).astimezone(VN).date()
    day += timedelta(days=(7 - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, 11, 0, tzinfo=VN)


def _items(prefix: str) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "type": "text", "title": prefix.upper(),
             "body": f"Thông báo {i}", "duration": ITEM_S} for i in range(3)]


def _manifest(pub: Publisher, version: int) -> dict[str, Any]:
    return pub.manifest(version, playlists=[
        {"id": "sang", "title": "Buổi sáng", "priority": "normal", "items": _items("sang"),
         "schedule": MORNING},
        {"id": "chieu", "title": "Buổi chiều", "priority": "normal",
         "items": _items("chieu"), "schedule": AFTERNOON},
    ])


def _player(db: Path) -> dict[str, Any]:
    conn = store.connect(db, readonly=True)
    try:
        return store.get_status(conn, "player") or {}
    except sqlite3.OperationalError:  # no tables yet: the processes are starting
        return {}
    finally:
        conn.close()


def _active(db: Path) -> int:
    conn = store.connect(db, readonly=True)
    try:
        return store.active_version(conn)
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _showing(db: Path) -> str | None:
    """The playlist on screen, "idle" for the neutral screen, None before the player."""
    st = _player(db)
    if not st:
        return None
    cur = st.get("current")
    return cur["playlist_id"] if cur else "idle" if st.get("state") == "idle" else None


@pytest.fixture
def stepped_box(tmp_path: Path, clockshift: Path) -> Iterator[dict[str, Any]]:
    key, pubkey = make_keys(tmp_path / "keys")
    with reference_server(tmp_path / "data") as srv:
        pub = Publisher(tmp_path / "data", key, board=BOARD)
        pub.write(_manifest(pub, 1))
        clock = SteppedClock(tmp_path / "offset", next_monday_11(datetime.now(VN)))
        cfg = box_config(tmp_path / "box", srv.url, [pubkey],
                         source={"poll_interval": 5, "long_poll": False},
                         status={"heartbeat_interval": HEARTBEAT_S})
        shim = {"LD_PRELOAD": str(clockshift), "CLOCKSHIFT_FILE": str(clock.path)}
        logs = tmp_path / "logs"
        sync, player = start_sync(cfg, logs, **shim), start_player(cfg, logs, **shim)
        try:
            yield {"srv": srv, "pub": pub, "clock": clock, "sync": sync, "player": player,
                   "db": tmp_path / "box" / "cache" / "eboard.db"}
        finally:
            player.stop()
            sync.stop()
            player.close()
            sync.close()


def _is_showing(db: Path, expected: str) -> bool:
    return _showing(db) == expected


def _jumps_seen(db: Path, n: int) -> bool:
    return int(_player(db).get("clock", {}).get("jumps", 0)) >= n


def _beats_above(srv: Any, n: int) -> bool:
    return len(_heartbeats(srv)) > n


def _heartbeats(srv: Any) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in srv.db.execute(
        "SELECT data FROM heartbeats WHERE board=? ORDER BY id", (BOARD,))]


@pytest.mark.timeout(240)
def test_wall_clock_steps_under_both_processes(stepped_box: dict[str, Any]) -> None:
    srv, clock, db = stepped_box["srv"], stepped_box["clock"], stepped_box["db"]
    sync, player = stepped_box["sync"], stepped_box["player"]
    t_start = time.monotonic()
    assert wait_until(lambda: db.exists() and _active(db) == 1, 30), sync.text()
    assert wait_until(lambda: _showing(db) == "sang", 20), (_player(db), player.text())
    # The box's wall clock is Monday 11:00 and the player believes it.
    assert clock.now().weekday() == 0

    steps: list[tuple[str, float, str]] = [
        ("+1 h (Monday 12:00)", 3600, "chieu"),
        ("-1 h (Monday 11:00)", -3600, "sang"),
        ("+1 day (Tuesday 11:00: nothing scheduled)", 86400, "idle"),
        ("-1 day (Monday 11:00)", -86400, "sang"),
        ("-1 day (Sunday 11:00)", -86400, "sang"),
        ("+2 days 2 h (Tuesday 13:00)", 2 * 86400 + 7200, "chieu"),
    ]
    for n, (what, seconds, expected) in enumerate(steps, start=1):
        beats = len(_heartbeats(srv))
        clock.step(seconds)
        assert wait_until(partial(_is_showing, db, expected), 10), \
            f"after {what}: showing {_showing(db)!r}, expected {expected!r}"
        assert wait_until(partial(_jumps_seen, db, n), 10)
        # The daemon's jobs keep their rhythm: a step back by a day does not hold them.
        assert wait_until(partial(_beats_above, srv, beats),
                          2 * HEARTBEAT_S + 3), f"after {what}: no heartbeat\n{sync.text()}"
        assert sync.alive and player.alive, f"after {what}\n{sync.text()}\n{player.text()}"

    # The poll job was not held either: a new version becomes active by polling alone.
    pub = stepped_box["pub"]
    pub.write(_manifest(pub, 2))
    assert wait_until(lambda: _active(db) == 2, 30), sync.text()
    # ... and the heartbeat tells the province how far off the box's clock is.
    beats = len(_heartbeats(srv))
    assert wait_until(lambda: len(_heartbeats(srv)) > beats, 2 * HEARTBEAT_S + 3)
    skew = _heartbeats(srv)[-1]["clock"]["skew_to_source_s"]
    assert skew is not None and abs(skew + clock.offset) < 60, (skew, clock.offset)

    player.stop()
    elapsed = time.monotonic() - t_start
    sync.stop()

    server = {r["id"]: dict(r) for r in srv.db.execute(
        "SELECT id, item_id, duration_s, outcome, detail FROM plays WHERE board=?", (BOARD,))}
    box = _box_plays(db)
    assert not set(server) & set(box), "a record both on the server and still on the box"
    rows = [*server.values(), *box.values()]
    assert len(server) >= 5, "proof of play stopped reaching the server"
    played = [r for r in rows if r["outcome"] == "played" and r["detail"] != "player stopped"]
    assert len(played) >= 10, rows
    for r in played:  # a step neither cut an item short nor stretched it
        assert abs(r["duration_s"] - ITEM_S) < 0.5, r
    assert sum(r["duration_s"] for r in rows) <= elapsed + 1, "played longer than the run"
    for proc in (sync, player):
        assert "Traceback" not in proc.text(), proc.text()
    assert "sync jobs planned again" in sync.text()


def _box_plays(db: Path) -> dict[str, dict[str, Any]]:
    """Proof-of-play records still in the box's outbox, by id."""
    conn = store.connect(db, readonly=True)
    try:
        return {str(r["id"]): dict(r) for r in conn.execute(
            "SELECT id, item_id, duration_s, outcome, detail FROM plays")}
    finally:
        conn.close()
