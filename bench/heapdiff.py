"""Compare two tracemalloc snapshots from the soak's heap watch: what grew, and where.

    .venv/bin/python -m bench.heapdiff OLD.tm NEW.tm [--top 25] [--by traceback|lineno|filename]
"""

from __future__ import annotations

import argparse
import tracemalloc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--by", default="lineno", choices=["traceback", "lineno", "filename"])
    a = ap.parse_args()
    old = tracemalloc.Snapshot.load(a.old)
    new = tracemalloc.Snapshot.load(a.new)
    noise = [tracemalloc.Filter(False, tracemalloc.__file__),
             tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    old, new = old.filter_traces(noise), new.filter_traces(noise)
    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    print(f"traced: {total_old / 1024:.0f} KB -> {total_new / 1024:.0f} KB "
          f"({(total_new - total_old) / 1024:+.0f} KB)")
    for st in new.compare_to(old, a.by)[: a.top]:
        print(f"{st.size_diff / 1024:+9.1f} KB {st.count_diff:+7d} blocks  "
              f"(now {st.size / 1024:.0f} KB)")
        frames = st.traceback if a.by == "traceback" else st.traceback[:1]
        for fr in list(frames)[-8:]:
            print(f"      {fr.filename}:{fr.lineno}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
