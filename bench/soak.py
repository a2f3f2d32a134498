"""Soak: the whole box for a long while, with the source going up and down.

    .venv/bin/python -m bench.soak --minutes 10            # docs/soak/soak-*.csv and .png
    .venv/bin/python -m bench.soak --minutes 1 --out /tmp/s # a quick look

The real reference server on 127.0.0.1 sits behind a relay that cuts the link
(connection refused, open connections reset) for random spells; the real sync daemon
(``eboard sync``) and the real player (``eboard play``, Qt offscreen, header and ticker
on) run as subprocesses. The player plays a mixed playlist (still images, Vietnamese
text notices, a short H.264 clip when ffmpeg is installed) with short durations, and a
new version is published every ``--publish-every`` seconds (new images, same clip).
Every ``--sample`` seconds the soak records the resident memory, open file descriptors
and threads of both processes, the database size (with its WAL) and the proof-of-play
records, into ``<out>.csv``, and plots them into ``<out>.png`` (matplotlib).

At the end it prints a JSON summary: switches, first/last/max of each figure, and the
growth between the first and the last fifth of the run (the number to watch for
leaks). Exits 1 if either process died.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from PIL import Image, ImageDraw  # noqa: E402

from tests.kit.reliability import (  # noqa: E402
    BOARD,
    box_config,
    db_bytes,
    flaky_link,
    proc_stats,
    start_player,
    start_sync,
)
from tests.kit.status import reference_server  # noqa: E402
from tests.kit.sync import Publisher, make_keys  # noqa: E402

COLUMNS = ["t_s", "source_up", "sync_rss_kb", "sync_fds", "sync_threads", "player_rss_kb",
           "player_fds", "player_threads", "db_bytes", "outbox", "plays_total",
           "active_version", "server_records"]
WARM_UP_S = 30.0  # summary figures leave out the start-up (imports, first sync)


def picture(seed: int, size: tuple[int, int] = (1280, 720)) -> bytes:
    """A JPEG photo-like picture with a caption (different bytes per seed)."""
    rnd = random.Random(seed)
    im = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        d.ellipse((x, y, x + rnd.randrange(20, 300), y + rnd.randrange(20, 300)),
                  fill=tuple(rnd.randrange(256) for _ in range(3)))
    d.text((40, 40), f"Ảnh số {seed}", fill=(255, 255, 255))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def clip(path: Path) -> bytes | None:
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc=size=320x180:rate=25:duration=2", "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                       check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return path.read_bytes()


NOTICES = [
    ("THÔNG BÁO", "Ủy ban nhân dân xã thông báo lịch tiêm chủng mở rộng tháng 11 tại trạm y tế."),
    ("LỊCH HỌP DÂN", "Họp dân thôn Nậm Khao lúc 8 giờ sáng Chủ nhật tại nhà văn hóa thôn."),
    ("PHÒNG CHỐNG LŨ", "Đề nghị bà con không qua lại suối khi nước dâng cao."),
]


def publish(pub: Publisher, version: int, duration: float, video: bytes | None) -> None:
    media: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    for k in range(4):
        data = picture(version * 10 + k)
        h = pub.add_media(data)
        media[h] = {"size": len(data), "type": "image/jpeg"}
        items.append({"id": f"anh-{version}-{k}", "type": "image", "media": h,
                      "duration": duration})
        title, body = NOTICES[(version + k) % len(NOTICES)]
        items.append({"id": f"tb-{k}", "type": "text", "title": title, "body": body,
                      "duration": duration})
    if video is not None:
        h = pub.add_media(video)
        media[h] = {"size": len(video), "type": "video/mp4"}
        items.append({"id": "clip-1", "type": "video", "media": h})
    pub.write({"format": "eboard.manifest/1", "board": BOARD, "version": version,
               "issued_at": "2026-11-24T08:00:00+07:00", "media": media,
               "playlists": [{"id": "thong-bao", "title": "Thông báo", "items": items}],
               "ticker": [{"id": "t-1", "text": f"Bản tin số {version}: lịch tiêm chủng, "
                           "họp dân, phòng chống lũ quét."}]})


def db_counts(db: Path) -> tuple[int, int, int]:
    """(outbox, plays ever recorded, active version), read-only."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0, 0, 0
    try:
        outbox = conn.execute("SELECT count(*) FROM plays").fetchone()[0]
        hist = conn.execute("SELECT coalesce(sum(plays), 0) FROM play_history").fetchone()[0]
        active = conn.execute("SELECT value FROM meta WHERE key='active_version'").fetchone()
        return int(outbox), int(outbox) + int(hist), int(active[0]) if active else 0
    except sqlite3.Error:
        return 0, 0, 0
    finally:
        conn.close()


