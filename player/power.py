"""Screen power: ``display.on_hours`` ('HH:MM-HH:MM', may cross midnight), and DPMS.

Outside the on-hours the window paints black and, where the X server offers it,
asks the monitor to sleep (``xset dpms force off``); emergency content wakes it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from datetime import datetime

log = logging.getLogger(__name__)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def screen_on(on_hours: str, local: datetime) -> bool:
    """Whether the screen should be on at local time ``local``; '' means always."""
    if not on_hours:
        return True
    a, b = (_minutes(x) for x in on_hours.split("-"))
    t = local.hour * 60 + local.minute
    if a == b:
        return True
    if a < b:
        return a <= t < b
    return t >= a or t < b


def set_dpms(on: bool) -> bool:
    """Ask the X server to switch the monitor on or off; False when it cannot."""
    xset = shutil.which("xset")
    if not xset or not os.environ.get("DISPLAY"):
        return False
    try:
        subprocess.run([xset, "dpms", "force", "on" if on else "off"], timeout=5,
                       check=True, capture_output=True)
    except (OSError, subprocess.SubprocessError) as e:
        log.info("DPMS is not available (%s); the screen is painted black instead", e)
        return False
    return True
