"""The emergency path end to end through the real commands and a real window.

``eboard publish`` (to the reference server, operator token) → ``serve-source`` on
127.0.0.1 → the events long-poll wakes ``eboard sync`` (poll interval an hour, so only
the push can bring it) → SQLite → ``PlayerWindow`` (real Qt, offscreen) → status row →
heartbeat → ``GET /boards.json``. Nothing of ours is mocked; waits are generous and
no timing is asserted (``bench/bench_emergency.py`` measures the seconds).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from PySide6.QtGui import QImage

from content_sync.db import store
from content_sync.protocol import manifest as mf
from kiosk_config import load_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BOARD = "laichau.muongte.pavesu-01"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
RED = (0xE0, 0x00, 0x00)  # risk level 4 (look.RISK_COLOURS)
NORMAL_BG = (0x0B, 0x25, 0x45)  # look.PALETTES["normal"]
WHITE = (255, 255, 255)
HEADLINE = "CẢNH BÁO LŨ QUÉT"
OPERATOR_TOKEN = "op-emergency"
BOARD_TOKEN = "tok-emergency"

NORMAL_TOML = """
[[playlists]]
id = "thong-bao"
title = "Thông báo"
[[playlists.items]]
id = "tb-hop"
type = "text"
title = "THÔNG BÁO"
body = "Ủy ban nhân dân xã họp dân lúc 8 giờ sáng Chủ Nhật."
duration = 2
[[playlists.items]]
id = "tb-tiem"
type = "text"
title = "TIÊM CHỦNG"
body = "Lịch tiêm chủng mở rộng: Thứ Bảy hằng tuần tại Trạm Y tế xã."
duration = 2

[[ticker]]
text = "Lịch tiêm chủng mở rộng tại Trạm Y tế xã"
"""


def emergency_toml(risk_level: int = 4, end: datetime | None = None,
                   headline: str = HEADLINE) -> str:
    """The normal playlist plus an emergency one (optionally ending at ``end``)."""
    schedule = f"[playlists.schedule]\nend = {end.isoformat(timespec='seconds')}\n" if end else ""
    return NORMAL_TOML + f"""
[[playlists]]
id = "khan-cap-lu"
title = "Cảnh báo lũ quét"
priority = "emergency"
risk_level = {risk_level}
{schedule}
[[playlists.items]]
id = "lu-quet-1"
type = "text"
title = "{headline}"
body = "Mưa lớn gây nguy cơ lũ quét, sạt lở đất tại các bản ven suối Nậm Ma."
instructions = "Di chuyển ngay người và tài sản khỏi khu vực ven suối."
duration = 2
"""


# --- the real commands -------------------------------------------------------------------

def eboard(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True, text=True,
                       env=ENV, cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 0, f"eboard {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def share_of(img: QImage, colour: tuple[int, int, int], tol: int = 40) -> float:
    """Fraction of sampled pixels close to ``colour``."""
    hits = total = 0
    for y in range(0, img.height(), 4):
        for x in range(0, img.width(), 4):
            c = img.pixelColor(x, y)
            total += 1
            if all(abs(a - b) <= tol for a, b in zip((c.red(), c.green(), c.blue()), colour,
                                                      strict=True)):
                hits += 1
    return hits / max(total, 1)


@dataclass
class Chain:
    """Keys, a running ``serve-source``, and helpers to publish and run ``eboard sync``."""

    tmp: Path
    url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    check_log: bool = True  # no traceback in the sync daemon's log

    @property
    def key(self) -> Path:
        return self.tmp / "keys" / "eboard-signing.key"

    def publish(self, playlist_toml: str) -> float:
        """``eboard publish`` to the server; the wall time at which the command ended."""
        path = self.tmp / f"playlist-{time.monotonic_ns()}.toml"
        path.write_text(playlist_toml, encoding="utf-8")
        eboard("publish", "--to", self.url, "--token-file", str(self.tmp / "operator.token"),
               "--board", BOARD, "--key", str(self.key), str(path))
        return time.time()

    def config(self, display: str = "", extra: str = "", source: str = "") -> Path:
        path = self.tmp / "eboard.toml"
        path.write_text(f"""
