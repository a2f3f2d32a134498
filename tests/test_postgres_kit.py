"""The throwaway PostgreSQL cluster of tests/kit/postgres.py, which the server's
PostgreSQL storage engine is tested against: a real server, not as root, reachable at
its DSN with asyncpg, LISTEN/NOTIFY across connections, a database per test, and
nothing left behind after stop(), a failed start or a test process killed with -9."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kit.postgres import (
    TEST_USER,
    PostgresCluster,
    PostgresKitError,
    find_bin_dir,
    gone,
)

ROOT = Path(__file__).resolve().parents[1]


def _connect(dsn: str) -> Any:
    import asyncpg  # the storage engine's driver; the kit itself does not need it

    return asyncpg.connect(dsn, timeout=10)


def _uid_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}").st_uid


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(cond: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def test_the_server_and_its_backends_run_as_an_unprivileged_user(
        postgres: PostgresCluster, pg_dsn: str) -> None:
    async def backend_uid() -> int:
        conn = await _connect(pg_dsn)
        try:  # while connected: a backend ends with its connection
            return _uid_of(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    assert postgres.pid is not None
    owner = _uid_of(postgres.pid)
    assert owner != 0
    expected = pwd.getpwnam(TEST_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert owner == expected
    assert postgres.data_dir.stat().st_uid == expected
    assert asyncio.run(backend_uid()) == expected  # the one serving the test


def test_asyncpg_connects_at_the_dsn_over_tcp_and_queries(pg_dsn: str) -> None:
    assert re.fullmatch(r"postgresql://eboard@127\.0\.0\.1:\d+/\w+", pg_dsn)

    async def ask() -> Any:
        conn = await _connect(pg_dsn)
        try:
            return await conn.fetchrow(
                "SELECT current_user AS who, current_database() AS db, "
                "host(inet_server_addr()) AS addr, $1::text AS echo, "
                "current_setting('server_version_num')::int AS version", "Bảng tin xã")
        finally:
            await conn.close()

    row = asyncio.run(ask())
    assert row["who"] == "eboard"
    assert row["db"] == pg_dsn.rsplit("/", 1)[1]
    assert row["addr"] == "127.0.0.1"  # TCP, not the unix socket
    assert row["echo"] == "Bảng tin xã"  # UTF8 both ways
    assert row["version"] >= 150000


def test_a_notify_on_one_connection_reaches_a_listener_on_another(pg_dsn: str) -> None:
    async def notify() -> tuple[str, str]:
        listener, sender = await _connect(pg_dsn), await _connect(pg_dsn)
        got: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

        def heard(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            if not got.done():
                got.set_result((channel, payload))

        try:
            await listener.add_listener("manifest_changed", heard)
            await sender.execute("SELECT pg_notify('manifest_changed', $1)", "phiên bản 7")
            return await asyncio.wait_for(got, 5)
        finally:
            await listener.close()
            await sender.close()

    assert asyncio.run(notify()) == ("manifest_changed", "phiên bản 7")


def test_each_database_is_its_own_and_is_dropped_with_its_connections(
        postgres: PostgresCluster, pg_dsn: str) -> None:
    async def run(dsn: str, sql: str) -> Any:
        conn = await _connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def left_open(dsn: str) -> Any:
        return await _connect(dsn)

    asyncio.run(run(pg_dsn, "CREATE TABLE boards (id text PRIMARY KEY)"))
    with postgres.fresh_database("other") as other:
        assert other != pg_dsn
        assert asyncio.run(run(other, "SELECT to_regclass('boards')")) is None
        assert asyncio.run(run(pg_dsn, "SELECT to_regclass('boards')::text")) == "boards"
        loop = asyncio.new_event_loop()
        conn = loop.run_until_complete(left_open(other))  # dropped all the same
    name = other.rsplit("/", 1)[1]
    assert postgres.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "0"
    loop.run_until_complete(conn.close(timeout=2))
    loop.close()


def test_two_hundred_connections_fit(pg_dsn: str) -> None:
    """Two server processes with their pools and the test's own connections."""
    async def many() -> list[int]:
        conns = await asyncio.gather(*(_connect(pg_dsn) for _ in range(190)))
        try:
            return [await c.fetchval("SELECT 1") for c in conns]
        finally:
            await asyncio.gather(*(c.close() for c in conns))

    assert asyncio.run(many()) == [1] * 190


def test_stop_removes_the_directory_and_closes_the_port() -> None:
    pg = PostgresCluster()
    pg.start()
    root, port, pid = pg.root, pg.port, pg.pid
    assert pid is not None and _port_open(port) and (root / "data" / "PG_VERSION").exists()
    assert (pg.socket_dir / f".s.PGSQL.{port}").is_socket()
    pg.stop()
    assert not root.exists()
    assert not _port_open(port)
    assert gone(pid)
    pg.stop()  # twice is harmless


def test_a_test_process_killed_with_9_leaves_no_cluster_behind() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from tests.kit.postgres import PostgresCluster\n"
         "pg = PostgresCluster(); pg.start(); print(pg.root, pg.pid, pg.port, flush=True)\n"
         "time.sleep(120)\n"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        text=True)
    try:
        assert child.stdout is not None
        root_s, pid_s, port_s = child.stdout.readline().split()
        root, pid, port = Path(root_s), int(pid_s), int(port_s)
        assert root.exists() and _port_open(port)
    finally:
        child.send_signal(signal.SIGKILL)  # no atexit, no finally: only the reaper is left
        child.wait(10)
    assert _wait(lambda: gone(pid) and not root.exists()), \
        f"after kill -9: postmaster {pid} gone: {gone(pid)}, {root} there: {root.exists()}"
    assert not _port_open(port)


def test_a_start_that_fails_says_why_and_where_the_log_is() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        pg = PostgresCluster(port=taken.getsockname()[1])
        with pytest.raises(PostgresKitError) as failed:
            pg.start()
    said = str(failed.value)
    assert "did not start" in said and "could not bind" in said, said
    log = Path(re.search(r"the server's log is (\S+);", said)[1])  # type: ignore[index]
    try:
        assert "Address already in use" in log.read_text()
    finally:
        log.unlink()
    assert not pg.root.exists()
    pg.stop()  # after a failed start too


def test_no_postgresql_says_what_is_missing_and_to_run_make_setup(tmp_path: Path) -> None:
    (tmp_path / "15" / "bin").mkdir(parents=True)  # a version without its programs
    with pytest.raises(PostgresKitError) as missing:
        find_bin_dir(tmp_path)
    said = str(missing.value)
    assert "initdb" in said and str(tmp_path) in said
    assert "Run `make setup` (installs Debian's postgresql)" in said
    assert find_bin_dir().name == "bin"  # and this machine has one


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: the cluster's user is then another")
def test_a_temp_dir_the_cluster_user_cannot_enter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir(mode=0o700)
    with pytest.raises(PostgresKitError, match="may not enter .*point TMPDIR elsewhere"):
        PostgresCluster(base=tmp_path / "private").start()
