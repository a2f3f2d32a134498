"""``eboard report``: plays and seconds shown per playlist and item over a period.

For the commune's periodic report (quarter, half-year, year), from the box's own
records: ``play_history`` (everything that has left the outbox, acknowledged by the
source or folded into daily counts) plus what still waits in the outbox. Days are
the box's local days (config ``timezone``); ``--from`` and ``--to`` are inclusive.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from content_sync.db import PlayOutcome, store
from content_sync.report import local_day
from eboard.commands.common import add_config_option, config_or_exit

HEADINGS = {
    "en": {"playlist_id": "playlist", "playlist_title": "playlist title", "item_id": "item",
           "plays": "plays", "seconds": "seconds shown", "hours": "hours shown",
           "not_played": "skipped or failed", "total": "TOTAL"},
    "vi": {"playlist_id": "Mã danh sách phát", "playlist_title": "Tên danh sách phát",
           "item_id": "Mục nội dung", "plays": "Số lượt phát", "seconds": "Thời lượng (giây)",
           "hours": "Thời lượng (giờ)", "not_played": "Lượt bỏ qua hoặc lỗi",
           "total": "TỔNG CỘNG"},
}
COLUMNS = ("playlist_id", "playlist_title", "item_id", "plays", "seconds", "hours",
           "not_played")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="plays and seconds shown per playlist and item over a period (CSV or JSON), "
        "for the periodic report; --vi for Vietnamese headings",
    )
    add_config_option(p)
    p.add_argument("--from", dest="start", required=True, metavar="DATE", type=_date,
                   help="first day, YYYY-MM-DD (the box's local day)")
    p.add_argument("--to", dest="end", required=True, metavar="DATE", type=_date,
                   help="last day, YYYY-MM-DD, included")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--vi", action="store_true", help="Vietnamese column headings")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="write to FILE (CSV with a UTF-8 BOM, so spreadsheets read the "
                   "Vietnamese letters) instead of standard output")
    p.set_defaults(func=run, usage_error=p.error)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                       (name,)).fetchone()
    return row is not None


def _titles(conn: sqlite3.Connection) -> dict[str, str]:
    """Playlist titles from every manifest the box still holds (newest wins)."""
    titles: dict[str, str] = {}
    for (body,) in conn.execute("SELECT body FROM manifests ORDER BY version"):
        try:
            for pl in json.loads(body).get("playlists", []):
                if isinstance(pl, dict) and pl.get("id"):
                    titles[str(pl["id"])] = str(pl.get("title") or "")
        except (ValueError, AttributeError, TypeError):
            continue
    return titles


def collect(conn: sqlite3.Connection, start: date, end: date, tz: Any) -> list[dict[str, Any]]:
    """One row per (playlist, item) with plays, seconds and not-played counts."""
    acc: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: {"plays": 0, "seconds": 0.0, "not_played": 0})

    def add(playlist: str, item: str, outcome: str, plays: int, seconds: float) -> None:
        row = acc[(playlist, item)]
        if outcome == PlayOutcome.PLAYED:
            row["plays"] += plays
            row["seconds"] += seconds
        else:
            row["not_played"] += plays

    lo, hi = start.isoformat(), end.isoformat()
    if _has_table(conn, "play_history"):
        for r in conn.execute(
                "SELECT playlist_id, item_id, outcome, plays, seconds FROM play_history "
                "WHERE day BETWEEN ? AND ?", (lo, hi)):
            add(r[0], r[1], r[2], int(r[3]), float(r[4]))
    for r in conn.execute("SELECT playlist_id, item_id, outcome, started_at, duration_s "
                          "FROM plays"):
        if lo <= local_day(str(r[3]), tz) <= hi:
            add(str(r[0] or ""), str(r[1] or ""), str(r[2] or ""), 1, float(r[4] or 0))
    titles = _titles(conn)
    return [{"playlist_id": pl, "playlist_title": titles.get(pl, ""), "item_id": item,
             "plays": int(v["plays"]), "seconds": round(v["seconds"], 1),
             "hours": round(v["seconds"] / 3600, 2), "not_played": int(v["not_played"])}
            for (pl, item), v in sorted(acc.items())]


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = round(sum(r["seconds"] for r in rows), 1)
    return {"plays": sum(r["plays"] for r in rows), "seconds": seconds,
            "hours": round(seconds / 3600, 2), "not_played": sum(r["not_played"] for r in rows)}


def render_csv(rows: list[dict[str, Any]], lang: str) -> str:
    h = HEADINGS[lang]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([h[c] for c in COLUMNS])
    for r in rows:
        w.writerow([r[c] for c in COLUMNS])
    t = totals(rows)
    w.writerow([h["total"], "", "", t["plays"], t["seconds"], t["hours"], t["not_played"]])
    return out.getvalue()


def render_json(rows: list[dict[str, Any]], lang: str, board: str, start: date, end: date
                ) -> str:
    h = HEADINGS[lang]
    data = {"board": board, "from": start.isoformat(), "to": end.isoformat(),
            "headings": {c: h[c] for c in COLUMNS}, "rows": rows, "totals": totals(rows)}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _date(text: str) -> date:
    """A day as argparse takes it: a wrong one is a usage error (exit status 2), named
    with its option by argparse."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-10-01") from None


def run(args: argparse.Namespace) -> int:
    start, end = args.start, args.end
    if start > end:  # a usage error too: exit status 2, said as argparse says the others
        args.usage_error(f"argument --from: {start} is after --to {end}; swap them")
    config = config_or_exit(args)
    if not config.db_path.exists():
        print(f"eboard report: no database at {config.db_path}; nothing has been played on "
              "this box yet, or cache.dir points elsewhere", file=sys.stderr)
        return 1
    conn = store.connect(config.db_path, readonly=True)
    try:
        rows = collect(conn, start, end, config.tz)
    finally:
        conn.close()
    lang = "vi" if args.vi else "en"
    text = (render_csv(rows, lang) if args.format == "csv"
            else render_json(rows, lang, config.board.id, start, end))
    if args.output:
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8-sig" if args.format == "csv" else "utf-8")
            tmp.replace(args.output)
        except OSError as e:
            print(f"eboard report: cannot write {args.output} ({e.strerror}); check that "
                  "its folder exists and that this user may write there", file=sys.stderr)
            return 1
        print(f"wrote {len(rows)} rows for {start} to {end} into {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
