"""DPMS: the player says the monitor sleeps only when the X server really put it to sleep.

``xset dpms force off`` exits 0 on an X server without the DPMS extension (Xvfb, the
dummy driver, many HDMI-to-LED setups), so trusting its exit code made the heartbeat
report ``dpms_off: true`` for a screen that was only painted black. The state is read
back from ``xset q`` now.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from player import power
from tests.kit.player import Xvfb

pytestmark = pytest.mark.skipif(shutil.which("xset") is None, reason="xset not installed")


def test_xvfb_has_no_dpms_and_set_dpms_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with Xvfb() as x:
        monkeypatch.setenv("DISPLAY", x.display)
        forced = subprocess.run(["xset", "dpms", "force", "off"], capture_output=True)
        assert forced.returncode == 0  # what made the old check wrong
        query = subprocess.run(["xset", "q"], capture_output=True, text=True, check=True)
        assert power.dpms_state(query.stdout) is None
        assert power.set_dpms(False) is False
        assert power.set_dpms(True) is False


def test_no_display_no_dpms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    assert power.set_dpms(False) is False


def test_dpms_state_read_from_xset_q_output() -> None:
    # The lines xset prints under "DPMS (Energy Star):" on a server that has DPMS.
    on = "DPMS (Energy Star):\n  Standby: 600    Suspend: 600    Off: 600\n" \
         "  DPMS is Enabled\n  Monitor is On\n"
    assert power.dpms_state(on) == "on"
    assert power.dpms_state(on.replace("Monitor is On", "Monitor is Off")) == "off"
    assert power.dpms_state(on.replace("Monitor is On", "Monitor is in Standby")) == "standby"
    assert power.dpms_state("DPMS (Energy Star):\n  Server does not have the DPMS "
                            "Extension\n") is None
