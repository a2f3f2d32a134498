"""Heap watch for the soak: where a long-running eboard process's memory goes.

Put this folder first on PYTHONPATH of a process started with ``PYTHONTRACEMALLOC=N`` and
``EBOARD_HEAP_DIR=<dir>`` (``bench/soak.py --heap-dir`` does both). A daemon thread then,
every ``EBOARD_HEAP_EVERY`` seconds (default 300):

- dumps a tracemalloc snapshot to ``<dir>/<role>-<pid>-<n>.tm`` (compare two with
  ``bench/heapdiff.py``);
- appends one line to ``<dir>/<role>-<pid>.csv``: resident memory, what glibc's malloc
  holds and has in use (``mallinfo2``), what tracemalloc traces, resident memory by kind
  of mapping (files, brk heap, anonymous, stack), Python's small-object arenas and the
  blocks in use in them (``sys._debugmallocstats``), what SQLite's allocator holds
  (``sqlite3_memory_used``: page caches, schemas, prepared statements), and the
  Python objects alive by type for the types that grew since the first sample.

Python-level growth shows in the snapshots; growth in malloc that tracemalloc does not
see is native (Qt, libVLC, SQLite); resident memory that grows while malloc's in-use
figure stays level is fragmentation. Nothing here runs unless EBOARD_HEAP_DIR is set.
``EBOARD_HEAP_TRIM=<seconds>`` (an experiment) also calls ``malloc_trim(0)`` that often;
``EBOARD_HEAP_COLLECT=1`` runs a full garbage collection before each sample, so that the
object counts and snapshots show what is alive, not cyclic garbage waiting for the
collector (it changes the process: use it to attribute, not to measure).
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> tuple[int, int]:
    """(bytes malloc holds from the system, bytes in use), or (0, 0) off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return 0, 0
    fn.restype = _MallInfo2
    mi = fn()
    return mi.arena + mi.hblkhd, mi.uordblks + mi.hblkhd


def _sqlite_kb() -> int:
    """What SQLite's allocator holds in this process (page caches, schemas, statements)."""
    try:
        fn = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
    except (OSError, AttributeError):
        return 0
    fn.restype = ctypes.c_int64
    return int(fn()) // 1024


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _rss_by_kind() -> dict[str, int]:
    """Resident kB by kind of mapping, from /proc/self/smaps.

    ``file`` pages of shared libraries and files; ``heap`` the brk heap (malloc's main
    arena); ``anon`` anonymous mappings (Python's arenas, malloc's mmapped chunks and
    thread arenas, thread stacks, Qt/libVLC buffers; the kernel merges neighbours, so they
    cannot be told apart here); ``stack`` the main thread's stack.
    """
    out = {"file": 0, "heap": 0, "anon": 0, "stack": 0}
    kind = "anon"
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head = line.split(None, 5)
        if head and not head[0].endswith(":"):
            name = head[5].strip() if len(head) > 5 else ""
            kind = ("heap" if name == "[heap]" else "stack" if name.startswith("[stack")
                    else "file" if name.startswith("/") else "anon")
        elif head and head[0] == "Rss:":
            out[kind] += int(head[1])
    return out


def _pymalloc(folder: Path, tag: str) -> tuple[int, int]:
    """(kB in Python's small-object arenas, kB of blocks in use there).

    ``sys._debugmallocstats`` writes to the C stderr, so file descriptor 2 is pointed at a
    file for the moment it takes; anything another thread writes meanwhile lands in that
    file (``<tag>-mallocstats.txt``, the latest), not lost.
    """
    out = folder / f"{tag}-mallocstats.txt"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with out.open("wb") as f:
            os.dup2(f.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    arenas = used = 0
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("# arenas allocated current"):
            arenas = int(line.split("=")[1].replace(",", ""))
        elif line.startswith("# bytes in allocated blocks"):
            used = int(line.split("=")[1].replace(",", ""))
    return arenas * 1024, used // 1024


def _role() -> str:
    args = Path("/proc/self/cmdline").read_bytes().split(b"\0")
    for word in (b"play", b"sync", b"serve"):
        if word in args:
            return {b"play": "player", b"sync": "sync", b"serve": "server"}[word]
    return "python"


def _types() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def _watch(folder: Path, every: float, collect: bool) -> None:
    role, pid = _role(), os.getpid()
    csv = folder / f"{role}-{pid}.csv"
    first: Counter[str] | None = None
    n = 0
    t0 = time.monotonic()
    while True:
        time.sleep(every if n else min(every, 60.0))
        if collect:
            gc.collect()
        held, used = _mallinfo()
        traced, _peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
        types = _types()
        if first is None:
            first = types
        grown = sorted(((types[k] - first.get(k, 0), k) for k in types), reverse=True)[:8]
        if not csv.exists():
            csv.write_text("t_s,rss_kb,malloc_held_kb,malloc_used_kb,traced_kb,objects,"
                           "rss_file_kb,rss_heap_kb,rss_anon_kb,rss_stack_kb,pyarenas_kb,"
                           "pyblocks_kb,sqlite_kb,"
                           "grown_types\n")
        kinds = _rss_by_kind()
        arenas_kb, blocks_kb = _pymalloc(folder, f"{role}-{pid}")
        with csv.open("a") as f:
            f.write(f"{time.monotonic() - t0:.0f},{_rss_kb()},{held // 1024},{used // 1024},"
                    f"{traced // 1024},{sum(types.values())},"
                    f"{kinds['file']},{kinds['heap']},{kinds['anon']},{kinds['stack']},"
                    f"{arenas_kb},{blocks_kb},{_sqlite_kb()},"
                    f"\"{' '.join(f'{k}+{d}' for d, k in grown if d > 0)}\"\n")
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(folder / f"{role}-{pid}-{n:03d}.tm"))
        n += 1


def _trim(every: float) -> None:
    """Experiment: give malloc's free pages back every ``every`` seconds."""
    trim = ctypes.CDLL("libc.so.6").malloc_trim
    while True:
        time.sleep(every)
        trim(0)


def _start() -> None:
    if os.environ.get("EBOARD_HEAP_TRIM"):
        threading.Thread(target=_trim, args=(float(os.environ["EBOARD_HEAP_TRIM"]),),
                         name="heaptrim", daemon=True).start()
    where = os.environ.get("EBOARD_HEAP_DIR")
    if not where:
        return
    folder = Path(where)
    folder.mkdir(parents=True, exist_ok=True)
    every = float(os.environ.get("EBOARD_HEAP_EVERY", "300"))
    collect = bool(os.environ.get("EBOARD_HEAP_COLLECT"))
    threading.Thread(target=_watch, args=(folder, every, collect), name="heapwatch",
                     daemon=True).start()


_start()
