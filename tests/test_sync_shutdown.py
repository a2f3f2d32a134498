"""SIGTERM while `eboard sync` downloads: a prompt, quiet stop that keeps the partial file.

systemd stops the daemon with SIGTERM (reboot, upgrade, `systemctl restart`). A slow
drip from a real server on 127.0.0.1 keeps a download in flight; the daemon must tell
systemd it is stopping, exit 0 within seconds without a traceback, and leave the
partial file so that the next run asks only for the missing bytes (Range).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from content_sync.db import store
from tests.kit.sync import (
    Plan,
    Publisher,
    big_bmp,
    make_keys,
    misbehaving,
    sha256,
    wait_until,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]


def test_sigterm_mid_download_stops_at_once_and_the_next_run_resumes(tmp_path: Path) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "src", key)
    data = big_bmp(3, 200)  # about 120 kB: 12 s at the drip below
    pub.publish(1, {"anh": (data, "image/bmp")})
    plan = Plan()
    for p in (tmp_path / "src").rglob("*"):
        if p.is_file():
            plan.files["/" + p.relative_to(tmp_path / "src").as_posix()] = p.read_bytes()
    sha = sha256(data)
    plan.plans[f"/media/{sha}"] = ["drip:2048", "ok"]

    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(sock_path)}
    env.pop("WATCHDOG_USEC", None)
    try:
        with misbehaving(plan) as url:
            config = write_config(tmp_path, url, [pubkey], long_poll=False, poll_jitter=0.0)
            cfg = str(tmp_path / "eboard.toml")
            proc = subprocess.Popen([sys.executable, "-m", "eboard", "sync", "--config", cfg],
                                    env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            partial = store.partial_dir(config.cache_dir) / sha
            try:
                assert wait_until(lambda: partial.exists() and partial.stat().st_size >= 8192,
                                  30), "the download never started"
                start = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                _, err_bytes = proc.communicate(timeout=20)
                took = time.monotonic() - start
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err = err_bytes.decode(errors="replace")
            assert proc.returncode == 0, err
            assert took < 5, f"took {took:.1f} s to stop:\n{err}"
            assert "Traceback" not in err and "cannot schedule" not in err, err
            assert len(err.splitlines()) < 15, err  # transitions, not a flood
            messages = []
            while True:
                try:
                    messages.append(sock.recv(4096).decode())
                except TimeoutError:
                    break
            assert "STOPPING=1" in messages, messages
            kept = partial.stat().st_size
            assert 0 < kept < len(data)
            assert not store.media_path(config.cache_dir, sha).exists()

            r = subprocess.run([sys.executable, "-m", "eboard", "sync", "--once", "--config",
                                cfg], env=env, cwd=ROOT, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stderr
            resume = [q for q in plan.requests if q.path == f"/media/{sha}"][-1]
            assert resume.headers.get("Range") == f"bytes={kept}-"
            assert resume.sent == len(data) - kept
    finally:
        sock.close()
