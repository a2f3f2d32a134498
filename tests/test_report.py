"""``eboard report``: sums per playlist and item from history, folded counts and the outbox,
by the box's local day; CSV and JSON; Vietnamese headings."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from content_sync.db import store
from content_sync.net.http import make_session
from content_sync.report import outbox
from tests.kit.status import make_config, make_play, reference_server

ROOT = Path(__file__).resolve().parents[1]


def eboard(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eboard", "report", "--config", str(config),
                           *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)


def seed(db: Path, part: slice) -> None:
    """Plays on three local days (Asia/Ho_Chi_Minh is UTC+7)."""
    plays = [
        # 2026-10-31 23:30 local: outside a November report
        make_play("anh-1", "thong-bao", datetime(2026, 10, 31, 16, 30, tzinfo=UTC), 15),
        # 2026-11-01 06:30 local, though still 31 October in UTC: inside
        make_play("anh-1", "thong-bao", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 15),
        make_play("anh-1", "thong-bao", datetime(2026, 11, 2, 1, 0, tzinfo=UTC), 15),
        make_play("tb-1", "thong-bao", datetime(2026, 11, 2, 1, 1, tzinfo=UTC), 20),
        make_play("clip-1", "tiem-chung", datetime(2026, 11, 3, 2, 0, tzinfo=UTC), 42.5),
        make_play("clip-1", "tiem-chung", datetime(2026, 11, 3, 2, 1, tzinfo=UTC), 3,
                  outcome="error"),
        # 2026-12-01 local: outside
        make_play("tb-1", "thong-bao", datetime(2026, 11, 30, 17, 30, tzinfo=UTC), 20),
    ]
    conn = store.connect(db)
    body = json.dumps({"playlists": [{"id": "thong-bao", "title": "Thông báo tháng 11"},
                                     {"id": "tiem-chung", "title": "Lịch tiêm chủng"}]})
    store.save_pending(conn, 5, "b", "2026-11-01T00:00:00+07:00", body.encode(), "k")
    with store.transaction(conn):
        for p in plays[part]:
            store.add_play(conn, p)
    conn.close()


def test_report_sums_history_folded_and_waiting_plays(tmp_path: Path) -> None:
    with reference_server(tmp_path / "source") as srv:
        config, path = make_config(tmp_path / "box", srv.url)
        # Two records acknowledged by the server, two folded, the rest still waiting.
        seed(config.db_path, slice(0, 2))
        conn = store.connect(config.db_path)
        assert outbox.upload_plays_once(config, conn, make_session(config)).accepted == 2
        seed(config.db_path, slice(2, None))
        assert outbox.fold_if_needed(conn, 4, config.tz) == 2  # 5 waiting → 3 left
        assert outbox.counts_waiting(conn) == 2
        conn.close()

    r = eboard(path, "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    rows = {(x["playlist_id"], x["item_id"]): x for x in data["rows"]}
    assert rows[("thong-bao", "anh-1")]["plays"] == 2
    assert rows[("thong-bao", "anh-1")]["seconds"] == 30
    assert rows[("thong-bao", "tb-1")]["plays"] == 1
    assert rows[("tiem-chung", "clip-1")] == {
        "playlist_id": "tiem-chung", "playlist_title": "Lịch tiêm chủng", "item_id": "clip-1",
        "plays": 1, "seconds": 42.5, "hours": 0.01, "not_played": 1}
    assert data["totals"] == {"plays": 4, "seconds": 92.5, "hours": 0.03, "not_played": 1}

    r = eboard(path, "--from", "2026-11-01", "--to", "2026-11-30", "--vi")
    assert r.returncode == 0, r.stderr
    table = list(csv.reader(io.StringIO(r.stdout)))
    assert table[0] == ["Mã danh sách phát", "Tên danh sách phát", "Mục nội dung",
                        "Số lượt phát", "Thời lượng (giây)", "Thời lượng (giờ)",
                        "Lượt bỏ qua hoặc lỗi"]
    assert table[-1][0] == "TỔNG CỘNG" and table[-1][3:5] == ["4", "92.5"]
    assert sum(int(row[3]) for row in table[1:-1]) == 4
    assert ["thong-bao", "Thông báo tháng 11", "tb-1", "1", "20.0", "0.01", "0"] in table

    out = tmp_path / "bao-cao.csv"
    r = eboard(path, "--from", "2026-10-01", "--to", "2026-12-31", "--output", str(out))
    assert r.returncode == 0 and out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert out.read_text(encoding="utf-8-sig").splitlines()[-1].startswith("TOTAL,,,6,")


@pytest.mark.parametrize(("dates", "says"), [
    (("--from", "01/11/2026", "--to", "2026-11-30"),
     "argument --from: '01/11/2026' is not a date; write it as YYYY-MM-DD"),
    (("--from", "2026-11-01", "--to", "2026-11-31"),
     "argument --to: '2026-11-31' is not a date; write it as YYYY-MM-DD"),
    (("--from", "2026-12-01", "--to", "2026-11-01"),
     "argument --from: 2026-12-01 is after --to 2026-11-01; swap them"),
    (("--from", "2026-11-01"), "the following arguments are required: --to"),
])
def test_report_usage_errors_exit_2_naming_the_flag(tmp_path: Path, dates: tuple[str, ...],
                                                    says: str) -> None:
    """Like argparse's own: an unreadable date exited 1, reversed dates 2."""
    _, path = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    r = eboard(path, *dates)
    assert r.returncode == 2, r.stderr
    assert f"eboard report: error: {says}" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_report_that_cannot_be_written_says_where_and_exits_1(tmp_path: Path) -> None:
    config, path = make_config(tmp_path / "box", "http://127.0.0.1:9/")
    store.connect(config.db_path).close()
    out = tmp_path / "no-such-folder" / "report.csv"
    r = eboard(path, "--from", "2026-11-01", "--to", "2026-11-30", "--output", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"eboard report: cannot write {out} (No such file or directory)" in r.stderr
