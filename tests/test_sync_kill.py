"""Kill the sync process at random points: the database stays sound and what is active
is always complete. Short loop in `make test`; a long one under `make soak`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from content_sync.db import store
from tests.kit.sync import (
    Publisher,
    StaticApp,
    big_bmp,
    make_keys,
    serve_wsgi,
    sha256,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]


def _check(db: Path, cache_dir: Path, last_active: int) -> int:
    conn = store.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        active = store.active_version(conn)
        assert active >= last_active
        m = store.active_manifest(conn)
        if m is not None:
            for h in json.loads(m.body)["media"]:
                p = store.media_path(cache_dir, h)
                assert p.is_file() and sha256(p.read_bytes()) == h, f"v{active}: {h} broken"
        return active
    finally:
        conn.close()


def _kill_loop(tmp_path: Path, iterations: int, seed: int) -> None:
    rnd = random.Random(seed)
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    pool = [big_bmp(i, 300) for i in range(8)]  # about 270 KB each, reused across versions
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        # 4 Mbit/s: a version's downloads take about a second, so kills land mid-way.
        config = write_config(tmp_path, served.url, [pubkey], bandwidth_limit_kbps=4000,
                              max_parallel_downloads=2)
        cfg = tmp_path / "eboard.toml"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        last, killed, partials = 0, 0, 0
        for i in range(iterations):
            media = {f"m{j}": (pool[j], "image/bmp") for j in rnd.sample(range(len(pool)), 2)}
            media |= {f"new{j}": (big_bmp(1000 + 2 * i + j, 300), "image/bmp") for j in (0, 1)}
            pub.publish(i + 1, media)  # two new files each time, so kills land mid-download
            p = subprocess.Popen([sys.executable, "-m", "eboard", "sync", "--once",
                                  "--config", str(cfg)], env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0.2, 1.6))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            p.wait()
            last = _check(config.db_path, config.cache_dir, last)
            pdir = store.partial_dir(config.cache_dir)
            partials += pdir.is_dir() and any(pdir.iterdir())
        r = subprocess.run([sys.executable, "-m", "eboard", "sync", "--once", "--config",
                            str(cfg)], env=env, cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert _check(config.db_path, config.cache_dir, last) == iterations
        # The loop must really have cut syncs short, some of them mid-download.
        assert killed >= iterations // 3 and partials >= 1, (killed, partials)


def test_kill_sync_at_random_points(tmp_path: Path) -> None:
    _kill_loop(tmp_path, iterations=10, seed=1)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_kill_sync_at_random_points_soak(tmp_path: Path) -> None:
    _kill_loop(tmp_path, iterations=200, seed=int(time.time()))
