"""The cost of the sync daemon's garbage collection a minute (``content_sync/daemon.py``).

Times ``gc.collect()`` in fresh processes, side by side: a bare interpreter (the
baseline), one that imported what ``eboard sync`` imports (the daemon at rest), and the
same holding a minute's worth of a failing link's garbage (2,000 caught connection
errors, each a traceback cycle: more than the soak's link cuts make in a minute). Prints
the median milliseconds per collection, the ratio to the baseline and the share of one
core at one collection a minute.

    .venv/bin/python -m bench.bench_collect [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import gc, json, sys, time
case = sys.argv[1]
if case != "bare":
    import eboard.commands.sync, content_sync.daemon, content_sync.board.engine  # noqa: F401
    import requests
keep = []
if case == "garbage":
    def fail():
        try:
            raise requests.ConnectionError("link down")
        except requests.ConnectionError as e:
            err = e  # the frame holds the exception, the exception its traceback: a cycle
            return err
    gc.disable()
    for _ in range(2000):
        fail()
gc.collect()
times = []
for _ in range(5):
    if case == "garbage":
        for _ in range(2000):
            fail()
    objects = len(gc.get_objects())  # before: what the collection goes through
    t0 = time.perf_counter()
    gc.collect()
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"ms": sorted(times)[2], "objects": objects}))
"""


def one(case: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", WORKER, case], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    cases = ["bare", "daemon", "garbage"]
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in cases}
    for _ in range(a.rounds):  # alternating, so that machine noise falls on all alike
        for c in cases:
            runs[c].append(one(c))
    base = statistics.median(r["ms"] for r in runs["bare"])
    print(f"{'case':<10} {'objects':>8} {'ms/collection':>14} {'× bare':>8} {'core share':>11}")
    for c in cases:
        ms = statistics.median(r["ms"] for r in runs[c])
        objs = statistics.median(r["objects"] for r in runs[c])
        print(f"{c:<10} {objs:>8.0f} {ms:>14.2f} {ms / base:>8.1f} {ms / 60_000:>10.4%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
