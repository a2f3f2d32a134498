"""The sync daemon's systemd watchdog pings prove that its jobs make progress.

A notify socket opened by the test stands for systemd (``$NOTIFY_SOCKET``,
``$WATCHDOG_USEC``). A sync run hung on a database lock held by the test must stop the
pings (so systemd restarts the daemon); while all is well they keep coming.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from content_sync.daemon import Daemon
from content_sync.db import store
from tests.kit.sync import Publisher, make_keys, png, wait_until, write_config


def _pings(sock: socket.socket, seconds: float) -> int:
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            n += sock.recv(4096) == b"WATCHDOG=1"
        except TimeoutError:
            continue
    return n


def test_watchdog_pings_stop_when_a_sync_run_hangs(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key, pubkey = make_keys(tmp_path / "keys")
    pub = Publisher(tmp_path / "usb", key)
    pub.publish(1, {"a": (png(1), "image/png")})
    config = write_config(tmp_path, (tmp_path / "usb").as_uri() + "/", [pubkey],
                          poll_interval=3600, poll_jitter=0.0)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # pings every 0.5 s, stale after 2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = Daemon(config)
    daemon.job_stall_s = 1.0
    lock = store.connect(config.db_path)
    daemon.start()
    try:
        assert wait_until(lambda: store.active_version(lock) == 1)
        _pings(sock, 2.0)
        assert _pings(sock, 1.5) >= 2  # past the 2 s staleness: the jobs beat it

        lock.execute("BEGIN IMMEDIATE")  # the next sync run cannot write: it hangs
        pub.publish(2, {"b": (png(2), "image/png")})
        daemon.kick()
        assert wait_until(lambda: daemon.stalled() == ["poll"], timeout=10)
        _pings(sock, 2.5)  # the last ones, before the watchdog thread notices
        assert _pings(sock, 2.0) == 0
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        daemon.stop()
        lock.close()
        sock.close()


def test_the_daemon_frees_reference_cycles_without_waiting_for_the_collector(
        tmp_path: Path) -> None:
    """A failing link leaves tracebacks in reference cycles; CPython's own collector may
    leave them for many minutes (the soak's creeping memory). The daemon collects on a
    schedule: with the automatic collector off, a cycle is still freed."""
    import gc
    import weakref

    key, pubkey = make_keys(tmp_path / "keys")
    Publisher(tmp_path / "usb", key).publish(1, {"a": (png(1), "image/png")})
    config = write_config(tmp_path, (tmp_path / "usb").as_uri() + "/", [pubkey],
                          poll_interval=3600, poll_jitter=0.0)

    class Node:
        other: object = None

    was_enabled = gc.isenabled()
    gc.disable()
    daemon = Daemon(config)
    daemon.collect_every_s = 0.2
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # a cycle outlives its names while the collector is off
        daemon.start()
        assert wait_until(lambda: gone() is None, timeout=10), "the cycle was never freed"
    finally:
        daemon.stop()
        if was_enabled:
            gc.enable()
