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
    """Ask the X server to switch the monitor on or off; True only when it did.

    ``xset dpms force off`` exits 0 even on a server without the DPMS extension
    (Xvfb, the dummy driver, many HDMI-to-LED setups), so the outcome is read back
    from ``xset q`` ("Monitor is Off") rather than trusted from the exit code.
    """
    xset = shutil.which("xset")
    if not xset or not os.environ.get("DISPLAY"):
        return False
    try:
        subprocess.run([xset, "dpms", "force", "on" if on else "off"], timeout=5,
                       check=True, capture_output=True)
        query = subprocess.run([xset, "q"], timeout=5, check=True, capture_output=True,
                               text=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        _not_available(str(e))
        return False
    state = dpms_state(query)
    if state is None:
        _not_available("the X server has no DPMS extension")
        return False
    return state == ("on" if on else "off")


_warned = False


def _not_available(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.info("DPMS is not available (%s); the screen is painted black instead", why)


def dpms_state(xset_q: str) -> str | None:
    """'on', 'off', 'standby' or 'suspend' from ``xset q`` output; None without DPMS."""
    for line in xset_q.splitlines():
        line = line.strip()
        if line.startswith("Monitor is "):
            state = line.removeprefix("Monitor is ").strip().lower()
            return {"in standby": "standby", "in suspend": "suspend"}.get(state, state)
    return None


class ScreenPower:
    """Whether the screen is lit: the on-hours and an operator's command (an
    emergency lights it anyway; the controller asks), and the monitor's DPMS."""

    def __init__(self, on_hours: str) -> None:
        self.on_hours = on_hours
        self.forced_off = False
        self.blanked = False
        self.dpms_off = False

    def scheduled_on(self, local: datetime) -> bool:
        return not self.forced_off and screen_on(self.on_hours, local)

    def light(self) -> None:
        log.info("screen on")
        self.blanked = False
        if self.dpms_off:
            set_dpms(True)
            self.dpms_off = False

    def darken(self) -> None:
        """Blank (the caller shows the blank scene) and ask the monitor to sleep."""
        log.info("screen off (%s)", "by command" if self.forced_off
                 else f"outside the on-hours {self.on_hours}")
        self.blanked = True
        self.dpms_off = set_dpms(False)
