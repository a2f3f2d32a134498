"""A real, throwaway PostgreSQL cluster on 127.0.0.1, from Debian's ``postgresql`` package.

The server's PostgreSQL storage engine is tested against it (tests/conftest.py: the
session fixture ``postgres``, the per-test database ``pg_dsn``)::

    with PostgresCluster() as pg:
        pg.create_database("board")
        dsn = pg.dsn("board")        # postgresql://eboard@127.0.0.1:PORT/board

What it does, and why:

- the binaries are the newest ``/usr/lib/postgresql/<version>/bin`` (Debian puts the
  server there, off ``$PATH``); none there is an error that says to run ``make setup``;
- ``initdb`` refuses to run as root, and the tests run as root on CI: then the cluster
  belongs to a system user of its own, ``eboard-pgtest`` (created on first use, see
  ``cluster_user``), and every server binary is started with that uid and gid;
- trust authentication, on the unix socket and 127.0.0.1 only (a throwaway cluster
  nobody else can reach); the superuser role is ``eboard``;
- durability off (fsync, synchronous_commit, full_page_writes) for speed, and
  ``max_connections = 200`` so two server processes with their pools and many test
  connections fit;
- ``stop()`` is an immediate shutdown and removes every file. A test process that exits
  without calling it runs it from ``atexit``; one killed with ``kill -9`` runs no Python
  at all, so a small reaper process (this file run as a script) waits on a pipe from the
  test process and, when the pipe closes, shuts the postmaster down and removes the
  directory.

Only the standard library is used here (the kit needs no PostgreSQL driver; the
databases are made and dropped with ``psql``), and this file runs as the reaper script.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

PG_ROOT = Path("/usr/lib/postgresql")
BINARIES = ("initdb", "pg_ctl", "postgres", "psql")
TEST_USER = "eboard-pgtest"
ROLE = "eboard"
HOST = "127.0.0.1"
LOG_LINES = 40  # of the server's log, quoted in an error

# Appended to the cluster's postgresql.conf (the port is given on the command line).
SETTINGS = """
# --- tests/kit/postgres.py: a throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
"""

# Replaces initdb's pg_hba.conf: trust, for the unix socket and 127.0.0.1 only.
HBA = """\
# tests/kit/postgres.py: a throwaway test cluster, reachable from this machine only
local all all               trust
host  all all 127.0.0.1/32  trust
"""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresKitError(RuntimeError):
    """The test cluster could not be found, started, used or stopped."""


def find_bin_dir(root: Path = PG_ROOT) -> Path:
    """The newest ``root/<version>/bin`` that has all of ``BINARIES``."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in root.glob("*/bin"):
        try:
            version = tuple(int(p) for p in bin_dir.parent.name.split("."))
        except ValueError:
            continue
        if all(os.access(bin_dir / b, os.X_OK) for b in BINARIES):
            found.append((version, bin_dir))
    if not found:
        raise PostgresKitError(
            f"PostgreSQL's server programs are missing: no {root}/<version>/bin with "
            f"{', '.join(BINARIES)} (Debian's package `postgresql` puts them there). "
            "Run `make setup` (installs Debian's postgresql).")
    return max(found)[1]


def cluster_user() -> pwd.struct_passwd:
    """Whom the cluster's programs run as: this process, or ``eboard-pgtest`` as root.

    ``initdb`` and ``postgres`` refuse to run as root. A system user of our own, rather
    than ``nobody``: ``nobody`` is meant to own no files, and whatever else runs as
    ``nobody`` on the machine could read and write a data directory it owned; and not
    Debian's ``postgres``, which owns the packaged ``main`` cluster, a real service.
    With its own user, ``ps -u eboard-pgtest`` shows exactly the test clusters. It is
    created on first use: a system account, no home, no login shell.
    """
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    with suppress(KeyError):
        return pwd.getpwnam(TEST_USER)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    made = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home",
         "--shell", "/usr/sbin/nologin", TEST_USER],
        capture_output=True, text=True, check=False)
    try:  # another test session may have made it meanwhile (useradd then fails)
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        raise PostgresKitError(
            f"initdb refuses to run as root and the user {TEST_USER} could not be made: "
            f"{useradd} exited {made.returncode}: {made.stderr.strip()}") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster's pid, from the first line of ``postmaster.pid``, if it is alive
    and is the postmaster of ``data_dir`` (not a process that reused a stale pid)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if os.fsencode(data_dir) in cmdline else None


