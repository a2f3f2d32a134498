"""Status-side benchmarks, on loopback against the reference server.

    .venv/bin/python -m bench.bench_status            # all of them
    .venv/bin/python -m bench.bench_status drain      # some of them

1. ``drain``: a full outbox (``status.outbox_max_records`` = 100,000 records, what a
   box cut off for weeks holds) sent to the reference server: wall time, records per
   second, bytes per record on the wire (request bodies), beside the baseline of
   inserting the same records into the server's table directly (no HTTP, no box).
2. ``fold``: folding 110,000 records down to the bound: time, rows kept.
3. ``heartbeat``: building the heartbeat body (median of 20) and its size.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from content_sync.db import store  # noqa: E402
from content_sync.net.http import make_session  # noqa: E402
from content_sync.report import outbox  # noqa: E402
from content_sync.report.status_report import build_status  # noqa: E402
from content_sync.server import Store  # noqa: E402
from content_sync.server.store import ops  # noqa: E402
from tests.kit.status import (  # noqa: E402
    BOARD,
    make_config,
    make_play,
    reference_server,
)

N = 100_000


def fill(db: Path, n: int) -> list[dict[str, Any]]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    recs = [make_play(f"item-{i % 40}", f"pl-{i % 4}", start + timedelta(seconds=15 * i), 15.0)
            for i in range(n)]
    conn = store.connect(db)
    with store.transaction(conn):
        for r in recs:
            store.add_play(conn, r)
    conn.close()
    return recs


def drain(tmp: Path) -> None:
    with reference_server(tmp / "source") as srv:
        config, _ = make_config(tmp / "box", srv.url, outbox_max_records=N)
        recs = fill(config.db_path, N)
        conn = store.connect(config.db_path)
        t0 = time.perf_counter()
        sent = 0
        while store.outbox_size(conn):
            r = outbox.upload_plays_once(config, conn, make_session(config))
            assert r.ok, r.error
            sent += r.accepted
        dt = time.perf_counter() - t0
        assert srv.db.play_totals(BOARD)["records"] == N
    plain = json.dumps({"records": recs[:outbox.BATCH_SIZE], "counts": []},
                       separators=(",", ":")).encode()
    packed = len(gzip.compress(plain, 6))
    base = Store(tmp / "baseline.db")
    base.migrate()
    t0 = time.perf_counter()
    for i in range(0, N, outbox.BATCH_SIZE):
        base.write(ops.store_plays, BOARD, recs[i:i + outbox.BATCH_SIZE], [])
    dt_base = time.perf_counter() - t0
    print(f"drain: {N} records in {dt:.1f} s ({N / dt:.0f} records/s), "
          f"{packed / outbox.BATCH_SIZE:.0f} bytes per record on the wire (gzip; "
          f"{len(plain) / outbox.BATCH_SIZE:.0f} plain); "
          f"baseline server-side insert alone {dt_base:.1f} s ({N / dt_base:.0f} records/s)")


def fold(tmp: Path) -> None:
    config, _ = make_config(tmp / "fold", "http://127.0.0.1:9/", outbox_max_records=N)
    fill(config.db_path, N + N // 10)
    conn = store.connect(config.db_path)
    t0 = time.perf_counter()
    folded = outbox.fold_if_needed(conn, N, config.tz)
    dt = time.perf_counter() - t0
    rows = conn.execute("SELECT count(*) FROM play_counts").fetchone()[0]
    print(f"fold: {folded} records folded into {rows} daily counts in {dt:.2f} s; "
          f"{store.outbox_size(conn)} records kept")


def heartbeat(tmp: Path) -> None:
    config, _ = make_config(tmp / "hb", "http://127.0.0.1:9/")
    fill(config.db_path, 1000)
    conn = store.connect(config.db_path)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        body = build_status(config, conn)
        times.append(time.perf_counter() - t0)
    size = len(json.dumps(body))
    packed = len(gzip.compress(json.dumps(body, separators=(",", ":")).encode(), 6))
    print(f"heartbeat: built in {statistics.median(times) * 1000:.1f} ms (median of 20), "
          f"{size} bytes of JSON, {packed} gzip-compressed")


def main(argv: list[str]) -> None:
    jobs = {"drain": drain, "fold": fold, "heartbeat": heartbeat}
    with tempfile.TemporaryDirectory() as d:
        for name in argv or list(jobs):
            jobs[name](Path(d) / name)


if __name__ == "__main__":
    main(sys.argv[1:])
