"""The player under a real X server: the window follows the screen's resolution.

The real player (``eboard play``, Qt's xcb platform) on a private Xvfb that starts at
1920x1080. The test changes the X screen live with ``xrandr`` — a new mode (the
framebuffer and the output's mode together, as a sending card's or a TV's EDID
would bring), and the monitor switched off and on (the output's CRTC disabled, so
RandR reports no monitor, then enabled again at another size). Everything is checked
from outside the player: the window's geometry with ``xwininfo -root -tree`` and its
frameless, on-top, fullscreen hints with ``xprop``, the X
root's pixels (Pillow's grab over XCB), and the player's own status row in SQLite.

The picture is an image of two colours (top half red, bottom half blue) stretched
over the whole main area, header and ticker off: any black band, any picture left
at the old size, or a lost rotation shows in the grab.

Xvfb's limits: its framebuffer can never grow beyond the size it started with (hence
1920x1080 first), its single output is always "connected" (a cable pulled, i.e. a
hot-unplug with a new EDID, cannot be made; the monitor going away is simulated by
switching its CRTC off), and it has no window manager.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image, ImageGrab

from content_sync.db import store
from kiosk_config import load_config
from tests.kit.player import Board, Xvfb, playlist
from tests.kit.reliability import Proc, box_config, start_player
from tests.kit.status import wait_until

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("Xvfb", "xrandr", "xwininfo", "xprop")),
    reason="Xvfb, xrandr, xwininfo and xprop are needed (make setup installs them)")

RED = (200, 20, 20)
BLUE = (20, 20, 200)
BLACK = (0, 0, 0)
NAME = "Xã Pa Vệ Sủ"  # the board name of tests.kit.reliability.box_config
Rect = tuple[int, int, int, int]  # width, height, x, y


class XScreen:
    """xrandr and xwininfo on one display."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.env = {**os.environ, "DISPLAY": display}
        out = self.run("xrandr", "-q")
        m = re.search(r"^(\S+) connected", out, re.MULTILINE)
        assert m, out
        self.output = m.group(1)

    def run(self, *args: str) -> str:
        r = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, f"{args}: {r.stderr}"
        return r.stdout

    def add_mode(self, w: int, h: int) -> str:
        name = f"{w}x{h}_eboard"
        self.run("xrandr", "--newmode", name, "60", str(w), str(w + 8), str(w + 16),
                 str(w + 24), str(h), str(h + 1), str(h + 2), str(h + 3))
        self.run("xrandr", "--addmode", self.output, name)
        return name

    def set_mode(self, mode: str, w: int, h: int) -> None:
        """A new resolution: the framebuffer and the output's mode in one request."""
        self.run("xrandr", "--fb", f"{w}x{h}", "--output", self.output, "--mode", mode)

    def monitor_off(self) -> None:
        """The monitor switched off: its CRTC disabled, RandR lists no monitor."""
        w, h = self.size()
        self.run("xrandr", "--fb", f"{w}x{h}", "--output", self.output, "--off")
        assert "Monitors: 0" in self.run("xrandr", "--listmonitors")

    def size(self) -> tuple[int, int]:
        m = re.search(r"current (\d+) x (\d+)", self.run("xrandr", "-q"))
        assert m
        return int(m.group(1)), int(m.group(2))

    def window(self) -> Rect | None:
        """The player's top-level window as the X server has it (absolute position)."""
        for line in self.run("xwininfo", "-root", "-tree").splitlines():
            if f'"eboard — {NAME}"' in line:
                m = re.search(r"(\d+)x(\d+)[+-]\d+[+-]\d+\s+\+(-?\d+)\+(-?\d+)", line)
                if m:
                    w, h, x, y = (int(g) for g in m.groups())
                    return w, h, x, y
        return None

    def window_hints(self) -> tuple[set[str], bool]:
        """The player window's _NET_WM_STATE atoms, and whether it asks for no frame
        (_MOTIF_WM_HINTS: the decorations flag set, decorations 0)."""
        tree = self.run("xwininfo", "-root", "-tree").splitlines()
        wid = next(ln.split()[0] for ln in tree if f'"eboard — {NAME}"' in ln)
        props = self.run("xprop", "-id", wid, "_NET_WM_STATE", "_MOTIF_WM_HINTS")
        state = re.search(r"_NET_WM_STATE\(ATOM\) = (.*)", props)
        motif = re.search(r"_MOTIF_WM_HINTS\(_MOTIF_WM_HINTS\) = (.*)", props)
        assert state and motif, props
        flags, _functions, decorations = (int(v, 16) for v in motif.group(1).split(", ")[:3])
        return set(state.group(1).split(", ")), bool(flags & 2) and decorations == 0

    def grab(self) -> Image.Image:
        return ImageGrab.grab(xdisplay=self.display).convert("RGB")


