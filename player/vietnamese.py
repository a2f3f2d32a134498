"""Vietnamese screen text: NFC normalisation, dates and times, the alphabet."""

from __future__ import annotations

import unicodedata
from datetime import datetime

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")

# The 12 vowels and 17 consonants of the Vietnamese alphabet (with f, j, w, z that
# appear in loan words and names), and the five tone marks as combining characters.
VOWELS = ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y")
CONSONANTS = tuple("bcdđghklmnpqrstvx") + ("f", "j", "w", "z")
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # ` ´ hook ~ dot below


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def letters() -> list[str]:
    """Every Vietnamese letter, lower and upper case, each as one NFC code point."""
    lower = [nfc(v + t) for v in VOWELS for t in TONES] + list(CONSONANTS)
    return lower + [c.upper() for c in lower]


def format_datetime(now: datetime) -> str:
    """'Thứ Hai, 24/11/2026 08:30' in the time zone ``now`` carries."""
    return f"{WEEKDAYS[now.weekday()]}, {now:%d/%m/%Y %H:%M}"


def format_date(now: datetime) -> str:
    return f"{WEEKDAYS[now.weekday()]}, {now:%d/%m/%Y}"


def format_time(now: datetime) -> str:
    return f"{now:%H:%M}"
