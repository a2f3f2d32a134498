"""Gap (docs/EMERGENCY.md): an emergency waits for every other new media file of its manifest.

The sync engine activates a manifest only when all of its media are in the cache
(content_sync/board/engine.py). So when the province publishes a warning together with a
new picture or video for the normal rotation — or the warning's manifest is the
first after a big update — a text-only emergency stays off the screen for the whole
download: minutes for a video over a 3G SIM. The player could already show it (it
leaves out items whose media is missing, player/content.py), but nothing reaches it.

Here the board's link is capped (``source.bandwidth_limit_kbps = 200``, about 25 kB/s)
and the manifest adds a 1 MB image to the normal playlist beside the emergency.
The engine puts the emergency on screen through an interim manifest (the active one plus
the new emergencies, content_sync/board/interim.py) and activates the full manifest later.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from PIL import Image

from content_sync.db import store
from kiosk_config import load_config
from tests.test_emergency_e2e import (
    NORMAL_TOML,
    Chain,
    active_version,
    chain,
    emergency_toml,
    open_window,
    wait_for,
)

__all__ = ["chain"]  # the fixture, imported for pytest


def pending(config_path: Path) -> int | None:
    conn = store.connect(load_config(config_path).db_path)
    try:
        return store.pending_version(conn)
    finally:
        conn.close()


def test_emergency_is_not_held_back_by_other_media(chain: Chain, qtbot: Any) -> None:
    cfg = chain.config(source="bandwidth_limit_kbps = 200")
    chain.publish(NORMAL_TOML)
    sync = chain.start_sync(cfg)
    assert wait_for(lambda: active_version(cfg) > 0), chain.sync_log()
    window = open_window(cfg, qtbot)
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=15000)
    assert wait_for(lambda: "events long-poll connected" in chain.sync_log(), 20)

    rnd = random.Random(6)
    Image.frombytes("RGB", (600, 600), rnd.randbytes(600 * 600 * 3)).save(chain.tmp / "ban-do.png")
    chain.publish(emergency_toml(risk_level=4) + """
[[playlists]]
id = "anh-moi"
[[playlists.items]]
id = "ban-do-lu"
file = "ban-do.png"
duration = 5
""")
    try:
        assert wait_for(lambda: pending(cfg) is not None, 20), chain.sync_log()  # downloading
        qtbot.waitUntil(lambda: window.mode == "emergency", timeout=6000)
        assert pending(cfg) is not None  # on screen while the picture still downloads
        # SIGTERM mid-download: the daemon stops at once, quietly (no traceback in its log).
        start = time.monotonic()
        os.killpg(sync.pid, signal.SIGTERM)
        assert sync.wait(timeout=15) == 0 and time.monotonic() - start < 10
    finally:
        window.close()
