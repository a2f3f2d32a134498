"""The baselines for bench_player.py: the plainest Qt programs doing the same job.

    python bench/bench_player_baseline.py coldstart IMAGE WxH
    python bench/bench_player_baseline.py ticker SECONDS WxH
    python bench/bench_player_baseline.py idle SECONDS WxH

``coldstart`` shows an image scaled by Qt in a frameless window and prints the
monotonic time of its first paint; ``ticker`` scrolls a line with ``drawText`` from
a 16 ms QTimer (the usual hand-written ticker) and prints its frame-interval
statistics; ``idle`` shows an empty window and prints its resident memory.
"""

from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QApplication, QWidget

TEXT = "Lịch tiêm chủng mở rộng tháng 11 — Ủy ban nhân dân xã Pa Vệ Sủ thông báo " * 2


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Still(QWidget):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.img = QImage(path)
        self.done = False

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("black"))
        p.drawImage(self.rect(), self.img.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio))
        p.end()
        if not self.done:
            self.done = True
            print(f"first-paint {time.monotonic():.4f}", flush=True)
            QTimer.singleShot(200, QApplication.quit)


class NaiveTicker(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0
        self.last: float | None = None
        self.intervals: list[float] = []
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.step)
        self.timer.start(16)

    def step(self) -> None:
        self.offset -= 2
        self.update(QRect(0, self.height() - 40, self.width(), 40))

    def paintEvent(self, e: QPaintEvent) -> None:
        now = time.monotonic()
        if self.last is not None:
            self.intervals.append(now - self.last)
        self.last = now
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#001b2e"))
        f = QFont("Noto Sans")
        f.setPixelSize(24)
        p.setFont(f)
        p.setPen(QColor("#ffe08a"))
        p.drawText(int(self.offset) % 2000 - 1000, self.height() - 10, TEXT)
        p.end()


def main() -> int:
    mode = sys.argv[1]
    w, h = (int(v) for v in sys.argv[3].split("x"))
    app = QApplication(sys.argv[:1])
    if mode == "coldstart":
        win: QWidget = Still(sys.argv[2])
    elif mode == "ticker":
        win = NaiveTicker()
        QTimer.singleShot(int(float(sys.argv[2]) * 1000), app.quit)
    else:
        win = QWidget()
        QTimer.singleShot(int(float(sys.argv[2]) * 1000), app.quit)
    win.setWindowFlags(Qt.WindowType.FramelessWindowHint)
    win.setGeometry(0, 0, w, h)
    win.show()
    app.exec()
    if isinstance(win, NaiveTicker):
        xs = sorted(win.intervals[30:])
        print(json.dumps({"p50_ms": xs[len(xs) // 2] * 1000,
                          "p99_ms": xs[int(len(xs) * 0.99)] * 1000, "max_ms": xs[-1] * 1000,
                          "frames": len(xs)}), flush=True)
    print(f"rss-kb {rss_kb()}", flush=True)
    os._exit(0)  # PySide6's own clean-up is not what is measured here


if __name__ == "__main__":
    sys.exit(main())
