"""``GET /status``: one HTML page for operators watching many boards.

Every board that has sent a heartbeat: last seen, online or offline, the item on
screen, the screen state, a screenshot thumbnail and its errors. Offline boards and
boards with errors come first. The page refreshes itself every 30 s. Jinja (through
Flask) escapes every value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, render_template_string

from content_sync.server.db import ServerDB

DEFAULT_HEARTBEAT_S = 60
GRACE_S = 30

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="30">
<title>eboard — boards ({{ online }}/{{ boards|length }} online)</title>
<style>
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: .3em .5em; text-align: left;
         vertical-align: top; }
.online { color: #070; font-weight: bold; } .offline { color: #b00; font-weight: bold; }
.errors { color: #b00; font-size: 90%; } img { max-width: 240px; }
</style></head><body>
<h1>eboard boards</h1>
<p id="summary">{{ online }} of {{ boards|length }} boards online at {{ now }} (UTC).</p>
<table id="boards">
<tr><th>Board</th><th>State</th><th>Last seen</th><th>On screen</th><th>Screen</th>
<th>Manifest</th><th>Outbox</th><th>Screenshot</th><th>Errors</th></tr>
{% for b in boards %}
<tr class="board" id="board-{{ b.board }}" data-board="{{ b.board }}" data-state="{{ b.state }}">
<td><b>{{ b.board }}</b><br>{{ b.name }}</td>
<td class="{{ b.state }}">{{ b.state }}</td>
<td>{{ b.last_seen }}<br><small>{{ b.age }}</small></td>
<td class="item">{{ b.item or "—" }}
{%- if b.since %}<br><small>since {{ b.since }}</small>{% endif %}</td>
<td>{{ b.screen or "unknown" }}</td>
<td>{{ b.active_version or "none" }}
{%- if b.pending_version %}<br><small>pending {{ b.pending_version }}</small>{% endif %}</td>
<td>{{ b.outbox if b.outbox is not none else "—" }}</td>
<td>{% if b.screenshot_at %}<a href="boards/{{ b.board }}/screenshot.jpg">
<img class="thumb" src="boards/{{ b.board }}/screenshot.jpg" alt="screenshot of {{ b.board }}"
 onload="this.dataset.loaded='1'" onerror="this.replaceWith('screenshot unavailable')">
</a><br><small>{{ b.screenshot_at }}</small>{% else %}—{% endif %}</td>
<td class="errors">{% for e in b.errors %}<div>{{ e }}</div>{% endfor %}</td>
</tr>
{% endfor %}
</table>
{% if not boards %}<p>No board has sent a heartbeat yet.</p>{% endif %}
</body></html>
"""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _errors(status: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    sync = status.get("sync") or {}
    if sync.get("state") not in (None, "up_to_date", "idle"):
        errors.append(f"sync {sync.get('state')}: {sync.get('reason') or ''}".strip())
    for e in sync.get("errors") or []:
        errors.append(str(e))
    player = status.get("player") or {}
    if player.get("error"):
        errors.append(f"player: {player['error']}")
    if player.get("running") is False:
        errors.append("player: not running (no status for a while)")
    outbox = status.get("outbox") or {}
    if outbox.get("last_error"):
        errors.append(f"plays upload: {outbox['last_error']}")
    clock = status.get("clock") or {}
    if clock.get("warning"):
        errors.append(str(clock["warning"]))
    return errors[:8]


def board_rows(db: ServerDB, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for b in db.boards():
        status = b["status"] or {}
        try:
            seen = datetime.fromisoformat(b["last_seen"])
            age: float | None = (now - seen).total_seconds()
        except (TypeError, ValueError):
            age = None
        interval = status.get("heartbeat_interval_s")
        if not isinstance(interval, int | float) or interval <= 0:
            interval = DEFAULT_HEARTBEAT_S
        online = age is not None and age <= 2.5 * interval + GRACE_S
        player = status.get("player") or {}
        manifest = status.get("manifest") or {}
        rows.append({
            "board": b["board"], "name": status.get("name") or "",
            "state": "online" if online else "offline",
            "last_seen": b["last_seen"], "age": _age(age),
            "item": player.get("item_id"), "since": player.get("item_since"),
            "screen": (status.get("screen") or {}).get("state"),
            "active_version": manifest.get("active_version"),
            "pending_version": manifest.get("pending_version"),
            "outbox": (status.get("outbox") or {}).get("records"),
            "screenshot_at": db.screenshot_at(b["board"]),
            "errors": _errors(status),
        })
    rows.sort(key=lambda r: (r["state"] == "online", not r["errors"], r["board"]))
    return rows


def register(app: Flask, db: ServerDB) -> None:
    @app.get("/status")
    def status_page() -> Response:
        now = datetime.now(UTC)
        rows = board_rows(db, now)
        html = render_template_string(
            PAGE, boards=rows, online=sum(r["state"] == "online" for r in rows),
            now=now.isoformat(timespec="seconds"))
        return Response(html, mimetype="text/html")
