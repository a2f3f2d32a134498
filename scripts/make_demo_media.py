"""Re-make the bundled demo media in assets/demo/media (needs Pillow and ffmpeg).

The files are committed, so the demo needs neither; this script only shows how
they were made and lets anyone make them again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "demo" / "media"
FONT = ROOT / "assets" / "fonts" / "NotoSans-Bold.ttf"

SLIDES = [
    (
        "tiem-chung.jpg",
        (0, 94, 160),
        (0, 160, 200),
        "Tiêm chủng mở rộng",
        "Trạm Y tế xã — Thứ Bảy hằng tuần",
    ),
    (
        "ve-sinh.jpg",
        (20, 120, 60),
        (120, 180, 60),
        "Ngày hội vệ sinh môi trường",
        "Toàn dân cùng tham gia — 7 giờ sáng Chủ Nhật",
    ),
    (
        "phong-chong-lu.jpg",
        (150, 60, 0),
        (230, 140, 30),
        "Phòng, chống lũ quét",
        "Chủ động sơ tán khỏi vùng nguy hiểm",
    ),
]


def slide(
    name: str, top: tuple[int, int, int], bottom: tuple[int, int, int], title: str, sub: str
) -> None:
    w, h = 1280, 720
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line(
            [(0, y), (w, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    big = ImageFont.truetype(str(FONT), 72)
    small = ImageFont.truetype(str(FONT), 40)
    draw.text((w // 2, h // 2 - 50), title, font=big, fill="white", anchor="mm")
    draw.text((w // 2, h // 2 + 60), sub, font=small, fill=(255, 240, 200), anchor="mm")
    img.save(OUT / name, quality=82)


def clip() -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-preset",
            "veryslow",
            "-crf",
            "32",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-shortest",
            str(OUT / "clip-demo.mp4"),
        ],
        check=True,
    )


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for s in SLIDES:
        slide(*s)
    clip()
