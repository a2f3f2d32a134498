"""What the board looks like: image scaling, EXIF, rotation, zones, risk colours, ticker."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from pytestqt.qtbot import QtBot

from content_sync.protocol.manifest import Item, Playlist
from player import fonts, images, look, slides
from player.bands import Ticker
from player.window import PlayerWindow
from tests.kit.player import Board, make_config, playlist


def two_tone(size: tuple[int, int] = (100, 50)) -> Image.Image:
    """Left half red, right half blue."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


def rgb(img: QImage, x: int, y: int) -> tuple[int, int, int]:
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def near(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 30) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("fit", ["fit", "fill", "stretch"])
def test_fit_fill_stretch(tmp_path: Path, qtbot: QtBot, fit: str) -> None:
    path = save(two_tone((100, 50)), tmp_path / "a.png")
    out = images.load_scaled(path, 100, 100, fit, smooth=True)
    assert (out.width(), out.height()) == (100, 100)
    if fit == "fit":  # letterboxed top and bottom
        assert near(rgb(out, 50, 5), (0, 0, 0))
        assert near(rgb(out, 20, 50), (255, 0, 0)) and near(rgb(out, 80, 50), (0, 0, 255))
    elif fit == "fill":  # cropped: no bars, the centre column is the red/blue edge
        assert near(rgb(out, 5, 5), (255, 0, 0)) and near(rgb(out, 95, 95), (0, 0, 255))
    else:  # stretched: no bars, halves kept
        assert near(rgb(out, 5, 5), (255, 0, 0)) and near(rgb(out, 95, 5), (0, 0, 255))


def test_exif_orientation_is_honoured(tmp_path: Path, qtbot: QtBot) -> None:
    # Stored landscape red|blue with orientation 6 (rotate 90° clockwise to display):
    # shown portrait with red on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(two_tone((100, 50)), tmp_path / "p.jpg", format="JPEG", exif=exif, quality=95)
    out = images.load_scaled(path, 50, 100, "stretch", smooth=True)
    assert near(rgb(out, 25, 10), (255, 0, 0), 60)
    assert near(rgb(out, 25, 90), (0, 0, 255), 60)


def test_nearest_neighbour_keeps_hard_edges(tmp_path: Path, qtbot: QtBot) -> None:
    checker = Image.new("RGB", (4, 1), (0, 0, 0))
    for x in (1, 3):
        checker.putpixel((x, 0), (255, 255, 255))
    path = save(checker, tmp_path / "c.png")
    sharp = images.load_scaled(path, 40, 10, "stretch", smooth=False)
    soft = images.load_scaled(path, 40, 10, "stretch", smooth=True)
    sharp_values = {rgb(sharp, x, 5)[0] for x in range(40)}
    assert sharp_values == {0, 255}
    assert len({rgb(soft, x, 5)[0] for x in range(40)}) > 2


def test_image_cache_scales_once(tmp_path: Path, qtbot: QtBot) -> None:
    path = save(two_tone(), tmp_path / "a.png")
    cache = images.ImageCache()
    first = cache.get(path, "sha", 80, 40, "fit", True)
    path.unlink()  # a second get must not read the file again
    assert cache.get(path, "sha", 80, 40, "fit", True) is first
    with pytest.raises(images.ImageError):
        cache.get(path, "sha", 81, 40, "fit", True)


def test_corrupt_image_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(images.ImageError, match="cannot decode"):
        images.load_scaled(path, 10, 10, "fit", True)


def test_zones_for_large_and_small_boards() -> None:
    z = look.zones(1920, 1080, True, True)
    assert z.header is not None and z.ticker is not None
    assert z.main[1] == z.header[3] and z.main[1] + z.main[3] == z.ticker[1]
    strip = look.zones(1920, 96, True, True)  # a one-line LED strip
    assert strip.header is None and strip.ticker is None and strip.main == (0, 0, 1920, 96)
    small = look.zones(768, 384, True, True)
    assert small.header is not None and small.main[3] > 384 * 0.7
    assert look.logical_size(1920, 1080, 90) == (1080, 1920)