def heap_env(heap_dir: Path | None, every: float, frames: int = 12) -> dict[str, str]:
    """Environment that turns on bench/heapwatch in a started process (empty: off).
    ``frames`` = 0: malloc figures and object counts only, without tracemalloc (whose
    own bookkeeping doubles what malloc holds)."""
    if heap_dir is None:
        return {}
    return {"PYTHONPATH": f"{ROOT / 'bench' / 'heapwatch'}:{ROOT}",
            **({"PYTHONTRACEMALLOC": str(frames)} if frames > 0 else {}),
            "EBOARD_HEAP_DIR": str(heap_dir), "EBOARD_HEAP_EVERY": str(every)}


def run(minutes: float, out: Path, duration: float, publish_every: float, sample: float,
        seed: int, with_video: bool = True, flap: bool = True,
        heap_dir: Path | None = None, heap_every: float = 300.0, heap_frames: int = 12,
        extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    outages: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="eboard-soak-") as tmp:
        t = Path(tmp)
        key, pubkey = make_keys(t / "keys")
        video = clip(t / "clip.mp4") if with_video else None
        with reference_server(t / "data") as srv, flaky_link(srv.port) as link:
            pub = Publisher(t / "data", key, board=BOARD)
            version = 1
            publish(pub, version, duration, video)
            cfg = box_config(t / "box", link.url, [pubkey],
                             source={"poll_interval": 10},
                             display={"geometry": "480x270+0+0", "header": True,
                                      "ticker": True},
                             status={"heartbeat_interval": 10, "screenshot_interval": 30})
            db = t / "box" / "cache" / "eboard.db"
            logs = t / "logs"
            watch = {**heap_env(heap_dir, heap_every, heap_frames), **(extra_env or {})}
            sync, player = start_sync(cfg, logs, **watch), start_player(cfg, logs, **watch)
            try:  # the box's processes go with the soak, even when it is stopped
                t0 = time.monotonic()
                end = t0 + minutes * 60
                next_publish = t0 + publish_every if publish_every > 0 else float("inf")
                next_flip = t0 + rnd.uniform(30, 90) if flap else float("inf")
                down_since = 0.0
                died = ""
                while time.monotonic() < end:
                    now = time.monotonic()
                    if now >= next_flip:
                        if link.is_up:
                            link.down()
                            down_since = now - t0
                            next_flip = now + rnd.uniform(5, 60)
                        else:
                            link.up()
                            outages.append((down_since, now - t0))
                            next_flip = now + rnd.uniform(30, 120)
                    if now >= next_publish:
                        version += 1
                        publish(pub, version, duration, video)
                        next_publish = now + publish_every
                    s, p = proc_stats(sync.pid), proc_stats(player.pid)
                    if s is None or p is None or not sync.alive() or not player.alive():
                        died = "sync" if not sync.alive() else "player"
                        break
                    outbox, plays, active = db_counts(db)
                    server = srv.db.play_totals(BOARD)["records"]
                    rows.append({"t_s": round(now - t0, 1), "source_up": int(link.is_up),
                                 "sync_rss_kb": s.rss_kb, "sync_fds": s.fds,
                                 "sync_threads": s.threads, "player_rss_kb": p.rss_kb,
                                 "player_fds": p.fds, "player_threads": p.threads,
                                 "db_bytes": db_bytes(db), "outbox": outbox, "plays_total": plays,
                                 "active_version": active, "server_records": server})
                    time.sleep(sample)
                if not link.is_up:
                    outages.append((down_since, time.monotonic() - t0))
                    link.up()
            finally:
                rc_player, rc_sync = player.stop(), sync.stop()
            tracebacks = sync.text().count("Traceback") + player.text().count("Traceback")
            skipped = player.text().count("skipped ")
            out.parent.mkdir(parents=True, exist_ok=True)
            for proc in (sync, player):  # kept beside the figures, to read what happened
                out.with_name(f"{out.name}-{proc.name}.log").write_text(proc.text())
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    summary = summarise(rows, minutes, duration, version, link.cuts, died, tracebacks, skipped,
                        video is not None, rc_player, rc_sync)
    plot(rows, outages, out.with_suffix(".png"), summary)
    return summary


