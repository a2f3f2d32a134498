"""Sync benchmarks, on loopback, each beside a baseline measured in the same run.

    .venv/bin/python -m bench.bench_sync            # all of them
    .venv/bin/python -m bench.bench_sync poll parse # some of them
    .venv/bin/python -m bench.bench_sync first --rounds 5 --capped-rounds 2

1. ``poll``: a no-change poll: requests and bytes on the wire (TCP payload both ways,
   counted by a relaying proxy), against nginx and the reference server.
2. ``first``: first sync of 100 media × about 1 MB (uncompressed BMP), against one
   ``curl`` process fetching the same 100 files one after another, and against that
   curl followed by one syncfs(2) (the same files made durable); on loopback, then
   through a proxy that caps the link at 100 Mbit/s.
3. ``wget``: a no-change ``wget -N -r`` mirror of the same folder: requests and bytes.
4. ``resume``: a 50 MB file whose connection is cut at 50 %: bytes fetched beyond the
   file's size.
5. ``parse``: a 10,000-item manifest: verify + parse + diff (and json.loads alone).
6. ``push``: publish → active through the reference server's events long-poll.

Needs nginx, curl and wget (Debian packages nginx-light, curl, wget).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import io
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from PIL import Image  # noqa: E402

from content_sync.board import cache  # noqa: E402
from content_sync.board.download import RateLimiter  # noqa: E402
from content_sync.board.engine import Engine  # noqa: E402
from content_sync.board.source import HttpSource  # noqa: E402
from content_sync.db import store  # noqa: E402
from content_sync.protocol import dsse, manifest  # noqa: E402
from tests.kit.sync import (  # noqa: E402
    BOARD,
    Publisher,
    free_port,
    make_keys,
    sha256,
    wait_until,
    write_config,
)

NGINX_CONF = """
daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    types {{ application/json json; text/html html; }}
    default_type application/octet-stream;
    sendfile on;
    server {{ listen 127.0.0.1:{port}; root {root}; location / {{ autoindex on; }} }}
}}
"""


class CountingProxy:
    """Relays TCP to ``target`` and counts connections and payload bytes each way.

    ``cut_after``: close the first connection whose downstream passes that many bytes.
    ``rate``: bytes per second shared by all connections downstream (a slower link).
    """

    def __init__(self, target: int, cut_after: int | None = None, rate: float = 0) -> None:
        self.target = target
        self.cut_after = cut_after
        self.limiter = RateLimiter(rate, burst=65536) if rate else None
        self.up = self.down = self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = self.connections = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if not upstream and self.cut_after is not None and \
                        sent + len(data) >= self.cut_after:
                    data = data[: self.cut_after - sent]
                    self.cut_after = None
                    dst.sendall(data)
                    with self.lock:
                        self.down += len(data)
                    break
                if not upstream and self.limiter:
                    self.limiter.consume(len(data))
                dst.sendall(data)
                sent += len(data)
                with self.lock:
                    if upstream:
                        self.up += len(data)
                    else:
                        self.down += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class Nginx:
    def __init__(self, root: Path, d: Path) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=self.port, root=root))
        self.log = d / "access.log"
        self.proc = subprocess.Popen([nginx, "-p", str(d), "-c", str(d / "nginx.conf")])
        assert wait_until(lambda: _connectable(self.port), timeout=10), "nginx did not start"

    def requests(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def bmp(seed: int, nbytes: int) -> bytes:
    side = int((nbytes / 3) ** 0.5)
    im = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "BMP")
    return buf.getvalue()


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _sync(config_dir: Path, url: str, pubkey: Path, **source: Any) -> tuple[float, Any]:
    config = write_config(config_dir, url, [pubkey], **source)
    conn = store.connect(config.db_path)
    result: list[Any] = []
    dt = timed(lambda: result.append(Engine(config, conn).sync_once()))
    conn.close()
    return dt, result[0]


def _syncfs(path: Path) -> None:
    """syncfs(2) of the file system holding ``path`` (os.sync() where it is missing)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _clean(d: Path) -> None:
    """Delete a run's files and let the disk settle (writeback, ext4's discards of the
    freed blocks), so that the next timed run does not pay for this one."""
    shutil.rmtree(d)
    os.sync()