def test_emergency_banner_uses_the_risk_level_colour(qtbot: QtBot) -> None:
    fonts.family()
    item = Item.model_validate({"id": "e", "type": "text", "title": "BÃO SỐ 9",
                                "body": "Gió giật cấp 14", "instructions": "Gia cố nhà cửa"})
    seen = set()
    for level in (1, 2, 3, 4, 5, None):
        pl = Playlist.model_validate({"id": "e", "priority": "emergency", "risk_level": level,
                                      "items": [item.model_dump()]})
        img = slides.emergency_banner(item, pl, 320, 180)
        bg, fg = look.emergency_colours(level)
        area = sum(img.pixelColor(x, y) == QColor(bg) for x in range(0, 320, 2)
                   for y in range(0, 180, 2))
        assert area > 0.5 * 160 * 90, level
        seen.add(bg)
        # The text colour is on the banner (headline and frame).
        ink = sum(img.pixelColor(x, y) == QColor(fg) for x in range(0, 320, 2)
                  for y in range(0, 180, 2))
        assert ink > 100, level
    assert len(seen) == 6


def test_text_colours_follow_priority(qtbot: QtBot) -> None:
    fonts.family()
    item = Item.model_validate({"id": "t", "type": "text", "title": "Tin", "body": "Nội dung"})
    normal = slides.text_notice(item, "normal", 200, 100)
    prio = slides.text_notice(item, "priority", 200, 100)
    assert normal.pixelColor(100, 98) == QColor(look.PALETTES["normal"].background)
    assert prio.pixelColor(100, 98) == QColor(look.PALETTES["priority"].background)
    assert prio.pixelColor(100, 1) == QColor(look.PALETTES["priority"].title)  # the top bar


def test_ticker_moves_at_constant_pixels_per_second(qtbot: QtBot) -> None:
    fonts.family()
    t = Ticker(speed=120)
    t.set_text("Lịch tiêm chủng tháng 11 — Ủy ban nhân dân xã", 40, "#ffffff", "#000000")
    x0, cycle = t.offset(800, t._t0)
    x1, _ = t.offset(800, t._t0 + 0.5)
    x2, _ = t.offset(800, t._t0 + 1.0)
    assert (x0 - x1) % cycle == 60 and (x1 - x2) % cycle == 60
    frames = []
    for k in range(3):
        img = QImage(800, 40, QImage.Format.Format_RGB32)
        p = QPainter(img)
        t.paint(p, QRect(0, 0, 800, 40), t._t0 + k / 60)
        p.end()
        frames.append(img)
    assert frames[0] != frames[1] != frames[2]
    assert t.frame_stats()["frames"] == 2
    assert not t.set_text("Lịch tiêm chủng tháng 11 — Ủy ban nhân dân xã", 40, "#ffffff",
                          "#000000")


@pytest.fixture
def rotated(tmp_path: Path) -> Iterator[Board]:
    b = Board(make_config(tmp_path, geometry="180x320+0+0", rotation=90, header=False))
    yield b
    b.close()


def test_rotation_90_turns_the_picture(qtbot: QtBot, rotated: Board) -> None:
    buf = io.BytesIO()
    two_tone((320, 180)).save(buf, format="PNG")  # landscape content, red left, blue right
    sha = rotated.add_media(buf.getvalue())
    rotated.publish([playlist("p", [{"id": "i", "type": "image", "media": sha,
                                     "duration": 60}])])
    w = PlayerWindow(rotated.config)
    qtbot.addWidget(w)
    w.show_on_screen()
    qtbot.waitUntil(lambda: w.current is not None, timeout=5000)
    img = w.grab().toImage()
    assert (img.width(), img.height()) == (180, 320)
    # Rotated 90° clockwise: the content's left (red) is at the top of the screen.
    assert near(rgb(img, 90, 40), (255, 0, 0)) and near(rgb(img, 90, 280), (0, 0, 255))
