"""A CAP alert, as this board should show it, as an overlay playlist (manifest shape).

Which alerts, and how:

- ``status`` Actual is shown; Test and Exercise only with ``cap.show_test``, labelled
  "THỬ NGHIỆM" / "DIỄN TẬP" in the title and the body's first line; Draft and System
  never (they are not even stored as active). ``scope`` must be Public: Restricted
  and Private messages are for officials, not for a public screen.
- An ``info`` is a candidate when one of its areas covers the board (area.py) and it
  has not expired; an info without any area covers nothing. Among candidates, the
  first whose language is in ``cap.languages`` (exact, then primary subtag: "vi"
  matches "vi-VN") wins; else the first candidate's language. Every candidate in that
  language becomes one text item: title = headline (else event), body = description
  plus Vietnamese lines for area, validity and sender, instructions = instruction.
- Priority (see :func:`priority_of`):

  ====================  ===============================  ===========
  severity              urgency                          priority
  ====================  ===============================  ===========
  Extreme or Severe     Immediate or Expected            emergency
  Extreme or Severe     Future or Unknown                priority
  Moderate              Immediate or Expected            priority
  anything              Past, or certainty Unlikely      normal
  anything else                                          normal
  ====================  ===============================  ===========

  A Test message is at most ``priority``: a test must not take the screen over. An
  Exercise keeps its mapping, since drills rehearse the real path.
- Schedule: start = ``effective`` (a future one makes the player wait); without it
  the alert is in effect from ``sent`` (CAP 1.2: effective defaults to sent), so it
  is on screen at once. ``onset`` is when the hazard itself is expected, not when the
  warning starts: an advance warning is shown now, with the line "Dự kiến từ HH:MM
  dd/mm/yyyy" (board time zone) in its body. End = ``expires``, else ``sent`` +
  ``cap.no_expiry_hours``.
- risk_level (QĐ 18/2021/QĐ-TTg, 1–5) only from a ``parameter`` that says so (valueName
  such as "riskLevel", "risk_level", "capDoRuiRo", "Cấp độ rủi ro"; value "3" or
  "Cấp 3"). It is not guessed from severity: a colour from a legal scale must come
  from the issuer.
- Advisory: a ``priority`` playlist that no Extreme or Severe info made so (a
  Moderate alert), and any Test held to ``priority``, is an advisory, not an
  operator's notice: its JSON carries ``rotation_share`` = ``cap.advisory_share``, and
  the player gives it at most that share of the rotation (player/schedule.py) instead
  of playing it next every time; older players ignore the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from content_sync.cap.area import BoardArea, covers, fold
from content_sync.cap.model import Alert, Info
from content_sync.protocol import Playlist

RANK = {"normal": 0, "priority": 1, "emergency": 2}
LABELS = {
    "Test": ("THỬ NGHIỆM", "Đây là tin thử nghiệm, không phải cảnh báo thật."),
    "Exercise": ("DIỄN TẬP", "Đây là tin diễn tập, không phải cảnh báo thật."),
}
RISK_NAMES = {"risklevel", "disasterrisklevel", "capdoruiro", "capdoruirothientai",
              "ruirothientai"}
_DIGIT = re.compile(r"(?<!\d)([1-5])(?!\d)")


def priority_of(info: Info) -> str:
    """CAP severity, urgency and certainty as an eboard priority (table in the module doc)."""
    if info.urgency == "Past" or info.certainty == "Unlikely":
        return "normal"
    soon = info.urgency in ("Immediate", "Expected")
    if info.severity in ("Extreme", "Severe"):
        return "emergency" if soon else "priority"
    if info.severity == "Moderate" and soon:
        return "priority"
    return "normal"


def is_advisory(infos: list[Info], priority: str, status: str) -> bool:
    """A ``priority`` playlist that no Extreme or Severe info made so, or a Test."""
    severe = any(i.severity in ("Extreme", "Severe") and priority_of(i) == "priority"
                 for i in infos)
    return priority == "priority" and (status == "Test" or not severe)


def risk_level_of(info: Info) -> int | None:
    """The disaster risk level 1–5 from a parameter naming it, else None."""
    for name, value in info.parameters:
        if fold(name).replace(" ", "") in RISK_NAMES:
            m = _DIGIT.search(value)
            if m:
                return int(m.group(1))
    return None


def pick_language(infos: list[Info], languages: list[str]) -> str:
    """The language to show: first preference present exactly, then by primary subtag."""
    present = [i.language for i in infos]
    lowered = [p.lower() for p in present]
    for pref in languages:
        if pref.lower() in lowered:
            return present[lowered.index(pref.lower())]
    for pref in languages:
        primary = pref.lower().split("-")[0]
        for p in present:
            if p.lower().split("-")[0] == primary:
                return p
    return present[0]


def _when(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%H:%M %d/%m/%Y")


def _body(alert: Alert, info: Info, board: BoardArea, tz: ZoneInfo, end: datetime) -> str:
    lines = []
    if alert.status in LABELS:
        tag, note = LABELS[alert.status]
        lines.append(f"[{tag}] {note}")
    if info.description:
        lines.append(info.description)
    if info.onset is not None:
        lines.append(f"Dự kiến từ {_when(info.onset, tz)}")
    places = [a.desc for a in info.areas if a.desc and covers(board, [a])]
    if places:
        lines.append("Khu vực: " + "; ".join(dict.fromkeys(places)))
    lines.append(f"Hiệu lực: từ {_when(info.effective or alert.sent, tz)} "
                 f"đến {_when(end, tz)}")
    lines.append(f"Nguồn: {info.sender_name or alert.sender}")
    return "\n".join(lines)


def playlist_id(alert: Alert) -> str:
    return "cap-" + hashlib.sha256(alert.key.encode()).hexdigest()[:16]


def to_playlist(alert: Alert, board: BoardArea, languages: list[str], show_test: bool,
                tz: ZoneInfo, now: datetime, no_expiry: timedelta,
                advisory_share: float = 1.0) -> tuple[str, str] | None:
    """(playlist id, playlist JSON) when this board should show ``alert``, else None."""
    if alert.status not in ("Actual", "Test", "Exercise"):
        return None
    if alert.status != "Actual" and not show_test:
        return None
    if alert.scope != "Public":
        return None
    default_end = alert.sent + no_expiry
    candidates = [
        i for i in alert.infos
        if covers(board, i.areas) and (i.expires or default_end) > now
    ]
    if not candidates:
        return None
    lang = pick_language(candidates, languages)
    chosen = [i for i in candidates if i.language == lang]
    pid = playlist_id(alert)
    label = f"{LABELS[alert.status][0]} — " if alert.status in LABELS else ""
    items = []
    for n, info in enumerate(chosen, start=1):
        end = info.expires or default_end
        items.append({
            "id": f"{pid}-{n}",
            "type": "text",
            "title": label + (info.headline or info.event or "CẢNH BÁO"),
            "body": _body(alert, info, board, tz, end),
            "instructions": info.instruction,
            # effective, never onset: an advance warning is on screen before the hazard.
            # Without effective, none (not sent): a board clock a little behind the
            # sender's must not hold a warning back.
            "valid_from": info.effective.isoformat() if info.effective else None,
            "valid_until": end.isoformat(),
        })
    priority = max((priority_of(i) for i in chosen), key=RANK.__getitem__)
    if alert.status == "Test" and priority == "emergency":
        priority = "priority"
    levels = [r for r in (risk_level_of(i) for i in chosen) if r is not None]
    starts = [i.effective for i in chosen]
    start = min(s for s in starts if s is not None) if all(starts) else None
    end = max(i.expires or default_end for i in chosen)
    first = chosen[0]
    data = {
        "id": pid,
        "title": label + (first.event or first.headline or "Cảnh báo"),
        "priority": priority,
        "risk_level": max(levels) if levels else None,
        "schedule": {"start": start.isoformat() if start else None, "end": end.isoformat()},
        "items": items,
    }
    playlist = Playlist.model_validate(data)  # the player's own model: fail here, not there
    out = playlist.model_dump(mode="json")
    if is_advisory(chosen, priority, alert.status):
        out["rotation_share"] = advisory_share
    out["origin"] = {
        "source": "cap", "sender": alert.sender, "identifier": alert.identifier,
        "sent": alert.sent.isoformat(), "status": alert.status, "msg_type": alert.msg_type,
        "language": lang,
    }
    return pid, json.dumps(out, ensure_ascii=False, sort_keys=True)