def gone(pid: int) -> bool:
    """No process ``pid`` any more (a zombie waiting for its parent counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def end_postmaster(pid: int, grace: float = 1.0, timeout: float = 10.0) -> None:
    """Wait until the postmaster ``pid`` has exited: SIGQUIT (an immediate shutdown, what
    ``pg_ctl stop -m immediate`` sends) if it is there after ``grace``, SIGKILL if still
    after ``timeout`` more.
    Its listening sockets are closed only when the process is gone, a moment after it
    removed postmaster.pid (which is what ``pg_ctl stop -w`` waits for)."""
    for sig in (None, signal.SIGQUIT, signal.SIGKILL):
        if sig is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        wait = {None: grace, signal.SIGQUIT: timeout, signal.SIGKILL: 2.0}[sig]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if gone(pid):
                return
            time.sleep(0.01)


def _reachable_by(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first ancestor of ``path`` that ``user`` may not pass through, or None."""
    for folder in reversed(path.parents):
        st = folder.stat()
        bit = (stat.S_IXUSR if st.st_uid == user.pw_uid
               else stat.S_IXGRP if st.st_gid == user.pw_gid else stat.S_IXOTH)
        if not st.st_mode & bit:
            return folder
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(path: Path, lines: int = LOG_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text) or "(the log is empty)"


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1 and a unix socket.

    ``start()`` runs initdb and the server and waits until it accepts connections;
    ``stop()`` shuts it down at once and removes its directory (also after a start that
    failed halfway; twice is harmless). As a context manager it does both.
    ``port`` 0 picks a free one (and another if the server finds it taken meanwhile).
    """

    def __init__(self, port: int = 0, base: Path | None = None,
                 bin_dir: Path | None = None, durable: bool = False) -> None:
        """``durable``: keep fsync and synchronous commits on (benchmarks: figures of a
        database that survives a power cut, as the server's SQLite does)."""
        self.durable = durable
        self.bin_dir = bin_dir or find_bin_dir()
        self.version = self.bin_dir.parent.name
        self._fixed_port = port
        self._base = Path(base or tempfile.gettempdir())
        self.port = 0
        self.host = HOST
        self.role = ROLE
        self.user = cluster_user()
        self.root = Path()
        self.data_dir = Path()
        self.socket_dir = Path()
        self.log_path = Path()
        self.timings: dict[str, float] = {}  # seconds: initdb, server (pg_ctl start)
        self._reaper: subprocess.Popen[bytes] | None = None
        self._started = self._stopped = False

    # --- life --------------------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if self._started:
            raise PostgresKitError("this cluster was started already (make a new one)")
        self._started = True
        try:
            self._make_dirs()
            self._initdb()
            self._run_server()
        except PostgresKitError as e:
            self._remove(keep_log=True)
            raise PostgresKitError(f"{e}\n{self._log_says()}") from e.__cause__
        except BaseException:
            self._remove(keep_log=True)
            raise

    def stop(self) -> None:
        """``pg_ctl stop -m immediate`` (a signal if that fails), then remove every file."""
        self._remove(keep_log=False)

    def _make_dirs(self) -> None:
        blocked = _reachable_by(self._base / "x", self.user)
        if blocked is not None:
            raise PostgresKitError(
                f"the cluster's user {self.user.pw_name} may not enter {blocked}, so it "
                f"cannot use a directory under {self._base}: point TMPDIR elsewhere")
        self.root = Path(tempfile.mkdtemp(prefix="eboard-pg-", dir=self._base))
        atexit.register(self.stop)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_path = self.root / "postgres.log"
        self.socket_dir.mkdir()
        self.log_path.touch()
        for path in (self.root, self.socket_dir, self.log_path):
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        # The reaper: it reads its stdin until this process is gone (or stop() is done).
        self._reaper = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--reap", str(self.root)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
            env=self._env(), cwd="/")

    def _initdb(self) -> None:
        began = time.monotonic()
        self._run([self.bin_dir / "initdb", "-D", self.data_dir, "-U", self.role,
                   "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
                   "--no-instructions"], timeout=120)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            settings = SETTINGS.format(socket_dir=self.socket_dir)
            if self.durable:
                settings = "\n".join(ln for ln in settings.splitlines() if not ln.startswith(
                    ("fsync", "synchronous_commit", "full_page_writes"))) + "\n"
            conf.write(settings)
        (self.data_dir / "pg_hba.conf").write_text(HBA)
        self.timings["initdb"] = time.monotonic() - began

    def _run_server(self) -> None:
        began = time.monotonic()
        for attempt in range(5):
            self.port = self._fixed_port or free_port()
            done = self._run([self.bin_dir / "pg_ctl", "start", "-D", self.data_dir,
                              "-l", self.log_path, "-w", "-t", "60", "-o", f"-p {self.port}"],
                             timeout=90, check=False)
            if done.returncode == 0:
                self.timings["server"] = time.monotonic() - began
                return
            if (pid := postmaster_pid(self.data_dir)) is not None:
                end_postmaster(pid)
            taken = "could not bind" in _tail(self.log_path) or "could not create any TCP" \
                in _tail(self.log_path)
            if self._fixed_port or not taken or attempt == 4:
                raise PostgresKitError(
                    f"the PostgreSQL {self.version} server did not start on port "
                    f"{self.port}: pg_ctl exited {done.returncode}: {done.stdout.strip()} "
                    f"{done.stderr.strip()}")
            # another process took the free port between free_port() and the bind
            with self.log_path.open("a") as log:
                log.write(f"# tests/kit/postgres.py: port {self.port} was taken; again\n")

    def _remove(self, keep_log: bool) -> None:
        if self._stopped or not self._started:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        problems = []
        pid = postmaster_pid(self.data_dir) if self.data_dir != Path() else None
        if pid is not None:
            done = self._run([self.bin_dir / "pg_ctl", "stop", "-D", self.data_dir,
                              "-m", "immediate", "-w", "-t", "20"], timeout=30, check=False)
            if done.returncode != 0:
                problems.append(f"pg_ctl stop exited {done.returncode}: {done.stderr.strip()}")
            end_postmaster(pid)  # signals only if pg_ctl stop did not do it
        if keep_log and self.root != Path() and _size(self.log_path):
            kept = self._base / f"{self.root.name}.log"  # for the error start() raises
            shutil.move(self.log_path, kept)
            self.log_path = kept
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
        if self._reaper is not None:
            assert self._reaper.stdin is not None
            self._reaper.stdin.close()  # the reaper finds nothing left and ends
            try:
                self._reaper.wait(10)
            except subprocess.TimeoutExpired:
                problems.append(f"the reaper (pid {self._reaper.pid}) has not ended")
        if problems and not keep_log:
            raise PostgresKitError(f"stopping the test cluster in {self.root}: "
                                   + "; ".join(problems))

    def _log_says(self) -> str:
        if not self.log_path.is_file():
            return "the server wrote no log (it did not get as far as starting)"
        return f"the server's log is {self.log_path}; its last lines:\n{_tail(self.log_path)}"

    # --- running its programs ------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        """This environment without PG* variables (PGHOST, PGPORT, ... would redirect
        psql), in the C locale; HOME is the cluster's directory, so no ~/.pgpass or
        ~/.psqlrc of whoever runs the tests is read."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", HOME=str(self.root) if self.root != Path() else "/")
        return env

    def _run(self, cmd: Sequence[str | Path], timeout: float, check: bool = True,
             as_owner: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` as the cluster's user (``as_owner``) or as this process."""
        drop: dict[str, Any] = {}
        if as_owner and os.geteuid() == 0:
            drop = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        args = [str(c) for c in cmd]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  env=self._env(), cwd=self.root, check=False, **drop)
        except subprocess.TimeoutExpired as e:
            raise PostgresKitError(f"{' '.join(args)} took over {timeout} s") from e
        if check and done.returncode != 0:
            raise PostgresKitError(
                f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    # --- using it ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return postmaster_pid(self.data_dir) if self._started else None

    def dsn(self, database: str = "postgres") -> str:
        """``postgresql://eboard@127.0.0.1:PORT/DATABASE`` (TCP; trust, no password)."""
        return f"postgresql://{self.role}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over the unix socket; its unaligned output, stripped."""
        if not self._started or self._stopped:
            raise PostgresKitError("the test cluster is not running")
        return self._run([self.bin_dir / "psql", "-X", "-A", "-t", "-q",
                          "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir, "-p", str(self.port),
                          "-U", self.role, "-d", database, "-c", sql],
                         timeout=60, as_owner=False).stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database owned by ``eboard``; its DSN."""
        self.psql(f'CREATE DATABASE "{_checked(name)}" OWNER "{self.role}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` (if it exists), ending the connections still open to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')

    @contextmanager
    def fresh_database(self, label: str = "t") -> Iterator[str]:
        """A database of its own (``label`` and a random part), dropped afterwards."""
        stem = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")[:40] or "t"
        name = f"{stem}_{uuid.uuid4().hex[:10]}"
        if not _NAME.fullmatch(name):
            name = "t_" + name
        dsn = self.create_database(name)
        try:
            yield dsn
        finally:
            self.drop_database(name)


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"database name {name!r}: lower-case letters, digits and _ only, "
                         "not starting with a digit, at most 63")
    return name


def _reap(root: Path) -> None:
    """The reaper's work: once its stdin closes (the test process ended, however),
    shut down the postmaster of ``root/data`` if one runs, and remove ``root``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with suppress(OSError):
        sys.stdin.buffer.read()
    if (pid := postmaster_pid(root / "data")) is not None:
        end_postmaster(pid, grace=0)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--reap":
        _reap(Path(sys.argv[2]))
    else:
        sys.exit(f"usage: {sys.argv[0]} --reap DIR (the test cluster's reaper)")
