"""Player benchmarks, under Xvfb, each beside a baseline in the same run.

    .venv/bin/python -m bench.bench_player                  # all of them
    .venv/bin/python -m bench.bench_player coldstart ticker # some of them

1. ``coldstart``: process start to the first content frame painted, from the cache
   (``eboard play``), against a bare PySide6 program that paints one image.
2. ``ticker``: frame interval p50/p99 and CPU % while a still image and the ticker
   run, against a hand-written ``drawText`` ticker on a 16 ms QTimer.
3. ``memory``: resident memory after start and after 5,000 item switches, against
   an empty PySide6 window.
4. ``black``: black frames on the screen over a mixed playlist (image, text, video,
   video), counted from an ffmpeg x11grab recording with the blackframe filter,
   against ``cvlc`` playing the same files as a plain playlist.

Needs Xvfb, ffmpeg and vlc (Debian packages xvfb, ffmpeg, vlc-bin).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from content_sync.db import store  # noqa: E402
from tests.kit.player import Board, Xvfb, make_clip, make_config, playlist, png  # noqa: E402

SIZE = (1280, 720)
GEOMETRY = f"{SIZE[0]}x{SIZE[1]}+0+0"
BASELINE = str(ROOT / "bench" / "bench_player_baseline.py")
TICKER = [{"id": "t", "text": "Lịch tiêm chủng mở rộng tháng 11 — Ủy ban nhân dân xã "
           "Pa Vệ Sủ thông báo tới toàn thể nhân dân"}]


def write_conf(d: Path, **display: Any) -> Path:
    lines = [f'[cache]\ndir = "{d / "cache"}"\n[display]\ngeometry = "{GEOMETRY}"\nvolume = 0\n']
    for k, v in display.items():
        lines.append(f"{k} = {json.dumps(v)}\n")
    conf = d / "eboard.toml"
    conf.write_text("".join(lines), encoding="utf-8")
    return conf


def board(d: Path) -> Board:
    return Board(make_config(d, geometry=GEOMETRY, volume=0))


def env_for(x: Xvfb) -> dict[str, str]:
    return {**os.environ, "DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb"}


def player(conf: Path, x: Xvfb, duration: float, *extra: str) -> subprocess.Popen[str]:
    """``eboard play`` under Xvfb; its log goes to ``player.log`` beside the config (a
    pipe nobody reads would fill up and stop it)."""
    log = (conf.parent / "player.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "eboard", "play", "--config", str(conf), "--duration",
         str(duration), *extra], env=env_for(x), cwd=ROOT, stdout=log, stderr=log, text=True)


def first_content(conf: Path) -> list[float]:
    log = (conf.parent / "player.log").read_text()
    return [float(m) for m in re.findall(r"first content on screen .*monotonic ([0-9.]+)", log)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def row(name: str, *cols: object) -> None:
    print(f"  {name:<34}" + "".join(f"{c!s:>16}" for c in cols))


# ---- 1. cold start ----------------------------------------------------------------------
def bench_coldstart(tmp: Path, runs: int = 5) -> dict[str, Any]:
    d = tmp / "cold"
    b = board(d)
    photo = png((40, 120, 200), (1920, 1080), fmt="JPEG")
    sha = b.add_media(photo, "image/jpeg")
    b.publish([playlist("p", [{"id": "i", "type": "image", "media": sha, "duration": 30}])],
              TICKER)
    b.close()
    jpg = tmp / "photo.jpg"
    jpg.write_bytes(photo)
    conf = write_conf(d)
    ours: list[float] = []
    base: list[float] = []
    with Xvfb(f"{SIZE[0]}x{SIZE[1]}x24") as x:
        for _ in range(runs):
            t0 = time.monotonic()
            seen = len(first_content(conf)) if (d / "player.log").exists() else 0
            p = player(conf, x, 2.5)
            p.wait(timeout=60)
            ours += [t - t0 for t in first_content(conf)[seen:]]
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, BASELINE, "coldstart", str(jpg),
                                  f"{SIZE[0]}x{SIZE[1]}"], env=env_for(x), capture_output=True,
                                 text=True, timeout=60).stdout
            m = re.search(r"first-paint ([0-9.]+)", out)
            if m:
                base.append(float(m.group(1)) - t0)
    res = {"eboard_ms": [round(v * 1000) for v in ours],
           "baseline_ms": [round(v * 1000) for v in base]}
    print("cold start to first content frame (1920x1080 JPEG on a 1280x720 screen), ms")
    row("", "median", "max")
    row("eboard play (from the cache)", round(statistics.median(ours) * 1000),
        round(max(ours) * 1000))
    row("bare PySide6 image window", round(statistics.median(base) * 1000),
        round(max(base) * 1000))
    return res


# ---- 2. ticker ----------------------------------------------------------------------------
def bench_ticker(tmp: Path, seconds: float = 12.0) -> dict[str, Any]:
    d = tmp / "ticker"
    b = board(d)
    sha = b.add_media(png((40, 120, 200), (1920, 1080), fmt="JPEG"), "image/jpeg")
    b.publish([playlist("p", [{"id": "i", "type": "image", "media": sha, "duration": 600}])],
              TICKER)
    conf = write_conf(d)
    with Xvfb(f"{SIZE[0]}x{SIZE[1]}x24") as x:
        p = player(conf, x, seconds)
        time.sleep(2.0)
        c0, t0 = cpu_seconds(p.pid), time.monotonic()
        time.sleep(seconds - 3.0)
        cpu = (cpu_seconds(p.pid) - c0) / (time.monotonic() - t0) * 100
        p.wait(timeout=60)
        frames = (store.get_status(b.conn, "player") or {}).get("frames", {})
        q = subprocess.Popen([sys.executable, BASELINE, "ticker", str(seconds),
                              f"{SIZE[0]}x{SIZE[1]}"], env=env_for(x), stdout=subprocess.PIPE,
                             text=True)
        time.sleep(2.0)
        c0, t0 = cpu_seconds(q.pid), time.monotonic()
        time.sleep(seconds - 3.0)
        base_cpu = (cpu_seconds(q.pid) - c0) / (time.monotonic() - t0) * 100
        out, _ = q.communicate(timeout=60)
    b.close()
    base = json.loads(out.splitlines()[0])
    print("ticker frame interval (Xvfb, 1280x720, timer at the screen's 60 Hz) and CPU")
    row("", "p50 ms", "p99 ms", "max ms", "CPU %")
    row("eboard ticker over a still image", frames.get("p50_ms"), frames.get("p99_ms"),
        frames.get("max_ms"), round(cpu, 1))
    row("naive drawText ticker, 16 ms timer", round(base["p50_ms"], 2), round(base["p99_ms"], 2),
        round(base["max_ms"], 2), round(base_cpu, 1))
    return {"eboard": {**frames, "cpu_pct": round(cpu, 1)},
            "baseline": {**base, "cpu_pct": round(base_cpu, 1)}}


# ---- 3. memory ----------------------------------------------------------------------------
def bench_memory(tmp: Path, switches: int = 5000) -> dict[str, Any]:
    d = tmp / "memory"
    b = board(d)
    items: list[dict[str, Any]] = []
    for k, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        sha = b.add_media(png(colour, (1920, 1080), fmt="JPEG"), "image/jpeg")
        items.append({"id": f"i{k}", "type": "image", "media": sha, "duration": 0.01})
    for k in range(3):
        items.append({"id": f"t{k}", "type": "text", "title": f"THÔNG BÁO SỐ {k}",
                      "body": "Ủy ban nhân dân xã thông báo lịch tiếp dân " * (k + 1),
                      "duration": 0.01})
    b.publish([playlist("p", items)], TICKER)
    conf = write_conf(d)
    with Xvfb(f"{SIZE[0]}x{SIZE[1]}x24") as x:
        p = player(conf, x, 3600)
        time.sleep(3.0)
        start = rss_mb(p.pid)
        t0 = time.monotonic()
        while store.outbox_size(b.conn) < switches and time.monotonic() - t0 < 600:
            time.sleep(0.5)
        n = store.outbox_size(b.conn)
        elapsed = time.monotonic() - t0
        after = rss_mb(p.pid)
        p.terminate()
        p.wait(timeout=60)
        q = subprocess.Popen([sys.executable, BASELINE, "idle", "3", f"{SIZE[0]}x{SIZE[1]}"],
                             env=env_for(x), stdout=subprocess.PIPE, text=True)
        out, _ = q.communicate(timeout=60)
    b.close()
    base = int(re.search(r"rss-kb (\d+)", out).group(1)) / 1024  # type: ignore[union-attr]
    print(f"resident memory, MB ({n} switches of 3 images and 3 texts in {elapsed:.0f} s)")
    row("", "after start", f"after {n}", "growth")
    row("eboard play", round(start, 1), round(after, 1), round(after - start, 1))
    row("empty PySide6 window", round(base, 1), "", "")
    return {"start_mb": round(start, 1), "after_mb": round(after, 1), "switches": n,
            "seconds": round(elapsed), "baseline_mb": round(base, 1)}


# ---- 4. black frames ------------------------------------------------------------------------
def count_black(display: str, seconds: float, size: str) -> tuple[int, int]:
    """(black frames, all frames) in an x11grab recording of ``seconds``."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-f", "x11grab", "-framerate", "25",
         "-video_size", size, "-i", display, "-t", str(seconds),
         "-vf", "blackframe=amount=90:threshold=24", "-f", "null", "-"],
        capture_output=True, text=True, timeout=seconds + 60).stderr
    black = len(re.findall(r"\[Parsed_blackframe.*frame:\d+", out))
    m = re.findall(r"frame=\s*(\d+)", out)
    return black, int(m[-1]) if m else 0


