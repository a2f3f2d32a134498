"""Gap (issue 6, "large Vietnamese text fitted to the board"): on an LED strip board
(1920×96, a common size) the emergency banner stacks label, headline, body and
instructions in one picture, so the headline comes out about 12 px tall — unreadable
from the street. On a strip the headline should fill a good part of the height (and
the body come after it, or scroll). Strict xfail until the player does that.

What the window paints is measured: the tallest band of rows holding the banner's
white text, inside the frame.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

from tests.player_helpers import Board, make_config, playlist, window_around


def tallest_text_band(img: QImage, inset: int = 6) -> int:
    """Height in pixels of the tallest run of rows that hold white (text) pixels."""
    best = run = 0
    for y in range(inset, img.height() - inset):
        lit = any(min(c.red(), c.green(), c.blue()) > 200
                  for c in (img.pixelColor(x, y) for x in range(inset, img.width() - inset, 2)))
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


@pytest.mark.xfail(strict=True, reason="gap: on a 1920x96 strip the emergency headline is "
                   "about 12 px tall; the banner stacks four blocks in 96 px")
def test_headline_is_large_on_a_strip_board(tmp_path: Path, qtbot: Any) -> None:
    window = emergency_window(tmp_path, "1920x96+0+0", qtbot)
    band = tallest_text_band(window.grab().toImage())
    window.close()
    assert band >= 96 // 3, f"the tallest line of text is {band} px on a 96 px board"
