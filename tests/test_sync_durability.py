"""content_sync/board/durability.py: syncfs of the cache's file system, its fallbacks and errors,
the write-back hint; and that cache.record writes its rows only after that sync."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from content_sync.board import cache, durability
from content_sync.db import store
from content_sync.protocol.manifest import MediaInfo


def test_sync_filesystem_on_a_real_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100_000)
    durability.sync_filesystem(tmp_path)  # returns, no error
    with pytest.raises(FileNotFoundError):
        durability.sync_filesystem(tmp_path / "missing")


def test_sync_filesystem_calls_syncfs_on_that_file_system(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    devices: list[int] = []

    def fake_syncfs(fd: int) -> int:
        devices.append(os.fstat(fd).st_dev)
        return 0

    monkeypatch.setattr(durability, "_syncfs", fake_syncfs)
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("os.sync() instead of syncfs"))
    durability.sync_filesystem(tmp_path)
    assert devices == [tmp_path.stat().st_dev]


def test_without_syncfs_every_file_system_is_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append(True))
    monkeypatch.setattr(durability, "_syncfs", None)
    durability.sync_filesystem(tmp_path)
    assert synced == [True]


def _failing(err: int) -> Any:
    def syncfs(fd: int) -> int:
        import ctypes
        ctypes.set_errno(err)
        return -1
    return syncfs


def test_syncfs_missing_from_the_kernel_falls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append(True))
    monkeypatch.setattr(durability, "_syncfs", _failing(errno.ENOSYS))
    durability.sync_filesystem(tmp_path)
    assert synced == [True]


def test_a_write_error_is_raised_not_hidden(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("an EIO hidden by os.sync()"))
    monkeypatch.setattr(durability, "_syncfs", _failing(errno.EIO))
    with pytest.raises(OSError) as e:
        durability.sync_filesystem(tmp_path)
    assert e.value.errno == errno.EIO and "not recorded" in str(e.value)


def test_start_writeback_is_a_harmless_hint(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f"
    with open(p, "wb") as f:
        f.write(b"y" * 300_000)
        f.flush()
        durability.start_writeback(f.fileno())
    assert p.read_bytes() == b"y" * 300_000
    if durability._sync_file_range is not None:  # Linux: the call is really there
        assert durability._sync_file_range(-1, 0, 0, durability.SYNC_FILE_RANGE_WRITE) == -1
    monkeypatch.setattr(durability, "_sync_file_range", None)
    durability.start_writeback(0)  # missing from libc: nothing happens


def test_record_writes_rows_only_after_the_sync(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    conn = store.connect(cache_dir / "eboard.db")
    sha = "ab" * 32
    store.media_dir(cache_dir).mkdir(parents=True)
    store.media_path(cache_dir, sha).write_bytes(b"z")
    seen: list[tuple[Path, set[str]]] = []

    def sync(path: Path) -> None:
        seen.append((path, store.known_media(conn)))

    monkeypatch.setattr(durability, "sync_filesystem", sync)
    cache.record(conn, cache_dir, {sha: MediaInfo(size=1, type="image/png")})
    assert seen == [(store.media_dir(cache_dir), set())]  # synced media/'s file system first
    assert store.known_media(conn) == {sha}


def test_a_failed_sync_records_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    conn = store.connect(cache_dir / "eboard.db")
    store.media_dir(cache_dir).mkdir(parents=True)
    monkeypatch.setattr(durability, "_syncfs", _failing(errno.EIO))
    with pytest.raises(OSError):
        cache.record(conn, cache_dir, {"cd" * 32: MediaInfo(size=1, type="image/png")})
    assert store.known_media(conn) == set()
