"""Every Vietnamese letter renders with the bundled font; stacked accents stay clear."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QFontMetricsF, QImage, QPainter, QRawFont
from pytestqt.qtbot import QtBot

from player import fonts, textfit
from player.textfit import Block
from player.vietnamese import format_datetime, letters, nfc

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def family(qtbot: QtBot) -> str:
    return fonts.family()


def test_alphabet_is_complete_and_precomposed() -> None:
    ls = letters()
    assert len(ls) == len(set(ls)) == 2 * (12 * 6 + 21)
    assert all(len(c) == 1 and unicodedata.normalize("NFC", c) == c for c in ls)
    for c in "ẰẮẲẴẶẦẤẨẪẬỀẾỂỄỆỒỐỔỖỘỜỚỞỠỢỪỨỬỮỰỲÝỶỸỴđĐ":
        assert c in ls


def test_bundled_font_has_a_glyph_for_every_letter(family: str) -> None:
    raw = QRawFont(str(fonts.font_path()), 48)
    bold = QRawFont(str(fonts.font_path("NotoSans-Bold.ttf")), 48)
    assert raw.isValid() and bold.isValid()
    missing = [c for c in letters() if not raw.supportsCharacter(ord(c))]
    missing += [c for c in letters() if not bold.supportsCharacter(ord(c))]
    assert missing == []
    # The glyph index 0 is .notdef, the "missing glyph" box.
    assert 0 not in raw.glyphIndexesForString("".join(letters()))
    fm = QFontMetrics(fonts.font(48))
    assert all(fm.inFontUcs4(ord(c)) for c in letters())


def test_each_letter_draws_ink_unlike_the_missing_glyph(family: str) -> None:
    def render(text: str) -> bytes:
        img = QImage(80, 80, QImage.Format.Format_RGB32)
        img.fill(QColor("black"))
        p = QPainter(img)
        p.setFont(fonts.font(40))
        p.setPen(QColor("white"))
        p.drawText(QPointF(10, 60), text)
        p.end()
        return bytes(img.constBits())

    blank = render("")
    notdef = render("\U000f0000")  # a private-use code point no font here has
    for c in letters():
        ink = render(c)
        assert ink != blank, c
        assert ink != notdef, c
    # A letter with a tone mark differs from its base letter (the mark is drawn).
    assert render("Ễ") != render("Ê") != render("E")


def test_line_pitch_keeps_stacked_accents_off_the_line_above(family: str) -> None:
    for size in (12, 24, 48, 96):
        fm = QFontMetricsF(fonts.font(size, bold=True))
        above = fm.tightBoundingRect("ỀẶỖẪỄ").top()  # negative: ink above the baseline
        below = fm.tightBoundingRect("ạặọỵựgjpqy").bottom()  # ink below the baseline
        pitch = textfit.line_pitch(size, bold=True)
        assert below - above < pitch, size


def test_fitted_text_fits_and_grows_with_the_zone(family: str) -> None:
    body = nfc("Ủy ban nhân dân xã thông báo lịch tiêm vắc-xin sởi cho trẻ em dưới năm tuổi. " * 3)
    blocks = [Block("THÔNG BÁO", 1.3, True), Block(body)]
    small = textfit.fit_size(blocks, 300, 150)
    large = textfit.fit_size(blocks, 1200, 600)
    assert 8 <= small < large
    img = QImage(300, 150, QImage.Format.Format_RGB32)
    img.fill(QColor("black"))
    p = QPainter(img)
    used = textfit.draw(p, QRectF(0, 0, 300, 150), blocks, small)
    p.end()
    assert used <= 150
    _, h_next, _ = textfit._layout(blocks, 300, small + 1)
    assert h_next > 150 or not textfit._layout(blocks, 300, small + 1)[2]


def test_a_word_wider_than_the_zone_shrinks_the_text(family: str) -> None:
    blocks = [Block("Nghiêngnghiêngnghiêngnghiêng", 1.0, False, QColor("white"),
                    Qt.AlignmentFlag.AlignLeft)]
    size = textfit.fit_size(blocks, 200, 400)
    assert QFontMetricsF(fonts.font(size)).horizontalAdvance(blocks[0].text) <= 200.5


def test_dates_are_in_vietnamese() -> None:
    assert format_datetime(datetime(2026, 11, 23, 8, 30, tzinfo=TZ)) == "Thứ Hai, 23/11/2026 08:30"
    assert format_datetime(datetime(2026, 11, 29, 21, 5, tzinfo=TZ)) == "Chủ Nhật, 29/11/2026 21:05"
    assert format_datetime(datetime(2026, 11, 24, 0, 0, tzinfo=TZ)).startswith("Thứ Ba")
