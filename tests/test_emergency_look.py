"""Large Vietnamese emergency text fitted to the board, on LED strip boards.

On a strip (1920×96 is a common size) the emergency banner used to stack label,
headline, body and instructions in one picture: the headline came out about 12 px
tall, unreadable from the street. Now each gets a page of its own behind a
"KHẨN CẤP" badge, at the largest size the strip allows, and the window turns the
pages while the item is on screen. A full-size board keeps the single banner.

What the window paints is measured: the tallest band of rows holding the banner's
white text, right of the badge and inside the frame.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from tests.kit.player import Board, make_config, playlist, window_around


def tallest_text_band(img: QImage, inset: int = 6, left: int = 0) -> int:
    """Height in pixels of the tallest run of rows that hold white (text) pixels,
    looking at the columns from ``left`` (past the badge) to the frame."""
    best = run = 0
    for y in range(inset, img.height() - inset):
        lit = any(min(c.red(), c.green(), c.blue()) > 200
                  for c in (img.pixelColor(x, y)
                            for x in range(max(inset, left), img.width() - inset, 2)))
        run = run + 1 if lit else 0
        best = max(best, run)
    return best


def emergency_window(tmp_path: Path, geometry: str, qtbot: Any) -> Any:
    from player.window import PlayerWindow

    config = make_config(tmp_path, geometry=geometry, header=False, ticker=False)
    board = Board(config)
    board.publish([playlist("khan-cap", [{
        "id": "lu-1", "type": "text", "title": "CẢNH BÁO LŨ QUÉT",
        "body": "Mưa lớn gây nguy cơ lũ quét, sạt lở đất tại các bản ven suối Nậm Ma.",
        "instructions": "Di chuyển ngay người và tài sản khỏi khu vực ven suối.",
        "duration": 600}], priority="emergency", risk_level=4,
        schedule=window_around(datetime.now(config.tz)))])
    board.close()
    window = PlayerWindow(config)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=5000)
    return window


def test_headline_is_large_on_a_strip_board(tmp_path: Path, qtbot: Any) -> None:
    window = emergency_window(tmp_path, "1920x96+0+0", qtbot)
    img = window.grab().toImage()
    status = window.status().emergency
    window.close()
    band = tallest_text_band(img, left=96 * 3)  # the badge is at most 2.2 × the height
    assert band >= 96 // 3, f"the tallest line of text is {band} px on a 96 px board"
    assert status is not None and status.page == "1/3"


def test_strip_board_turns_to_body_and_instructions(tmp_path: Path, qtbot: Any) -> None:
    window = emergency_window(tmp_path, "1920x96+0+0", qtbot)
    first = window.grab().toImage()
    seen = {window.status().emergency.page}
    for _ in range(2):  # each page stays a few seconds (reading time)
        before = window.status().emergency.page
        qtbot.waitUntil(lambda b=before: window.status().emergency.page != b,
                        timeout=15000)
        seen.add(window.status().emergency.page)
        assert window.grab().toImage() != first, "the page turned but the picture did not"
        assert tallest_text_band(window.grab().toImage(), left=96 * 3) >= 96 // 4
    assert seen == {"1/3", "2/3", "3/3"}
    assert window.mode == "emergency"
    window.close()


def test_full_size_board_keeps_one_banner(tmp_path: Path, qtbot: Any) -> None:
    window = emergency_window(tmp_path, "1280x720+0+0", qtbot)
    assert window.status().emergency.page == "1/1"
    assert tallest_text_band(window.grab().toImage(), inset=20) >= 720 // 12
    window.close()
