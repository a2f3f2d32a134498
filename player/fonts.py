"""The bundled Noto Sans, loaded once into Qt's font database at start-up."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase

log = logging.getLogger(__name__)

FONT_DIR = Path(__file__).resolve().parents[1] / "assets" / "fonts"
FONT_FILES = ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf")
FALLBACK_FAMILY = "Noto Sans"

_family: str | None = None


def font_path(name: str = FONT_FILES[0]) -> Path:
    return FONT_DIR / name


def family() -> str:
    """Load the bundled fonts (once; needs a QGuiApplication) and return their family."""
    global _family
    if _family is None:
        found: list[str] = []
        for name in FONT_FILES:
            path = font_path(name)
            fid = QFontDatabase.addApplicationFont(str(path))
            if fid < 0:
                log.error("could not load the bundled font %s; using the installed %s",
                          path, FALLBACK_FAMILY)
                continue
            found += QFontDatabase.applicationFontFamilies(fid)
        _family = found[0] if found else FALLBACK_FAMILY
    return _family


def font(pixel_size: int, bold: bool = False) -> QFont:
    f = QFont(family())
    f.setPixelSize(max(1, int(pixel_size)))
    f.setBold(bold)
    f.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    f.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    return f
