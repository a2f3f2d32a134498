"""Run the benchmarks one after another: ``python -m bench [NAME ...]`` (``make bench``).

    .venv/bin/python -m bench                 # every bench_*.py in bench/
    .venv/bin/python -m bench sync player     # bench_sync.py, then bench_player.py
    .venv/bin/python -m bench soak            # bench/soak.py (10 minutes; not in the default set)
    .venv/bin/python -m bench --list

Each benchmark is its own module, run as ``python -m bench.NAME`` in a subprocess from the
project root (so ``tests.kit`` imports without editing ``sys.path``), its output
passed through as it comes; a summary of exit codes and wall times follows. The exit
status is 1 if any benchmark failed. Numbers go into docs/PERFORMANCE.md (by hand:
each script prints its table) and docs/RELIABILITY.md (the soak).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELPERS = {"bench_player_baseline"}  # called by bench_player.py, not a benchmark itself
EXTRA = {"soak": HERE / "soak.py"}   # long: runs only when named


def available() -> dict[str, Path]:
    found = {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))
             if p.stem not in HELPERS}
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all but soak)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    default = available()
    every = {**default, **EXTRA}
    if args.list:
        for name, path in every.items():
            doc = path.read_text().split('"""')[1].strip().splitlines()[0]
            print(f"{name:12} {path.relative_to(ROOT)}  {doc}")
        return 0
    unknown = [n for n in args.names if n not in every]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(every)}",
              file=sys.stderr)
        return 2
    chosen = {n: every[n] for n in args.names} if args.names else default
    results: list[tuple[str, int, float]] = []
    for name, path in chosen.items():
        print(f"\n=== {name}: {path.relative_to(ROOT)} ===", flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.run([sys.executable, "-m", f"bench.{path.stem}"], cwd=ROOT).returncode
        except KeyboardInterrupt:
            rc = 130
        results.append((name, rc, time.monotonic() - t0))
        if rc == 130:
            break
    print("\n=== summary ===")
    for name, rc, secs in results:
        print(f"{name:12} {'ok' if rc == 0 else f'FAILED (exit {rc})':16} {secs:8.1f} s")
    return 0 if all(rc == 0 for _, rc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