# --- the benchmarks --------------------------------------------------------------------------

def bench_poll_and_wget(work: Path, pub: Publisher, pubkey: Path, which: set[str]) -> dict:
    out: dict[str, Any] = {}
    ng = Nginx(pub.root, work / "nginx-poll")
    proxy = CountingProxy(ng.port)
    try:
        if "poll" in which:
            d = work / "poll-nginx"
            d.mkdir()
            _sync(d, proxy.url, pubkey)
            n0 = ng.requests()
            proxy.reset()
            _, r = _sync(d, proxy.url, pubkey)
            assert r.ok, r.reason
            out["poll_nginx"] = {"requests": ng.requests() - n0, "connections": proxy.connections,
                                 "bytes_up": proxy.up, "bytes_down": proxy.down,
                                 "bytes_total": proxy.up + proxy.down}
            out["poll_reference_server"] = _poll_reference(work, pub, pubkey)
        if "wget" in which and shutil.which("wget"):
            mirror = work / "mirror"
            mirror.mkdir()
            wget = ["wget", "-q", "-N", "-r", "-np", "-nH", "-P", str(mirror), proxy.url]
            subprocess.run(wget, check=False)
            n0 = ng.requests()
            proxy.reset()
            subprocess.run(wget, check=False)
            out["wget_N_r_no_change"] = {
                "requests": ng.requests() - n0, "connections": proxy.connections,
                "bytes_total": proxy.up + proxy.down}
    finally:
        ng.stop()
    return out


