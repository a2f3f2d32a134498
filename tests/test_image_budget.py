"""The board's pixel budget (content_sync/runtime/pixel_budget.py): an image above it
is refused from its header by the sync's check and by the player, before a pixel is
decoded; the largest accepted one is decoded by the player in bounded memory (VmHWM of a
real process, bounded by the image's own size, not by a figure of this machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from content_sync.board import media_check
from content_sync.board.media_check import ContentRefused
from content_sync.runtime import MAX_PIXELS
from player import images
from tests.kit.reliability import ROOT

SIDE = 6324  # the largest square within the budget
assert SIDE * SIDE <= MAX_PIXELS < (SIDE + 1) * (SIDE + 1)


def _header_only_png(w: int, h: int) -> bytes:
    """A PNG whose header claims ``w`` × ``h`` and that holds no pixel data at all: a
    refusal that reads it must come from the header, since there is nothing to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("w, h", [(SIDE + 1, SIDE + 1), (9400, 9400), (40_000_001, 1)])
def test_above_the_budget_is_refused_from_the_header_by_the_check(
        tmp_path: Path, w: int, h: int) -> None:
    p = tmp_path / "f"
    p.write_bytes(_header_only_png(w, h))
    with pytest.raises(ContentRefused, match="above the board's budget of 40 megapixels") as e:
        media_check.check(p, "image/png")
    assert f"{w}×{h}" in str(e.value) and "publish it scaled down" in str(e.value)


def test_above_the_budget_is_refused_from_the_header_by_the_player(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(_header_only_png(9400, 9400))
    with pytest.raises(images.ImageError, match="above the board's budget"):
        images.load_scaled(p, 1920, 1080, "fit", True)


def test_the_budget_itself_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "f.png"
    Image.new("RGB", (SIDE, SIDE), (1, 2, 3)).save(p, compress_level=1)
    media_check.check(p, "image/png")


def test_a_strip_by_strip_reduce_is_the_whole_reduce(tmp_path: Path) -> None:
    src = Image.frombytes("RGBA", (1001, 777), os.urandom(1001 * 777 * 4))
    got = images._reduced(src, (300, 200), strip_pixels=20_000)
    assert got.tobytes() == src.reduce(3).tobytes()
    pal = src.convert("RGB").convert("P")
    got = images._reduced(pal, (300, 200), strip_pixels=20_000)
    assert got.mode == "RGB" and got.tobytes() == pal.convert("RGB").reduce(3).tobytes()


def test_the_decode_is_reduced_to_the_zone_and_stays_upright(tmp_path: Path) -> None:
    """A JPEG turned by EXIF (orientation 6: a quarter turn) still fills the zone the
    right way up when it is decoded at a reduced scale."""
    im = Image.new("RGB", (1600, 800), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 800, 800))  # blue left half
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: the blue half on top
    p = tmp_path / "f.jpg"
    im.save(p, exif=exif, quality=95)
    out = images.load_scaled(p, 100, 200, "stretch", True)
    assert (out.width(), out.height()) == (100, 200)
    top, bottom = out.pixelColor(50, 40), out.pixelColor(50, 160)
    assert top.blue() > 200 and top.red() < 60, top.name()
    assert bottom.red() > 200 and bottom.blue() < 60, bottom.name()
    assert images.needed((1600, 800), 100, 200, "stretch", 6) == (200, 100)
    assert images.needed((1600, 800), 100, 200, "fit", 1) == (100, 50)
    assert images.needed((1600, 800), 100, 200, "fill", 1) == (400, 200)


PEAK = """
import sys
from pathlib import Path
from PySide6.QtGui import QGuiApplication
from player.images import load_scaled

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
base = hwm()
img = load_scaled(Path(sys.argv[1]), 1920, 1080, "fit", True)
assert (img.width(), img.height()) == (1920, 1080)
print(hwm() - base)
"""


def _player_peak(path: Path) -> int:
    p = subprocess.run([sys.executable, "-c", PEAK, str(path)], cwd=ROOT, timeout=300,
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"})
    assert p.returncode == 0, p.stderr[-3000:]
    return int(p.stdout.strip())


def test_the_player_decodes_the_largest_accepted_image_in_bounded_memory(
        tmp_path: Path) -> None:
    """Bounds from the image's own size: a JPEG is decoded at a reduced scale (less than
    a whole decode, SIDE² × 4 bytes); an RGBA PNG whole, but with no second whole-size
    copy (a premultiplied one for reduce, a turned one, a converted one)."""
    whole = SIDE * SIDE * 4
    gradient = Image.linear_gradient("L").resize((SIDE, SIDE))
    rgba = Image.merge("RGBA", (gradient, gradient.rotate(90), gradient.rotate(180), gradient))
    png, jpg = tmp_path / "big.png", tmp_path / "big.jpg"
    rgba.save(png, compress_level=1)
    rgba.convert("RGB").save(jpg, quality=85)
    del rgba, gradient
    peak_png, peak_jpg = _player_peak(png), _player_peak(jpg)
    print(f"player peak over its base, {SIDE}×{SIDE}: RGBA PNG {peak_png / 2**20:.0f} MB, "
          f"JPEG {peak_jpg / 2**20:.0f} MB (a whole decode: {whole / 2**20:.0f} MB)")
    assert peak_jpg < whole / 2
    assert peak_png < whole * 1.5
