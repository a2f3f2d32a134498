"""``GET /status``: one HTML page for operators watching many boards.

Every board that has sent a heartbeat: last seen, online or offline, the item on
screen, the emergency it shows (headline, risk level, since when; the row in the
risk level's colour, a count at the top), the screen state, a screenshot thumbnail
and its errors. Offline boards come first, then boards with errors, then boards
showing an emergency. The page refreshes itself every 30 s. Jinja (autoescape on)
escapes every value; a board's risk level only picks one of the page's CSS classes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from content_sync.protocol import Heartbeat, PlayerReport
from content_sync.runtime import human

DEFAULT_HEARTBEAT_S = 60
GRACE_S = 30
HEADLINE_MAX = 300  # characters of a board's emergency headline shown on the page

# The risk levels' colours (QĐ 18/2021/QĐ-TTg) as the board shows them: the same values
# as player/look.py RISK_COLOURS (the server does not import the player); 0 = no level.
RISK_COLOURS: dict[int, tuple[str, str]] = {
    0: ("#c00000", "#ffffff"),
    1: ("#7ec8f5", "#000000"),
    2: ("#fff176", "#000000"),
    3: ("#ff8c00", "#000000"),
    4: ("#e00000", "#ffffff"),
    5: ("#7b1fa2", "#ffffff"),
}
RISK_CSS = "\n".join(
    f".risk-{n} {{ background: {bg}; color: {fg}; }} "
    f"tr.risk-row-{n} > td {{ background: {bg}2e; }} "
    f"tr.risk-row-{n} > td:first-child {{ border-left: .5em solid {bg}; }}"
    for n, (bg, fg) in RISK_COLOURS.items())

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="30">
<title>eboard — boards ({{ online }}/{{ boards|length }} online
{%- if emergencies %}, {{ emergencies }} showing an EMERGENCY{% endif %})</title>
<style>
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: .3em .5em; text-align: left;
         vertical-align: top; }
.online { color: #070; font-weight: bold; } .offline { color: #b00; font-weight: bold; }
.errors { color: #b00; font-size: 90%; } img { max-width: 240px; }
.badge { display: inline-block; padding: .1em .4em; border-radius: .3em;
         font-weight: bold; white-space: nowrap; }
.emergency-cell .headline { font-weight: bold; }
#emergencies.alert { background: #c00000; color: #fff; padding: .4em .6em;
                     font-weight: bold; }
{{ risk_css }}
</style></head><body>
<h1>eboard boards</h1>
<p id="summary">{{ online }} of {{ boards|length }} boards online at {{ now }} (UTC).</p>
{% if emergencies or unconfirmed -%}
<p id="emergencies" class="alert" data-count="{{ emergencies }}">EMERGENCY:
{{ emergencies }} board{{ "s" if emergencies != 1 }} showing an emergency
{%- if unconfirmed %}; {{ unconfirmed }} more last reported one but
{{ "are" if unconfirmed != 1 else "is" }} offline or {{ "their" if unconfirmed != 1 else "its" }}
player is not running{% endif %}.</p>
{%- else -%}
<p id="emergencies" data-count="0">No board reports an emergency.</p>
{%- endif %}
<table id="boards">
<tr><th>Board</th><th>State</th><th>Last seen</th><th>Emergency</th><th>On screen</th>
<th>Screen</th>
<th>Manifest</th><th>Outbox</th><th>Screenshot</th><th>Errors</th></tr>
{% for b in boards %}
{%- set e = b.emergency %}
<tr class="board{% if e %} emergency risk-row-{{ e.level or 0 }}{% endif %}"
 id="board-{{ b.board }}" data-board="{{ b.board }}" data-state="{{ b.state }}"
 {%- if e %} data-emergency="{{ e.level or 0 }}"{% endif %}>
<td><b>{{ b.board }}</b><br>{{ b.name }}</td>
<td class="{{ b.state }}">{{ b.state }}</td>
<td>{{ b.last_seen }}<br><small>{{ b.age }}</small></td>
<td class="emergency-cell">{% if e -%}
<span class="badge risk-{{ e.level or 0 }}">EMERGENCY
{%- if e.level %} · risk level {{ e.level }}{% else %} · no risk level{% endif %}</span>
{%- if not e.confirmed %} <small><b>last reported</b> ({{ e.why }})</small>{% endif %}
<br><span class="headline" lang="vi">{{ e.headline or "(no headline)" }}</span>
<br><small>since {{ e.since or "unknown" }}{% if e.since_age %} ({{ e.since_age }}){% endif %}
{%- if e.playlist_id %}, playlist {{ e.playlist_id }}{% endif %}</small>
{%- else %}—{% endif %}</td>
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
    return f"{human(seconds)} ago"


def _errors(status: Heartbeat) -> list[str]:
    errors: list[str] = []
    sync = status.sync
    if sync.state not in (None, "up_to_date", "idle"):
        errors.append(f"sync {sync.state}: {sync.reason or ''}".strip())
    errors.extend(sync.errors or [])
    player = status.player
    if player.error:
        errors.append(f"player: {player.error}")
    if player.running is False:
        errors.append("player: not running (no status for a while)")
    for clip in player.clips_held or []:  # content_sync/runtime/decoder_guard.py
        errors.append(f"player: clip {str(clip.media)[:12]}… held back, the player "
                      f"died {clip.deaths} times with it open; replace it")
    if status.outbox.last_error:
        errors.append(f"plays upload: {status.outbox.last_error}")
    if status.clock.warning:
        errors.append(status.clock.warning)
    return errors[:8]


def _text(value: str | None, limit: int) -> str | None:
    if not value or not value.strip():
        return None
    value = value.strip()
    return value if len(value) <= limit else value[:limit - 1] + "…"


def _emergency(player: PlayerReport, online: bool, now: datetime) -> dict[str, Any] | None:
    """The emergency a board's last heartbeat names (``player.emergency``), checked:
    the risk level is one the page has a colour for or None, text is bounded."""
    e = player.emergency
    if e is None:
        return None
    level = e.risk_level if e.risk_level in RISK_COLOURS else None
    since = _text(e.since, 64)
    since_age = None
    if since:
        try:
            t = datetime.fromisoformat(since)
            since_age = _age((now - (t if t.tzinfo else t.replace(tzinfo=UTC)))
                             .total_seconds())
        except ValueError:
            pass
    if not online:
        why = "board offline"
    elif player.running is False:
        why = "player not running"
    else:
        why = ""
    return {"headline": _text(e.headline, HEADLINE_MAX), "level": level or None,
            "since": since, "since_age": since_age,
            "playlist_id": _text(e.playlist_id, 120),
            "confirmed": not why, "why": why}


def board_rows(boards: list[dict[str, Any]], shots: dict[str, str],
               now: datetime) -> list[dict[str, Any]]:
    """The page's rows from the boards table and the screenshots' times (pure)."""
    rows = []
    for b in boards:
        status = Heartbeat.read(b["status"])  # the board's JSON, stored as it came
        try:
            seen = datetime.fromisoformat(b["last_seen"])
            age: float | None = (now - seen).total_seconds()
        except (TypeError, ValueError):
            age = None
        interval = status.heartbeat_interval_s
        if interval is None or interval <= 0:
            interval = DEFAULT_HEARTBEAT_S
        online = age is not None and age <= 2.5 * interval + GRACE_S
        player, manifest = status.player, status.manifest
        rows.append({
            "board": b["board"], "name": status.name,
            "state": "online" if online else "offline",
            "last_seen": b["last_seen"], "age": _age(age),
            "item": player.item_id, "since": player.item_since,
            "screen": status.screen.state,
            "active_version": manifest.active_version,
            "pending_version": manifest.pending_version,
            "outbox": status.outbox.records,
            "screenshot_at": shots.get(b["board"]),
            "errors": _errors(status),
            "emergency": _emergency(player, online, now),
        })
    rows.sort(key=lambda r: (r["state"] == "online", not r["errors"], not r["emergency"],
                             r["board"]))
    return rows


_TEMPLATE = Environment(autoescape=True).from_string(PAGE)


def render(boards: list[dict[str, Any]], shots: dict[str, str], now: datetime) -> str:
    rows = board_rows(boards, shots, now)
    showing = [r["emergency"] for r in rows if r["emergency"]]
    return _TEMPLATE.render(
        boards=rows, online=sum(r["state"] == "online" for r in rows),
        emergencies=sum(e["confirmed"] for e in showing),
        unconfirmed=sum(not e["confirmed"] for e in showing),
        risk_css=Markup(RISK_CSS), now=now.isoformat(timespec="seconds"))
