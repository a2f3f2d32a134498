"""The version `eboard publish` picks: above the last one, never counting from a version no
board takes (one far ahead would make every later publish a refused version too)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from content_sync.board import Engine
from content_sync.db import store
from content_sync.protocol import keys, version_ceiling
from content_sync.publish.build import next_version
from tests.kit.reliability import ROOT
from tests.kit.sync import Publisher, write_config
from tests.test_publish_and_server import make_playlist

BOARD = "test.board-01"
NOW = 1_796_000_000_000  # 2026-12, in ms


def test_the_next_version_counts_from_the_last_one_a_board_could_take() -> None:
    assert next_version(0, NOW) == (NOW, "")
    assert next_version(NOW + 10, NOW) == (NOW + 11, "")  # a publisher clock a bit ahead
    far = version_ceiling(0, NOW) + 1
    version, note = next_version(far, NOW)
    assert version == NOW and str(far) in note and "refused" in note


def test_publish_after_a_version_no_board_takes_reaches_the_board(tmp_path: Path) -> None:
    priv, pub = keys.generate(tmp_path / "keys")
    folder = tmp_path / "www"
    # What a wrong clock (or a version typed by hand) left in the published folder.
    Publisher(folder, keys.load_private(priv)).publish(2**52, {})
    (tmp_path / "box").mkdir()
    config = write_config(tmp_path / "box", folder.as_uri() + "/", [pub])
    conn = store.connect(config.db_path)
    refused = Engine(config, conn).sync_once()
    assert not refused.ok and "days ahead" in refused.reason
    # The operator publishes again, to the same folder, as always.
    r = subprocess.run([sys.executable, "-m", "eboard", "publish", "--to", str(folder),
                        "--board", BOARD, "--key", str(priv), str(make_playlist(tmp_path))],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and str(2**52) in r.stderr
    assert Engine(config, conn).sync_once().ok  # before the fix: refused, days ahead
    assert abs(store.active_version(conn) - time.time() * 1000) < 3_600_000  # counts from now
    conn.close()
