"""``eboard sync``: the content sync daemon, or one sync run with ``--once``."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from typing import TextIO

from eboard import malloc_tuning
from eboard.commands.common import add_config_option, config_or_exit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sync",
        help="fetch, verify and activate signed content from the source; run as the "
        "sync daemon (poll, long-poll, heartbeat) or once with --once",
        description="Without --once: the sync daemon (polls the source with jitter, follows "
        "its events long-poll, sends heartbeats). With --once: one sync run; exit 0 when the "
        "active manifest is the newest the source offers, else 1 with the reason. "
        "Every media is checked before use: SHA-256 and size; images decoded with Pillow "
        "(decompression bombs refused); videos decoded for one frame with ffmpeg when "
        "installed, else probed with ffprobe, else checked by container signature only.",
    )
    add_config_option(p)
    p.add_argument("--once", action="store_true", help="sync once and exit")
    p.set_defaults(func=run)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class ProgressReporter:
    """A progress bar (files, bytes, rate) on a terminal; plain lines otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.Lock()
        self.files = self.done_files = 0
        self.total = self.done = 0
        self.start = time.monotonic()
        self.last_draw = 0.0

    def begin(self, files: int, total_bytes: int) -> None:
        self.files, self.total, self.start = files, total_bytes, time.monotonic()
        if not self.tty:
            print(f"downloading {files} media, {_size(total_bytes)}", file=self.out, flush=True)

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            now = time.monotonic()
            if self.tty and now - self.last_draw > 0.2:
                self.last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        rate = self.done / max(now - self.start, 1e-3)
        self.out.write(f"\r[{bar:<30}] {self.done_files}/{self.files} files "
                       f"{_size(self.done)}/{_size(self.total)} {_size(rate)}/s ")
        self.out.flush()

    def file_done(self, sha: str, error: str | None) -> None:
        with self.lock:
            self.done_files += 1
            if self.tty:
                if error:
                    self.out.write(f"\r{error}\n")
                self._draw(time.monotonic())
            else:
                what = f"failed: {error}" if error else "ok"
                print(f"[{self.done_files}/{self.files}] {sha[:12]}… {what}", file=self.out,
                      flush=True)

    def end(self) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-3)
        if self.tty:
            self.out.write("\n")
        print(f"downloaded {_size(self.done)} in {elapsed:.1f} s "
              f"({_size(self.done / elapsed)}/s)", file=self.out, flush=True)


def run(args: argparse.Namespace) -> int:
    malloc_tuning.tune()  # before any thread: a daemon that runs for months
    config = config_or_exit(args)
    # Imported here so that `eboard --help` stays quick.
    from content_sync.board import Engine
    from content_sync.daemon import Daemon
    from content_sync.db import SchemaTooNew, store
    from content_sync.net import SourceConfigError, quiet_library_logs
    from content_sync.protocol import KeyFileError

    quiet_library_logs()
    try:
        if not args.once:
            return Daemon(config).run_forever()
        conn = store.connect(config.db_path)
        try:
            result = Engine(config, conn).sync_once(ProgressReporter(sys.stdout))
        finally:
            conn.close()
    except (SourceConfigError, KeyFileError, SchemaTooNew) as e:
        print(f"eboard sync: {e}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:
        print(f"eboard sync: cannot use the cache {config.cache_dir} ({e}); check cache.dir, "
              "its permissions and free space", file=sys.stderr)
        return 2
    if result.ok:
        print(f"up to date: {result.reason}")
        return 0
    print(f"eboard sync: {result.state.value}: {result.reason}", file=sys.stderr)
    return 1