[board]
id = "{BOARD}"
name = "UBND xã Pa Vệ Sủ"
[source]
url = "{self.url}"
token_file = "board.token"
trusted_keys = ["keys/eboard-signing.pub"]
poll_interval = 3600
long_poll = true
{source}
[cache]
dir = "cache"
[display]
geometry = "320x180+0+0"
header = false
ticker = true
{display}
[status]
heartbeat_interval = 5
{extra}
""", encoding="utf-8")
        return path

    def start_sync(self, config_path: Path) -> subprocess.Popen[bytes]:
        log = (self.tmp / "sync.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "eboard", "sync", "--config",
                                 str(config_path)], env=ENV, cwd=ROOT, stdout=log, stderr=log,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def sync_log(self) -> str:
        p = self.tmp / "sync.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def last_status(self) -> dict[str, Any]:
        for b in requests.get(f"{self.url}boards.json", timeout=5).json():
            if b["board"] == BOARD:
                return dict(b["status"])
        return {}


@pytest.fixture()
def chain(tmp_path: Path) -> Iterator[Chain]:
    eboard("keys", "generate", "--out", str(tmp_path / "keys"))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'operator = "{OPERATOR_TOKEN}"\n[boards]\n"{BOARD}" = "{BOARD_TOKEN}"\n')
    tokens.chmod(0o600)
    for name, value in (("operator.token", OPERATOR_TOKEN), ("board.token", BOARD_TOKEN)):
        (tmp_path / name).write_text(value + "\n")
        (tmp_path / name).chmod(0o600)
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "eboard", "serve-source", "--data", str(data), "--port", str(port),
         "--tokens", str(tokens)], env=ENV, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    c = Chain(tmp_path, f"http://127.0.0.1:{port}/", [server])
    assert wait_for(lambda: requests.get(c.url, timeout=1).ok, 20), "serve-source did not start"
    yield c
    for proc in reversed(c.procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert not c.check_log or "Traceback" not in c.sync_log(), c.sync_log()


def active_version(config_path: Path) -> int:
    conn = store.connect(load_config(config_path).db_path)
    try:
        return store.active_version(conn)
    finally:
        conn.close()


def player_status(config_path: Path) -> dict[str, Any]:
    conn = store.connect(load_config(config_path).db_path)
    try:
        return store.get_status(conn, "player") or {}
    finally:
        conn.close()


def open_window(config_path: Path, qtbot: Any) -> Any:
    from player.window import PlayerWindow

    window = PlayerWindow(load_config(config_path))
    qtbot.addWidget(window)
    window.show()
    return window


def red_share(window: Any) -> float:
    return share_of(window.grab().toImage(), RED)


# --- from the province -------------------------------------------------------------------

def test_emergency_preempts_reports_and_withdrawal_resumes(chain: Chain, qtbot: Any) -> None:
    cfg = chain.config()
    chain.publish(NORMAL_TOML)
    chain.start_sync(cfg)
    assert wait_for(lambda: active_version(cfg) > 0), chain.sync_log()
    window = open_window(cfg, qtbot)
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=15000)
    assert share_of(window.grab().toImage(), NORMAL_BG) > 0.3
    started: list[tuple[str, str, float]] = []
    window.item_started.connect(lambda pl, it: started.append((pl, it, time.time())))
    # The sync daemon reached the events channel before the push (poll interval: an hour).
    assert wait_for(lambda: "events long-poll connected" in chain.sync_log(), 20)

    published = chain.publish(emergency_toml(risk_level=4))
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=20000)
    shown_at = time.time()
    # The banner in the colour of risk level 4 fills the screen; its text is white.
    qtbot.waitUntil(lambda: red_share(window) > 0.6, timeout=5000)
    grab = window.grab().toImage()
    assert share_of(grab, WHITE, tol=60) > 0.005
    assert share_of(grab, NORMAL_BG) < 0.02
    assert window.current.playlist.id == "khan-cap-lu"
    assert window.ticker.text == f"CẢNH BÁO: {HEADLINE}"  # the ticker repeats the headline

    # The player's own status row: which emergency, since when.
    def status_emergency() -> dict[str, Any] | None:
        e = player_status(cfg).get("emergency")
        return e if isinstance(e, dict) else None

    assert wait_for(lambda: status_emergency() is not None, 10)
    em = status_emergency()
    assert em is not None
    assert em["playlist_id"] == "khan-cap-lu" and em["headline"] == HEADLINE
    assert em["risk_level"] == 4
    since = datetime.fromisoformat(em["since"]).timestamp()
    assert published - 1 <= since <= shown_at + 1

    # Normal rotation stops: over 6 s (normal items last 2 s) only the emergency starts,
    # and "since" stays the moment it first came on screen.
    qtbot.wait(6000)
    after = [(pl, it) for pl, it, t in started if t >= since]
    assert after and all(pl == "khan-cap-lu" for pl, _ in after), after
    assert window.mode == "emergency"
    em_later = status_emergency()
    assert em_later is not None and em_later["since"] == em["since"]

    # The heartbeat carries it to the province (GET /boards.json, last status).
    def heartbeat_emergency() -> dict[str, Any] | None:
        e = (chain.last_status().get("player") or {}).get("emergency")
        return e if isinstance(e, dict) else None

    assert wait_for(lambda: heartbeat_emergency() is not None, 20), chain.last_status()
    hb = heartbeat_emergency()
    assert hb is not None
    assert hb["playlist_id"] == "khan-cap-lu" and hb["since"] == em["since"]
    assert hb["headline"] == HEADLINE and hb["risk_level"] == 4
    assert chain.last_status()["player"]["priority"] == "emergency"

    # Withdrawal: a newer manifest without it; normal rotation resumes at once.
    withdrawn = chain.publish(NORMAL_TOML)
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=20000)
    assert window.current.playlist.id == "thong-bao"
    assert red_share(window) < 0.02
    assert window.ticker.text.startswith("Lịch tiêm chủng")
    assert wait_for(lambda: player_status(cfg).get("emergency") is None, 10)
    n_before = len([1 for pl, _, t in started if t >= withdrawn and pl == "thong-bao"])
    qtbot.wait(4500)  # normal items rotate again
    normal_after = [it for pl, it, t in started if t >= withdrawn and pl == "thong-bao"]
    assert len(normal_after) > n_before and len(set(normal_after)) == 2, normal_after
    assert wait_for(lambda: (chain.last_status().get("player") or {}).get("emergency") is None
                    and chain.last_status()["player"]["playlist_id"] == "thong-bao", 20)
    window.close()


def test_emergency_whose_schedule_ends_leaves_by_itself(chain: Chain, qtbot: Any) -> None:
    cfg = chain.config()
    chain.publish(NORMAL_TOML)
    chain.start_sync(cfg)
    assert wait_for(lambda: active_version(cfg) > 0), chain.sync_log()
    window = open_window(cfg, qtbot)
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=15000)
    assert wait_for(lambda: "events long-poll connected" in chain.sync_log(), 20)

    end = datetime.now(VN).replace(microsecond=0) + timedelta(seconds=6)
    chain.publish(emergency_toml(risk_level=5, end=end))
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=9000)
    version = active_version(cfg)
    assert share_of(window.grab().toImage(), (0x7B, 0x1F, 0xA2)) > 0.5  # level 5: purple
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=25000)
    assert datetime.now(VN) >= end - timedelta(seconds=1)
    assert window.current.playlist.id == "thong-bao"
    assert share_of(window.grab().toImage(), NORMAL_BG) > 0.3
    # Nobody withdrew it: the manifest on the board still lists it.
    assert active_version(cfg) == version
    conn = store.connect(load_config(cfg).db_path)
    try:
        stored = store.active_manifest(conn)
        assert stored is not None
        assert "khan-cap-lu" in {pl.id for pl in mf.parse(stored.body).playlists}
    finally:
        conn.close()
    window.close()


def test_emergency_wakes_a_screen_blanked_by_on_hours(chain: Chain, qtbot: Any) -> None:
    now = datetime.now(VN)
    on_hours = f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"
    cfg = chain.config(display=f'on_hours = "{on_hours}"')
    chain.publish(NORMAL_TOML)
    chain.start_sync(cfg)
    assert wait_for(lambda: active_version(cfg) > 0), chain.sync_log()
    window = open_window(cfg, qtbot)
    qtbot.waitUntil(lambda: window.mode == "blanked", timeout=15000)
    assert share_of(window.grab().toImage(), (0, 0, 0), tol=8) > 0.95
    assert wait_for(lambda: "events long-poll connected" in chain.sync_log(), 20)

    def screen_state() -> str | None:
        return (chain.last_status().get("screen") or {}).get("state")

    assert wait_for(lambda: screen_state() == "blanked_by_schedule", 20), chain.last_status()

    chain.publish(emergency_toml(risk_level=4))
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=20000)
    qtbot.waitUntil(lambda: red_share(window) > 0.6, timeout=5000)
    assert wait_for(lambda: (player_status(cfg).get("screen") or {}).get("blanked") is False
                    and player_status(cfg).get("state") == "emergency", 10)
    # The province sees the screen on, carrying the emergency.
    assert wait_for(lambda: screen_state() == "on", 20), chain.last_status()

    chain.publish(NORMAL_TOML)  # withdrawn: the power schedule blanks the screen again
    qtbot.waitUntil(lambda: window.mode == "blanked", timeout=20000)
    assert share_of(window.grab().toImage(), (0, 0, 0), tol=8) > 0.95
    window.close()