def summarise(rows: list[dict[str, Any]], minutes: float, duration: float, versions: int,
              cuts: int, died: str, tracebacks: int, skipped: int, video: bool,
              rc_player: int, rc_sync: int) -> dict[str, Any]:
    warm = [r for r in rows if r["t_s"] >= WARM_UP_S] or rows

    def fig(col: str) -> dict[str, float]:
        vals = [r[col] for r in warm]
        n = max(1, len(vals) // 5)
        half = [r for r in warm if r["t_s"] >= warm[-1]["t_s"] / 2]
        slope = (statistics.linear_regression([r["t_s"] / 60 for r in half],
                                              [r[col] for r in half]).slope
                 if len(half) >= 2 and half[0]["t_s"] != half[-1]["t_s"] else 0.0)
        return {"first": vals[0], "last": vals[-1], "max": max(vals),
                "first_fifth_median": statistics.median(vals[:n]),
                "last_fifth_median": statistics.median(vals[-n:]),
                "slope_per_min_second_half": round(slope, 3)}

    return {
        "minutes": minutes, "item_duration_s": duration, "samples": len(rows),
        "switches": rows[-1]["plays_total"] if rows else 0,
        "figures_from_s": WARM_UP_S,
        "versions_published": versions, "link_cuts": cuts, "video": video,
        "died": died or None, "tracebacks": tracebacks, "items_skipped": skipped,
        "exit_codes": {"player": rc_player, "sync": rc_sync},
        **({c: fig(c) for c in COLUMNS[2:9]} if rows else {}),
        "server_records": rows[-1]["server_records"] if rows else 0,
        "outbox_max": max((r["outbox"] for r in rows), default=0),
    }


def plot(rows: list[dict[str, Any]], outages: list[tuple[float, float]], path: Path,
         summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t_s"] / 60 for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = [
        ("Resident memory (MB)", [("sync_rss_kb", "sync"), ("player_rss_kb", "player")], 1024),
        ("Open file descriptors", [("sync_fds", "sync"), ("player_fds", "player")], 1),
        ("Threads", [("sync_threads", "sync"), ("player_threads", "player")], 1),
        ("Database + WAL (KB)", [("db_bytes", "eboard.db")], 1024),
    ]
    for ax, (title, series, div) in zip(axes.flat, panels, strict=True):
        for col, label in series:
            ax.plot(t, [r[col] / div for r in rows], label=label)
        for a, b in outages:
            ax.axvspan(a / 60, b / 60, color="red", alpha=0.12, lw=0)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    for ax in axes[1]:
        ax.set_xlabel("minutes (red: source unreachable)")
    fig.suptitle(f"eboard soak: {summary['switches']} switches of {summary['item_duration_s']:g}-s "
                 f"items, {summary['versions_published']} versions, "
                 f"{summary['link_cuts']} link cuts")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "soak" / "soak-10min",
                    help="path without suffix for the .csv and .png")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per item")
    ap.add_argument("--publish-every", type=float, default=60.0, help="0 = publish once")
    ap.add_argument("--no-video", action="store_true", help="images and text only")
    ap.add_argument("--no-flap", action="store_true", help="keep the source up")
    ap.add_argument("--sample", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--heap-dir", type=Path, default=None,
                    help="trace both processes' heaps (bench/heapwatch) into this folder")
    ap.add_argument("--heap-every", type=float, default=300.0,
                    help="seconds between heap samples and snapshots")
    ap.add_argument("--heap-frames", type=int, default=12,
                    help="tracemalloc frames per allocation; 0 = no tracemalloc")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for both processes (e.g. GLIBC_TUNABLES=...)")
    a = ap.parse_args()
    # SIGTERM (kill, a CI timeout) unwinds like Ctrl-C: the box's processes are stopped
    # and the temporary folder removed, instead of a sync daemon and a player left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    extra = dict(e.split("=", 1) for e in a.env)
    summary = run(a.minutes, a.out, a.duration, a.publish_every, a.sample, a.seed,
                  not a.no_video, not a.no_flap, a.heap_dir, a.heap_every, a.heap_frames,
                  extra)
    print(json.dumps(summary, indent=1))
    return 1 if summary["died"] or summary["tracebacks"] else 0


if __name__ == "__main__":
    sys.exit(main())