def _poll_reference(work: Path, pub: Publisher, pubkey: Path) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tokens, token = work / "tokens.toml", work / "board.token"
    tokens.write_text(f'[boards]\n"{BOARD}" = "bench-token"\n')
    token.write_text("bench-token\n")
    token.chmod(0o600)
    srv = subprocess.Popen([sys.executable, "-m", "eboard", "serve-source", "--data",
                            str(pub.root), "--port", str(port), "--tokens", str(tokens)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _connectable(port), timeout=20)
        proxy = CountingProxy(port)
        d = work / "poll-ref"
        d.mkdir()
        _sync(d, proxy.url, pubkey)
        proxy.reset()
        _, r = _sync(d, proxy.url, pubkey, token_file=str(token))
        assert r.ok, r.reason
        out = {"connections": proxy.connections, "bytes_up": proxy.up,
               "bytes_down": proxy.down, "bytes_total": proxy.up + proxy.down}
        # An idle long-poll round (no event): what keeping the push channel open costs.
        src = HttpSource(write_config(d, proxy.url, [pubkey], token_file=str(token)))
        nxt, _ = src.events(BOARD, 0, 0) or (0, [])
        proxy.reset()
        for _ in range(3):
            src.events(BOARD, nxt, 1)
        out["idle_long_poll_bytes_each"] = (proxy.up + proxy.down) // 3
        src.close()
        return out
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def _is_active(conn: Any, version: int) -> bool:
    return store.active_version(conn) == version


def bench_push(work: Path, key: Any, pubkey: Path, rounds: int = 5) -> dict:
    """Publish → active on the board, through the events long-poll of the reference
    server (poll interval an hour, so only the push can bring it)."""
    from content_sync.daemon import Daemon

    pub = Publisher(work / "src-push", key)
    pub.publish(1)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tokens, token = work / "push-tokens.toml", work / "push.token"
    tokens.write_text(f'[boards]\n"{BOARD}" = "push-token"\n')
    token.write_text("push-token\n")
    token.chmod(0o600)
    srv = subprocess.Popen([sys.executable, "-m", "eboard", "serve-source", "--data",
                            str(pub.root), "--port", str(port), "--tokens", str(tokens)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = work / "push"
    d.mkdir()
    try:
        assert wait_until(lambda: _connectable(port), timeout=20)
        config = write_config(d, f"http://127.0.0.1:{port}/", [pubkey], poll_interval=3600,
                              poll_jitter=0.0, token_file=str(token))
        daemon = Daemon(config)
        daemon.start()
        conn = store.connect(config.db_path)
        try:
            assert wait_until(lambda: store.active_version(conn) == 1)
            time.sleep(1)  # the long-poll is waiting
            times = []
            for v in range(2, rounds + 2):
                t = time.perf_counter()
                pub.publish(v, {"a": (bmp(v, 200_000), "image/bmp")})
                assert wait_until(functools.partial(_is_active, conn, v), step=0.01)
                times.append(time.perf_counter() - t)
        finally:
            daemon.stop()
            conn.close()
        return {"publish_to_active_s_median": round(statistics.median(times), 3),
                "max_s": round(max(times), 3), "rounds": rounds}
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def bench_first_sync(work: Path, pub: Publisher, pubkey: Path, shas: list[str],
                     rate: float = 0, rounds: int = 3, cli: bool = True) -> dict:
    """``rate`` > 0: through a proxy that caps the link at that many bytes per second.

    eboard_parallel{1,2}_s: ``Engine.sync_once`` in this process (what the daemon runs
    each time); eboard_sync_once_process_s: ``eboard sync --once`` as a new process.
    curl_then_syncfs_s: curl, then one syncfs(2) of its folder, i.e. the same files made
    durable, which eboard does before it records them and curl does not do at all."""
    ng = Nginx(pub.root, work / f"nginx-first-{rate}")
    base = f"http://127.0.0.1:{ng.port}/"
    if rate:
        base = CountingProxy(ng.port, rate=rate).url
    out: dict[str, Any] = {}
    try:
        total = sum((pub.root / "media" / h).stat().st_size for h in shas)
        for round_ in range(rounds):  # alternate, to even out caches and warm-up
            dl = work / f"curl-{round_}-{rate}"
            dl.mkdir()
            args = ["curl", "-s", "--fail"]
            for h in shas:
                args += ["-o", str(dl / h), f"{base}media/{h}"]
            t0 = time.perf_counter()
            subprocess.run(args, check=True)
            t1 = time.perf_counter()
            _syncfs(dl)  # what making curl's files durable would add (eboard does it)
            t2 = time.perf_counter()
            out.setdefault("curl_s", []).append(t1 - t0)
            out.setdefault("curl_then_syncfs_s", []).append(t2 - t0)
            _clean(dl)
            for par in (1, 2):
                d = work / f"first-{round_}-{par}-{rate}"
                d.mkdir()
                dt, r = _sync(d, base, pubkey, max_parallel_downloads=par)
                assert r.ok, r.reason
                out.setdefault(f"eboard_parallel{par}_s", []).append(dt)
                _clean(d / "cache")
            if cli:  # the whole command, process start and imports included
                d = work / f"first-{round_}-cli-{rate}"
                d.mkdir()
                write_config(d, base, [pubkey], max_parallel_downloads=2)
                out.setdefault("eboard_sync_once_process_s", []).append(timed(functools.partial(
                    subprocess.run, [sys.executable, "-m", "eboard", "sync", "--once",
                                     "--config", str(d / "eboard.toml")],
                    check=True, capture_output=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)})))
                _clean(d / "cache")
        out = {k: round(statistics.median(v), 3) for k, v in out.items()}
        out["bytes"] = total
        out["rounds"] = rounds
        for par in (1, 2):
            out[f"ratio_parallel{par}"] = round(out[f"eboard_parallel{par}_s"] / out["curl_s"], 2)
        out["ratio_parallel2_to_curl_then_syncfs"] = round(
            out["eboard_parallel2_s"] / out["curl_then_syncfs_s"], 2)
    finally:
        ng.stop()
    return out


def bench_resume(work: Path, key: Any, pubkey: Path) -> dict:
    src = Publisher(work / "src50", key)
    big = bmp(50, 50 * 1024 * 1024)
    src.publish(1, {"big": (big, "image/bmp")})
    ng = Nginx(src.root, work / "nginx-resume")
    half = len(big) // 2
    proxy = CountingProxy(ng.port, cut_after=half)
    try:
        d = work / "resume"
        d.mkdir()
        dt, r = _sync(d, proxy.url, pubkey)
        if not r.ok:  # the in-run retries did not finish it: the next run resumes
            dt2, r = _sync(d, proxy.url, pubkey)
            dt += dt2
        assert r.ok, r.reason
        log = ng.log.read_text()
        return {"file_bytes": len(big), "cut_at": half, "delivered_bytes": proxy.down,
                "extra_bytes": proxy.down - len(big), "range_requests": log.count(" 206 "),
                "seconds": round(dt, 2)}
    finally:
        ng.stop()


def bench_parse(work: Path, key: Any, pubkey: Path, items: int = 10_000) -> dict:
    rnd = random.Random(1)
    media = {}
    its = []
    for i in range(items):
        h = rnd.randbytes(32).hex()
        media[h] = {"size": 1000 + i, "type": "image/jpeg"}
        its.append({"id": f"i{i}", "type": "image", "media": h, "duration": 10})
    body = {"format": "eboard.manifest/1", "board": BOARD, "version": 2,
            "issued_at": "2026-11-24T08:00:00+07:00", "media": media,
            "playlists": [{"id": "big", "items": its}]}
    raw = json.dumps(body).encode()
    envelope = dsse.sign(raw, key)
    trusted = [key.public_key()]
    # A cache that already holds all but 10 of the media, as after a small edit.
    (work / "cfg10k").mkdir()
    config = write_config(work / "cfg10k", "http://127.0.0.1:9/", [pubkey])
    conn = store.connect(config.db_path)
    mdir = store.media_dir(config.cache_dir)
    mdir.mkdir(parents=True)
    with store.transaction(conn):
        for h in list(media)[10:]:
            (mdir / h).touch()
            conn.execute("INSERT INTO media(sha256,size,type,verified_at,last_used) "
                         "VALUES (?,?,?,?,?)", (h, 1, "image/jpeg", "x", "x"))

    def diff() -> set[str]:
        m = manifest.parse(dsse.verify(envelope, trusted).body)
        wanted = set(m.media)
        have = store.known_media(conn) & wanted
        have -= cache.missing_files(conn, config.cache_dir, have)
        return wanted - have

    assert len(diff()) == 10
    runs = {"json_loads_s": [timed(lambda: json.loads(raw)) for _ in range(7)],
            "verify_s": [timed(lambda: dsse.verify(envelope, trusted)) for _ in range(7)],
            "parse_s": [timed(lambda: manifest.parse(raw)) for _ in range(7)],
            "verify_parse_diff_s": [timed(diff) for _ in range(7)]}
    conn.close()
    out: dict[str, Any] = {k: round(statistics.median(v), 4) for k, v in runs.items()}
    out["envelope_bytes"] = len(envelope)
    return out


BENCHMARKS = ("poll", "first", "wget", "resume", "parse", "push")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("which", nargs="*", metavar="BENCHMARK",
                    help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="first: rounds on loopback (median reported; default 3)")
    ap.add_argument("--capped-rounds", type=int, default=1,
                    help="first: rounds through the 100 Mbit/s link (0: skip; default 1)")
    args = ap.parse_args(argv)
    if unknown := set(args.which) - set(BENCHMARKS):
        ap.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    which = set(args.which) or set(BENCHMARKS)
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="eboard-bench-") as tmp:
        work = Path(tmp)
        (work / "etc").mkdir()
        os.environ["EBOARD_ETC"] = str(work / "etc")  # never read the machine's /etc/eboard
        key, pubkey = make_keys(work / "keys")
        pub = Publisher(work / "src", key)
        shas = []
        if which & {"poll", "first", "wget"}:
            blobs = {f"m{i:03d}": (bmp(i, 1024 * 1024), "image/bmp") for i in range(100)}
            body = pub.publish(1, blobs)
            shas = list(body["media"])
            assert all(sha256((pub.root / "media" / h).read_bytes()) == h for h in shas)
        if which & {"poll", "wget"}:
            results.update(bench_poll_and_wget(work, pub, pubkey, which))
        if "first" in which:
            results["first_sync_100x1MB"] = bench_first_sync(work, pub, pubkey, shas,
                                                             rounds=args.rounds)
            if args.capped_rounds > 0:
                results["first_sync_100x1MB_at_100Mbit"] = bench_first_sync(
                    work, pub, pubkey, shas, rate=100e6 / 8, rounds=args.capped_rounds,
                    cli=False)
        if "resume" in which:
            results["resume_50MB_cut_at_half"] = bench_resume(work, key, pubkey)
        if "push" in which:
            results["push_by_long_poll"] = bench_push(work, key, pubkey)
        if "parse" in which:
            results["manifest_10000_items"] = bench_parse(work, key, pubkey)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