def two_colours() -> bytes:
    img = Image.new("RGB", (64, 64), RED)
    img.paste(BLUE, (0, 32, 64, 64))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def is_all(img: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int],
           tol: int = 40) -> bool:
    """Every pixel of ``box`` (left, top, right, bottom) is ``colour``."""
    ext = cast(tuple[tuple[int, int], ...], img.crop(box).getextrema())  # RGB: per band
    return all(lo >= c - tol and hi <= c + tol for (lo, hi), c in zip(ext, colour, strict=True))


def picture_at(img: Image.Image, rect: Rect, rotation: int) -> list[str]:
    """What is wrong with the two-colour picture in ``rect`` of the grab (empty: right).
    The split between the halves is left out (smooth scaling blends it)."""
    w, h, x, y = rect
    m = max(4, min(w, h) // 50)
    if rotation in (0, 180):
        first, second = (x, y, x + w, y + h // 2 - m), (x, y + h // 2 + m, x + w, y + h)
    else:
        first, second = (x, y, x + w // 2 - m, y + h), (x + w // 2 + m, y, x + w, y + h)
    # The logical top (red) is physically at the top (0), right (90), bottom (180),
    # left (270).
    red, blue = (first, second) if rotation in (0, 270) else (second, first)
    problems = []
    for name, box, colour in (("red", red, RED), ("blue", blue, BLUE)):
        if not is_all(img, box, colour):
            problems.append(f"{name} half {box} is not all {name}: {img.crop(box).getextrema()}")
    return problems


def black_outside(img: Image.Image, rect: Rect) -> bool:
    w, h, x, y = rect
    sw, sh = img.size
    boxes = [(0, 0, sw, y), (0, y + h, sw, sh), (0, y, x, y + h), (x + w, y, sw, y + h)]
    return all(is_all(img, b, BLACK, tol=0) for b in boxes if b[2] > b[0] and b[3] > b[1])


def player_status(db: Path) -> dict[str, Any]:
    conn = store.connect(db, readonly=True)
    try:
        return store.get_status(conn, "player") or {}
    finally:
        conn.close()


def status_rect(db: Path) -> Rect | None:
    s = player_status(db).get("screen") or {}
    if not all(isinstance(s.get(k), int) for k in ("width", "height", "x", "y")):
        return None
    return s["width"], s["height"], s["x"], s["y"]


def start_board(tmp_path: Path, display: str, **settings: Any) -> tuple[Proc, Path]:
    cfg = box_config(tmp_path / "box", "http://127.0.0.1:9/", [],
                     display={"header": False, "ticker": False, "image_fit": "stretch",
                              **settings})
    config = load_config(cfg)
    board = Board(config)
    media = board.add_media(two_colours())
    board.publish([playlist("thong-bao", [
        {"id": "hai-mau", "type": "image", "media": media, "duration": 3600}])])
    board.close()
    player = start_player(cfg, tmp_path / "logs", QT_QPA_PLATFORM="xcb", DISPLAY=display)
    return player, config.db_path


def settled(x: XScreen, db: Path, player: Proc, rect: Rect, rotation: int,
            black_around: bool = False) -> None:
    """Wait until window, status and pixels all show the picture in ``rect``."""
    def ok() -> bool:
        if x.window() != rect or status_rect(db) != rect:
            return False
        img = x.grab()
        return not picture_at(img, rect, rotation) and (not black_around
                                                        or black_outside(img, rect))

    if not wait_until(ok, timeout=30):
        img = x.grab()
        pytest.fail(f"expected the picture at {rect} (rotation {rotation}) on a "
                    f"{img.size} screen; window {x.window()}, status {status_rect(db)}, "
                    f"pixels: {picture_at(img, rect, rotation)}, black around: "
                    f"{black_outside(img, rect)}\n{player.text()[-3000:]}")
    assert player.alive()


def changes_logged(player: Proc) -> list[str]:
    return [ln for ln in player.text().splitlines() if "the screen changed from" in ln]


def change_logged(player: Proc, count: int, to: str) -> None:
    """Wait for the player's ``count``-th line about a new screen, naming ``to``."""
    def seen() -> bool:
        logged = changes_logged(player)
        return len(logged) >= count and f"to {to}:" in logged[count - 1]

    assert wait_until(seen, timeout=30), player.text()[-3000:]


def test_fullscreen_follows_a_new_resolution_and_a_monitor_off_and_on(tmp_path: Path) -> None:
    with Xvfb("1920x1080x24") as xvfb:
        x = XScreen(xvfb.display)
        hd, small = x.add_mode(1280, 720), x.add_mode(1024, 768)
        rotation = 90
        player, db = start_board(tmp_path, xvfb.display, geometry="fullscreen",
                                 rotation=rotation)
        try:
            settled(x, db, player, (1920, 1080, 0, 0), rotation)
            assert changes_logged(player) == []

            x.set_mode(hd, 1280, 720)  # a smaller mode: the old picture would be cut
            settled(x, db, player, (1280, 720, 0, 0), rotation)
            change_logged(player, 1, "1280x720+0+0")
            assert x.grab().size == (1280, 720)

            x.set_mode(small, 1024, 768)  # another aspect ratio: 4:3
            settled(x, db, player, (1024, 768, 0, 0), rotation)
            change_logged(player, 2, "1024x768+0+0")

            # The TV is switched off (no monitor: Qt keeps a placeholder screen) and on
            # again at its full resolution, larger than the window: a black band
            # without the new placement.
            x.monitor_off()
            assert player.alive()
            x.set_mode("1920x1080", 1920, 1080)  # Xvfb's own first mode
            settled(x, db, player, (1920, 1080, 0, 0), rotation)
            change_logged(player, 3, "1920x1080+0+0")
            assert player_status(db).get("current", {}).get("item_id") == "hai-mau"
            state, frameless = x.window_hints()
            assert {"_NET_WM_STATE_FULLSCREEN", "_NET_WM_STATE_ABOVE"} <= state
            assert frameless
        finally:
            rc = player.stop()
        assert rc == 0, player.text()[-3000:]
        # One line per transition, however many signals each one brought.
        logged = changes_logged(player)
        assert len(logged) == 3, logged
        assert "to 1280x720+0+0" in logged[0] and "to 1024x768+0+0" in logged[1]
        assert "from 1024x768+0+0 to 1920x1080+0+0" in logged[2]
        assert all("rotation 90" in ln for ln in logged)
        # Redrawn, not restarted: one record of the picture through every change.
        conn = store.connect(db, readonly=True)
        try:
            plays = conn.execute("SELECT item_id, outcome FROM plays").fetchall()
        finally:
            conn.close()
        assert [tuple(r) for r in plays] == [("hai-mau", "played")]


def test_exact_rectangle_stays_put_when_the_screen_changes(tmp_path: Path) -> None:
    rect = (1280, 720, 320, 180)  # the HDMI area an LED sending card mirrors
    rotation = 180
    with Xvfb("1920x1080x24") as xvfb:
        x = XScreen(xvfb.display)
        fits, cut = x.add_mode(1600, 900), x.add_mode(1280, 720)
        player, db = start_board(tmp_path, xvfb.display, geometry="1280x720+320+180",
                                 rotation=rotation)
        try:
            settled(x, db, player, rect, rotation, black_around=True)

            x.set_mode(fits, 1600, 900)  # the rectangle still fits, to the last pixel
            change_logged(player, 1, "1600x900+0+0")
            settled(x, db, player, rect, rotation, black_around=True)

            x.set_mode(cut, 1280, 720)  # it no longer fits: kept as configured, said so
            change_logged(player, 2, "1280x720+0+0")
            assert "display.geometry 1280x720+320+180 is not inside the screen " \
                   "1280x720+0+0" in player.text()
            assert x.window() == rect and status_rect(db) == rect

            x.monitor_off()
            x.set_mode("1920x1080", 1920, 1080)  # on again, at the full size
            change_logged(player, 3, "1920x1080+0+0")
            settled(x, db, player, rect, rotation, black_around=True)
            state, frameless = x.window_hints()
            assert "_NET_WM_STATE_ABOVE" in state and "_NET_WM_STATE_FULLSCREEN" not in state
            assert frameless
        finally:
            rc = player.stop()
        assert rc == 0, player.text()[-3000:]
        logged = changes_logged(player)
        assert len(logged) == 3, logged
        assert all("window placed at 1280x720+320+180, rotation 180" in ln for ln in logged)
