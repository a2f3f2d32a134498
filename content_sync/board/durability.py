"""Getting fetched media onto the disk before the database records them.

A media row is committed only after its file's bytes and its name in ``media/`` are on
the disk, so that after a power cut the active manifest is complete. Two calls from
the C library that Python's ``os`` lacks, through ctypes:

- :func:`start_writeback` (``sync_file_range(SYNC_FILE_RANGE_WRITE)``) asks the kernel to
  start writing a finished file out now, without waiting. A hint only: it promises no
  durability, but the disk then writes while the next files download, and the wait in
  :func:`sync_filesystem` is shorter.
- :func:`sync_filesystem` (``syncfs``) returns once everything written on the file system
  holding a path is on the disk (data, inodes, directory entries; the journal
  committed): the guarantee, for that file system alone, so a slow USB stick or a hung
  network mount elsewhere on the box does not hold the sync up. Where ``syncfs`` is
  missing it falls back to ``os.sync()`` (every file system of the machine). An error
  that ``syncfs`` reports (Linux 5.8 and later report write-back errors, e.g. EIO) is
  raised: the caller must not record the files as durable.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Any

SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>


def _libc_function(name: str, argtypes: list[Any]) -> Any:
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


# glibc and musl declare the offsets off64_t on every architecture (armhf included).
_sync_file_range = _libc_function(
    "sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
_syncfs = _libc_function("syncfs", [ctypes.c_int])


def start_writeback(fd: int) -> None:
    """Start writing the dirty pages of ``fd`` to the disk; do not wait for them."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # a hint: its result is not needed


def sync_filesystem(path: Path) -> None:
    """Return once all that was written on the file system holding ``path`` is durable.

    Raises OSError when ``path`` cannot be opened or the file system reports an error.
    """
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) == 0:
            return
        err = ctypes.get_errno()
    finally:
        os.close(fd)
    if err == errno.ENOSYS:  # a libc wrapper without the kernel call (seccomp, old kernel)
        os.sync()
        return
    raise OSError(err, f"syncing the file system of {path} failed: {os.strerror(err)}; "
                  "the files just fetched are not recorded")
