"""Proof of play when the disk refuses it: records wait in memory, then land."""

from __future__ import annotations

import time
from pathlib import Path

from content_sync.db import PlayerStatus, store
from player.records import PlayRecord, Writer


def test_records_wait_in_memory_until_the_database_can_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the cache directory should be")
    db = blocker / "cache" / "eboard.db"
    w = Writer(db, retry_s=0.1)
    try:
        rec = PlayRecord("item-1", "pl-1", 7)
        w.play(rec.close("played"))
        w.status(PlayerStatus(state="normal"))
        deadline = time.monotonic() + 10
        while w.backlog == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert w.backlog == 1
        blocker.unlink()  # the technician frees the disk
        blocker.mkdir()
        while w.backlog and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.backlog == 0
    finally:
        w.close()
    conn = store.connect(db)
    rows = store.pending_plays(conn)
    assert [(r["id"], r["item_id"], r["manifest_version"]) for r in rows] == [
        (rec.id, "item-1", 7)]
    assert (store.get_status(conn, "player") or {}).get("state") == "normal"
    conn.close()


def test_an_outcome_must_be_one_of_the_three() -> None:
    import pytest

    with pytest.raises(ValueError, match="outcome"):
        PlayRecord("i", "p", 1).close("shown")


def test_outcomes_and_states_keep_the_strings_stored_and_sent() -> None:
    """One enum for each, on the db face: the writer (player) and the readers (outbox,
    reports, heartbeat) agree on the strings of the previous release."""
    import json

    from content_sync.db import PlayerState, PlayOutcome
    from player.scene import ScreenMode

    assert [o.value for o in PlayOutcome] == ["played", "skipped", "error"]
    row = PlayRecord("i", "p", 1).close(PlayOutcome.SKIPPED, "gone")
    assert json.dumps(row["outcome"]) == '"skipped"' and type(row["outcome"]) is str
    assert {s.value for s in PlayerState} == {m.value for m in ScreenMode} | {"stopped"}
