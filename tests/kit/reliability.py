"""Helpers for the reliability suite (docs/RELIABILITY.md): a whole box made of real processes.

A box here is a config file, a cache directory with the shared SQLite database, the
sync daemon (``eboard sync``) and the player (``eboard play``, Qt offscreen or on an
Xvfb display), each a real subprocess that a test can kill with SIGKILL. The source is
the real reference server (``tests.kit.status.reference_server``), optionally
behind :class:`FlakyLink`, a TCP relay that a test can cut and restore.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from content_sync.db import store

ROOT = Path(__file__).resolve().parents[2]
BOARD = "test.status-01"          # the board tests.kit.status' server knows
BOARD_TOKEN = "board-secret-token"  # its token there


def box_config(d: Path, url: str, trusted: list[Path], token: str | None = BOARD_TOKEN,
               cache_dir: Path | None = None, **sections: dict[str, Any]) -> Path:
    """Write ``d/eboard.toml`` for a box on ``url``; ``sections`` add or override keys,
    e.g. ``status={"heartbeat_interval": 5}``. Returns the file's path."""
    d.mkdir(parents=True, exist_ok=True)
    conf: dict[str, dict[str, Any]] = {
        "board": {"id": BOARD, "name": "Xã Pa Vệ Sủ"},
        "source": {"url": url, "trusted_keys": [str(p) for p in trusted],
                   "poll_interval": 5, "connect_timeout": 2.0, "read_timeout": 5.0},
        "cache": {"dir": str(cache_dir or d / "cache")},
        "display": {"geometry": "320x180+0+0"},
        "status": {"heartbeat_interval": 5},
    }
    if token is not None:
        tf = d / "board.token"
        tf.write_text(token + "\n")
        tf.chmod(0o600)
        conf["source"]["token_file"] = str(tf)
    for name, values in sections.items():
        conf.setdefault(name, {}).update(values)
    lines = []
    for name, values in conf.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in values.items()]
        lines.append("")
    path = d / "eboard.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen",
         "PYTHONUNBUFFERED": "1"}
    e.update(extra)
    return e


def eboard(*args: str, timeout: float = 120, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """Run an ``eboard`` command to its end (not checked: tests look at the exit code)."""
    return subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True,
                          text=True, env=env(**env_extra), cwd=ROOT, timeout=timeout)


@dataclass
class Proc:
    """A long-running ``eboard`` command whose stderr goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _fh: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """A power cut, as far as this process can tell."""
        if self.alive():
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(30)
        self.close()

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.close()
        return int(self.popen.returncode)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(name: str, args: list[str], logdir: Path, **env_extra: str) -> Proc:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    fh = open(log, "ab")  # noqa: SIM115 (closed by Proc.close)
    p = subprocess.Popen([sys.executable, "-m", "eboard", *args], env=env(**env_extra),
                         cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    return Proc(name, p, log, fh)


def start_sync(config: Path, logdir: Path, **env_extra: str) -> Proc:
    return start("sync", ["sync", "--config", str(config)], logdir, **env_extra)


def start_player(config: Path, logdir: Path, **env_extra: str) -> Proc:
    return start("player", ["play", "--config", str(config)], logdir, **env_extra)


# --- the state of the box ----------------------------------------------------------------

def sha256_file(p: Path) -> str:
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_box(db: Path, cache_dir: Path, last_active: int = 0) -> int:
    """Assert the database is sound and the active manifest complete and verified
    (every media file present with its SHA-256); return the active version. No database
    yet (cut before either process got that far) is version 0."""
    if not db.exists():
        assert last_active == 0, f"the database {db} is gone"
        return 0
    conn = store.connect(db, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if conn.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone() is None:
            # Cut before the first schema transaction committed: an empty database.
            assert last_active == 0, f"{db} lost its tables"
            return 0
        active = store.active_version(conn)
        assert active >= last_active, f"active version went back: {active} < {last_active}"
        m = store.active_manifest(conn)
        if m is not None:
            for h in json.loads(m.body)["media"]:
                p = store.media_path(cache_dir, h)
                assert p.is_file(), f"version {active}: media {h[:12]}… is missing"
                assert sha256_file(p) == h, f"version {active}: media {h[:12]}… is damaged"
        return active
    finally:
        conn.close()


def box_play_ids(db: Path) -> set[str]:
    """Proof-of-play records waiting in the box's outbox."""
    if not db.exists():
        return set()
    conn = store.connect(db, readonly=True)
    try:
        return {str(r[0]) for r in conn.execute("SELECT id FROM plays")}
    finally:
        conn.close()


def status_json(config: Path) -> dict[str, Any]:
    r = eboard("status", "--json", "--config", str(config))
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


@dataclass
class ProcStats:
    rss_kb: int
    fds: int
    threads: int


def proc_stats(pid: int) -> ProcStats | None:
    """Resident memory, open file descriptors and threads of a process (None if gone)."""
    try:
        fields = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    return ProcStats(int(fields["VmRSS"].split()[0]), fds, int(fields["Threads"]))


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
               if p.exists())


# --- sockets -----------------------------------------------------------------------------

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def listening(pid: int) -> list[str]:
    """The TCP sockets in LISTEN state and bound UDP sockets that ``pid`` owns, as lines
    of /proc/<pid>/net/{tcp,tcp6,udp,udp6} (empty when it listens on nothing)."""
    mine = socket_inodes(pid)
    out = []
    for table, state in (("tcp", TCP_LISTEN), ("tcp6", TCP_LISTEN), ("udp", UDP_UNCONNECTED),
                         ("udp6", UDP_UNCONNECTED)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == state and cols[9] in mine:
                out.append(f"{table} {cols[1]} inode {cols[9]}")
    return out


# --- a link that can be cut --------------------------------------------------------------

@dataclass
class FlakyLink:
    """A TCP relay on 127.0.0.1 in front of ``target_port``. ``down()`` closes the
    listening socket (connection refused) and resets every open connection, as when a
    3G link drops; ``up()`` listens again on the same port."""

    target_port: int
    port: int = 0
    _listener: socket.socket | None = None
    _conns: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    cuts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        if self._listener is not None:
            return
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            s, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if s is None:
            return
        self.cuts += 1
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
        for c in conns:
            with suppress(OSError):  # RST, not FIN: the peer sees "connection reset"
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                c.close()

    def close(self) -> None:
        self._stop.set()
        self.down()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not s:
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for r in ready:
                    data = r.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if r is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.close()
            with self._lock:
                self._conns = [c for c in self._conns if c not in (a, b)]


@contextmanager
def flaky_link(target_port: int) -> Iterator[FlakyLink]:
    link = FlakyLink(target_port)
    link.up()
    try:
        yield link
    finally:
        link.close()


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "4m") mounted at ``path`` (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                    str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/filesystems").read_text().find("tmpfs") >= 0