def bench_black(tmp: Path, seconds: float = 20.0) -> dict[str, Any]:
    d = tmp / "black"
    b = board(d)
    img = png((200, 60, 40), (1280, 720), fmt="JPEG")
    text_png = png((11, 37, 69), (1280, 720))  # for cvlc, the notice as a picture
    a = make_clip(tmp / "a.mp4", "green", 2.0, "640x360")
    c = make_clip(tmp / "c.mp4", "blue", 2.0, "640x360")
    s_img = b.add_media(img, "image/jpeg")
    s_a, s_c = b.add_file(a, "video/mp4"), b.add_file(c, "video/mp4")
    b.publish([playlist("p", [
        {"id": "img", "type": "image", "media": s_img, "duration": 1.5},
        {"id": "txt", "type": "text", "title": "THÔNG BÁO", "body": "Lịch tiếp dân",
         "duration": 1.5},
        {"id": "a", "type": "video", "media": s_a},
        {"id": "c", "type": "video", "media": s_c},
    ])])
    b.close()
    conf = write_conf(d, header=False, ticker=False)
    (tmp / "img.jpg").write_bytes(img)
    (tmp / "txt.png").write_bytes(text_png)
    size = f"{SIZE[0]}x{SIZE[1]}"
    with Xvfb(f"{size}x24") as x:
        p = player(conf, x, seconds + 6)
        time.sleep(3.0)
        ours = count_black(x.display, seconds, size)
        p.wait(timeout=60)
    # VLC refuses to run as root: run it as nobody, with the files readable to it.
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        tmp.chmod(0o755)
        for f in (tmp / "img.jpg", tmp / "txt.png", a, c):
            f.chmod(0o644)
    with Xvfb(f"{size}x24") as x:
        vlc = subprocess.Popen(
            [*as_user, "cvlc", "--quiet", "--no-audio", "--fullscreen", "--no-video-title-show",
             "--image-duration=1.5", "--loop", str(tmp / "img.jpg"), str(tmp / "txt.png"),
             str(a), str(c)], env={**env_for(x), "HOME": str(tmp)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(3.0)
        theirs = count_black(x.display, seconds, size)
        vlc.terminate()
        vlc.wait(10)
    print(f"black frames on screen in {seconds:g} s at 25 fps (image, text, video, video, loop)")
    row("", "black", "frames")
    row("eboard play", *ours)
    row("cvlc, same files as a playlist", *theirs)
    return {"eboard": {"black": ours[0], "frames": ours[1]},
            "cvlc": {"black": theirs[0], "frames": theirs[1]}}


BENCHES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "coldstart": bench_coldstart, "ticker": bench_ticker, "memory": bench_memory,
    "black": bench_black,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    for tool in ("Xvfb", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"bench_player: {tool} is not installed (make setup installs it)")
            return 2
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-player-") as t:
        for name in names:
            results[name] = BENCHES[name](Path(t))
            print()
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
