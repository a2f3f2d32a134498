"""The soak (bench/soak.py) in short, under `make soak`: the whole box plays a mixed
playlist of 1-s items for a few minutes while the link to the source is cut and
restored and new versions are published; neither process dies or logs a traceback,
proof of play reaches the server, and memory, descriptors, threads and the database
stay bounded (figures of the long run in docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_short(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "4",
                        "--publish-every", "30", "--sample", "2", "--out",
                        str(tmp_path / "soak")], capture_output=True, text=True, cwd=ROOT,
                       timeout=840)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["died"] is None and s["tracebacks"] == 0
    assert s["link_cuts"] >= 1 and s["versions_published"] >= 6
    assert s["switches"] >= 100 and s["server_records"] > 0
    for proc in ("sync", "player"):
        rss = s[f"{proc}_rss_kb"]
        # Bounded: the last fifth of the run sits near the first (no steady climb).
        assert rss["last_fifth_median"] <= rss["first_fifth_median"] * 1.25 + 20_000, rss
        fds = s[f"{proc}_fds"]
        assert fds["max"] <= fds["first_fifth_median"] + 10, fds
        threads = s[f"{proc}_threads"]
        assert threads["max"] <= 40, threads
    assert s["db_bytes"]["max"] < 32 * 1024 * 1024, s["db_bytes"]
    assert (tmp_path / "soak.csv").stat().st_size > 0 and (tmp_path / "soak.png").is_file()


def _slope_mb_per_min(csv_path: Path, column: str, after_s: float) -> float:
    """Least-squares slope of ``column`` (KB) over time, from ``after_s`` on, in MB/min."""
    import csv
    import statistics

    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if float(r["t_s"]) >= after_s]
    t = [float(r["t_s"]) / 60 for r in rows]
    y = [float(r[column]) / 1024 for r in rows]
    return statistics.linear_regression(t, y).slope


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_player_memory_is_flat_with_a_clip_in_the_playlist(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "6",
                        "--publish-every", "0", "--no-flap", "--sample", "3", "--out",
                        str(tmp_path / "soak")], capture_output=True, text=True, cwd=ROOT,
                       timeout=840)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads(r.stdout[r.stdout.index("{"):])["video"], "no ffmpeg: no clip"
    slope = _slope_mb_per_min(tmp_path / "soak.csv", "player_rss_kb", after_s=120)
    print(f"player resident memory: {slope:+.2f} MB a minute")
    if slope >= 1.0:  # the run itself was sound (asserted above); only this is known bad
        pytest.xfail(f"DEFECT: the player's memory grows {slope:.1f} MB a minute with a "
                     "video clip in the playlist (about 1 MB per clip played; flat without "
                     "video; docs/RELIABILITY.md, Soak)")
