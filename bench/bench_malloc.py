"""The cost of the malloc settings on the player's frame path (eboard/malloc_tuning.py).

A fixed mmap threshold puts every frame-sized block in its own mapping, which the
kernel must fill with zeros again for the next frame; glibc's default reuses heap
memory. This times what ``player/video.py`` does per frame (``bytes`` of libVLC's
buffer, then a ``QImage`` copy) at three frame sizes, in fresh processes with and
without ``malloc_tuning.tune()``, alternating, and prints the ratio.

    .venv/bin/python -m bench.bench_malloc [--frames 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(480, 270), (1280, 720), (1920, 1080)]

WORKER = r"""
import ctypes, json, sys, time
from eboard import malloc_tuning
if sys.argv[1] == "tuned":
    assert malloc_tuning.tune()
from PySide6.QtGui import QImage
w, h, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pitch = w * 4
buf = ctypes.create_string_buffer(pitch * h)
raw = (ctypes.c_char * (pitch * h)).from_address(ctypes.addressof(buf))
del bytearray(64 << 20)[:]  # as after a decoded photo: glibc's threshold goes up
t0 = time.perf_counter()
for _ in range(n):
    img = QImage(bytes(raw), w, h, pitch, QImage.Format.Format_RGB32).copy()
    del img
print(json.dumps({"ms_per_frame": (time.perf_counter() - t0) * 1000 / n}))
"""


def one(mode: str, w: int, h: int, frames: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run([sys.executable, "-c", WORKER, mode, str(w), str(h), str(frames)],
                         capture_output=True, text=True, env=env, check=True).stdout
    return float(json.loads(out)["ms_per_frame"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print("| frame | glibc default | tuned | ratio | tuned, share of a 25-fps frame time |")
    print("|---|---|---|---|---|")
    for w, h in SIZES:
        times: dict[str, list[float]] = {"default": [], "tuned": []}
        for _ in range(a.rounds):
            for mode in times:
                times[mode].append(one(mode, w, h, a.frames))
        d, t = statistics.median(times["default"]), statistics.median(times["tuned"])
        print(f"| {w}×{h} | {d:.3f} ms | {t:.3f} ms | {t / d:.2f}× | {t / 40 * 100:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
