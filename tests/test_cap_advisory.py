"""A Moderate CAP alert reaches the player as an advisory with the configured share.

The rotation itself is tested with a frozen clock in tests/test_schedule.py; here the
real poll (FeedServer, SQLite) carries ``cap.advisory_share`` into the overlay JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from content_sync.cap import poll_once
from content_sync.db import store
from kiosk_config import Config
from tests.kit.cap import FeedServer, alert, atom, feed_server, info

__all__ = ["feed_server"]
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "eboard.db")
    yield c
    c.close()


def test_the_configured_share_is_written_on_advisories_only(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    moderate = alert("MOD-1", infos=(info(severity="Moderate", urgency="Expected", expires=None),))
    extreme = alert("EXT-1")
    feed_server.docs["/feed.xml"] = atom([("MOD-1", None, moderate), ("EXT-1", None, extreme)])
    config = Config.model_validate({"cap": {
        "feed_url": feed_server.url("/feed.xml"), "area_names": ["Pa Vệ Sủ"],
        "advisory_share": 0.25}})
    assert poll_once(config, conn, NOW).state == "ok"
    got = {pl["priority"]: pl.get("rotation_share") for pl in map(json.loads,
                                                                  store.overlays(conn))}
    assert got == {"priority": 0.25, "emergency": None}


@pytest.mark.parametrize("share", [0, 0.01, 1.5, -1])
def test_a_share_out_of_range_is_a_config_error(share: float) -> None:
    with pytest.raises(ValidationError, match="advisory_share"):
        Config.model_validate({"cap": {"advisory_share": share}})
    assert Config().cap.advisory_share == 0.5
