"""Emergency benchmark: from the end of ``eboard publish`` to the warning on screen.

    .venv/bin/python -m bench.bench_emergency                  # events and polling
    .venv/bin/python -m bench.bench_emergency --modes events --reps 10

Everything real, on loopback: ``serve-source`` on 127.0.0.1, ``eboard sync`` (daemon),
``eboard play`` on a private Xvfb display (xcb platform), ``eboard publish`` to the
server's URL with the operator token. For each repetition an emergency playlist
(risk level 4, red banner) is published over a normal one, and then withdrawn.

Two channels: ``events`` (long_poll = true, poll interval an hour: only the push can
bring it) and ``polling`` (long_poll = false, poll_interval = 5, its minimum, jitter
the default 20 %).

Three clocks, all wall time on the same machine, from the moment ``eboard publish``
exited:
- ``activated``: the sync daemon made the new manifest active in SQLite (read in the
  capture loop);
- ``screen``: screen capture of the Xvfb display (Pillow ``ImageGrab`` over XCB, as
  fast as it goes, about every 10–30 ms): the first frame where the risk-4 red covers
  more than half of the board; the time is when that grab returned (an upper bound);
- ``player``: the player's own record, ``emergency.since`` in its status row (the
  moment it opened the emergency's proof-of-play record).
``withdrawn`` is from the end of the withdrawing publish to the last red frame gone.
Needs Xvfb.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from PIL import Image, ImageGrab  # noqa: E402

from content_sync.db import store  # noqa: E402
from tests.kit.player import Xvfb  # noqa: E402

BOARD = "bench.emergency-01"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RED = (0xE0, 0x00, 0x00)  # risk level 4 (player/look.py)
SIZE = (640, 360)
NORMAL = """
[[playlists]]
id = "thong-bao"
[[playlists.items]]
id = "tb-1"
type = "text"
title = "THÔNG BÁO"
body = "Ủy ban nhân dân xã họp dân lúc 8 giờ sáng Chủ Nhật."
duration = 5
[[ticker]]
text = "Lịch tiêm chủng mở rộng: Thứ Bảy hằng tuần tại Trạm Y tế xã"
"""
EMERGENCY = NORMAL + """
[[playlists]]
id = "khan-cap-{n}"
priority = "emergency"
risk_level = 4
[[playlists.items]]
id = "lu-quet-{n}"
type = "text"
title = "CẢNH BÁO LŨ QUÉT ({n})"
body = "Mưa lớn gây nguy cơ lũ quét, sạt lở đất tại các bản ven suối Nậm Ma."
instructions = "Di chuyển ngay người và tài sản khỏi khu vực ven suối."
duration = 120
"""


def eboard(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True, text=True,
                       env=ENV, cwd=ROOT, timeout=120, check=False)
    if r.returncode != 0:
        raise SystemExit(f"eboard {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def red_share(img: Image.Image) -> float:
    raw = img.convert("RGB").reduce(8).tobytes()
    px = [raw[i:i + 3] for i in range(0, len(raw), 3)]
    hits = sum(1 for p in px if all(abs(a - b) <= 40 for a, b in zip(p, RED, strict=True)))
    return hits / max(1, len(px))


class Rig:
    def __init__(self, tmp: Path, display: str) -> None:
        self.tmp, self.display = tmp, display
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        eboard("keys", "generate", "--out", str(tmp / "keys"))
        (tmp / "tokens.toml").write_text(f'operator = "op"\n[boards]\n"{BOARD}" = "tok"\n')
        for name, value in (("operator.token", "op"), ("board.token", "tok")):
            (tmp / name).write_text(value + "\n")
            (tmp / name).chmod(0o600)
        (tmp / "data").mkdir()
        self.url = f"http://127.0.0.1:{free_port()}/"
        self.start("server", ["serve-source", "--data", str(tmp / "data"), "--port",
                              self.url.rsplit(":", 1)[1].strip("/"), "--tokens",
                              str(tmp / "tokens.toml")])
        self.db_path = tmp / "cache" / "eboard.db"

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "eboard", *args],
                                            env=env or ENV, cwd=ROOT, stdout=log, stderr=log,
                                            start_new_session=True)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def config(self, mode: str) -> Path:
        source = ("long_poll = true\npoll_interval = 3600" if mode == "events"
                  else "long_poll = false\npoll_interval = 5")
        path = self.tmp / f"{mode}.toml"
        path.write_text(f"""
[board]
id = "{BOARD}"
name = "UBND xã Pa Vệ Sủ"
[source]
url = "{self.url}"
token_file = "board.token"
trusted_keys = ["keys/eboard-signing.pub"]
{source}
[cache]
dir = "cache"
[display]
geometry = "{SIZE[0]}x{SIZE[1]}+0+0"
[status]
heartbeat_interval = 3600  # plays stay in the local outbox for play_started()
""", encoding="utf-8")
        return path

    def publish(self, toml: str) -> float:
        path = self.tmp / "playlist.toml"
        path.write_text(toml, encoding="utf-8")
        eboard("publish", "--to", self.url, "--token-file", str(self.tmp / "operator.token"),
               "--board", BOARD, "--key", str(self.tmp / "keys" / "eboard-signing.key"),
               str(path))
        return time.time()

    def activated_at(self, before: int) -> float:
        """When the sync daemon recorded the manifest that followed version ``before``
        (``manifests.received_at``, written in the activating transaction)."""
        conn = store.connect(self.db_path)
        try:
            row = conn.execute("SELECT received_at FROM manifests WHERE version>? "
                               "ORDER BY version LIMIT 1", (before,)).fetchone()
        finally:
            conn.close()
        if row is None:
            raise SystemExit("the emergency is on screen but no newer manifest is recorded")
        return datetime.fromisoformat(row[0]).timestamp()

    def manifest_mtime(self) -> float:
        """When the server stored the manifest the publish uploaded (its file's mtime)."""
        return (self.tmp / "data" / "boards" / BOARD / "manifest.json").stat().st_mtime_ns / 1e9

    def grab(self) -> Image.Image:
        return ImageGrab.grab(bbox=(0, 0, *SIZE), xdisplay=self.display)

    def active_version(self) -> int:
        conn = store.connect(self.db_path)
        try:
            return store.active_version(conn)
        finally:
            conn.close()

    def play_started(self, playlist_id: str, timeout: float) -> float | None:
        """started_at of the playlist's first proof-of-play record (written when it ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conn = store.connect(self.db_path)
            try:
                row = conn.execute("SELECT min(started_at) FROM plays WHERE playlist_id=?",
                                   (playlist_id,)).fetchone()
            finally:
                conn.close()
            if row[0]:
                return datetime.fromisoformat(row[0]).timestamp()
            time.sleep(0.1)
        return None

    def player_status(self) -> dict[str, Any]:
        conn = store.connect(self.db_path)
        try:
            return store.get_status(conn, "player") or {}
        finally:
            conn.close()


def one_run(rig: Rig, n: int, spread: float) -> dict[str, float]:
    # A publish lands at a random moment of the board's poll cycle, not just after a poll.
    time.sleep(random.uniform(0, spread))
    before = rig.active_version()
    started = time.time()
    t0 = rig.publish(EMERGENCY.format(n=n))
    accepted = rig.manifest_mtime()
    screen = None
    deadline = time.monotonic() + 30
    frames = 0
    while time.monotonic() < deadline:
        img = rig.grab()
        t = time.time()
        frames += 1
        if red_share(img) > 0.5:
            screen = t
            break
    if screen is None:
        raise SystemExit(f"run {n}: the emergency never reached the screen")
    activated = rig.activated_at(before)
    since = None
    wait_deadline = time.monotonic() + 10
    while since is None and time.monotonic() < wait_deadline:
        em = rig.player_status().get("emergency") or {}
        if em.get("playlist_id") == f"khan-cap-{n}":
            since = datetime.fromisoformat(em["since"]).timestamp()
        else:
            time.sleep(0.05)
    if since is None:
        raise SystemExit(f"run {n}: the player's status never named the emergency")
    time.sleep(random.uniform(0, spread))
    t1 = rig.publish(NORMAL)
    gone = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if red_share(rig.grab()) < 0.05:
            gone = time.time()
            break
    if gone is None:
        raise SystemExit(f"run {n}: the withdrawn emergency stayed on screen")
    record = rig.play_started(f"khan-cap-{n}", 10.0)
    time.sleep(1.0)
    return {"activated": activated - t0, "screen": screen - t0, "player": since - t0,
            "play_record": (record - t0) if record is not None else float("nan"),
            "withdrawn": gone - t1, "publish_s": t0 - started,
            "activated_from_accepted": activated - accepted,
            "screen_from_accepted": screen - accepted, "grabs_before": frames}


def summary(runs: list[dict[str, float]], key: str) -> str:
    xs = [r[key] for r in runs if r[key] == r[key]]  # NaN: no record found
    if not xs:
        return "no figures"
    return f"median {statistics.median(xs):.2f} s, max {max(xs):.2f} s"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="events,polling")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the runs as JSON too")
    args = ap.parse_args(argv)
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is needed (Debian package xvfb)")
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-emergency-") as d, \
            Xvfb(f"{SIZE[0]}x{SIZE[1]}x24") as x:
        rig = Rig(Path(d), x.display)
        try:
            wait(lambda: _up(rig.url), 20, "serve-source")
            rig.publish(NORMAL)
            g0 = time.perf_counter()
            for _ in range(50):
                red_share(rig.grab())
            grab_ms = (time.perf_counter() - g0) / 50 * 1000
            for mode in args.modes.split(","):
                cfg = rig.config(mode)
                rig.start("sync", ["sync", "--config", str(cfg)])
                wait(lambda: rig.active_version() > 0, 30, "the first sync")
                if "play" not in rig.procs:
                    env = {**ENV, "DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb"}
                    rig.start("play", ["play", "--config", str(cfg)], env)
                    wait(lambda: (rig.player_status().get("state") == "normal"), 30,
                         "the player's normal rotation")
                    time.sleep(1.0)
                if mode == "events":
                    wait(lambda: "events long-poll connected" in rig.log("sync"), 30,
                         "the events long-poll")
                runs = []
                for n in range(args.reps):
                    r = one_run(rig, len(results) * 1000 + n, 0.0 if mode == "events" else 6.0)
                    runs.append(r)
                    print(f"{mode:8s} run {n + 1}: activated {r['activated']:+.2f} s, "
                          f"screen {r['screen']:.2f} s, player {r['player']:.2f} s "
                          f"(play record {r['play_record']:.2f} s), "
                          f"withdrawn {r['withdrawn']:.2f} s", flush=True)
                results[mode] = runs
                rig.stop("sync")
        finally:
            for name in list(rig.procs):
                rig.stop(name)
            if "Traceback" in rig.log("play") + (rig.log("sync") if (Path(d) / "sync.log")
                                                  .exists() else ""):
                print("note: a traceback in the logs:\n" + rig.log("play")[-2000:])
    print()
    print(f"End of `eboard publish` → emergency on screen, loopback, {args.reps} runs each")
    for mode, runs in results.items():
        print(f"  {mode}:")
        for key in ("screen", "player", "play_record", "withdrawn", "activated_from_accepted",
                    "screen_from_accepted", "publish_s"):
            print(f"    {key:10s} {summary(runs, key)}")
    print(f"  one screen grab + red check takes {grab_ms:.1f} ms (the capture's resolution)")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


def _up(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
