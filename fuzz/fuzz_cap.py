"""Fuzz the CAP reader: arbitrary bytes as a feed document and as a linked alert.

Each input is read twice:

1. as a whole document;
2. as one value: the first byte picks a field of a complete, valid alert (a template
   whose area covers the harness's board), the rest replaces that field's text as raw
   bytes (markup too). Random bytes rarely make a valid alert but for one field; this
   reaches the checks on times, references, areas and parameters with any text.

Each document goes to ``parse_document`` (what ``cap.feed_url`` answers) and to
``parse_alert`` (what a feed entry's link answers). Every alert they return then
goes through what ``cap.job`` does with it, without the database: its key, the keys
it references, its stored times (``alerts._iso``/``_ends``), the JSON round trip of
``cap_alerts.body``, and ``to_playlist`` for a board the seeds' areas cover.

Contract: ``CapError`` with one line is the only error of the parsers, and never
their safety net ("... could not be understood: <exception>"), which would mean
that a bug refused a whole feed; the area test never raises (area.py: "pure and
total"); ``to_playlist`` raises at most the player's Playlist model's
``ValidationError``. Anything else escaping is a defect.

Seeds: each field's value in the template (mode 2); the documents the CAP tests
build (tests/test_cap_docs.py: alerts in both namespaces with every field, Atom and RSS
feeds, the DOCTYPE attacks); and, when the read-only ../shared/data/cap/ is there, the
OASIS example and the first entries of the NWS Atom index (read at start, never copied
into the repository).
"""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import atheris
from _harness import ROOT, SHARED, main, one_line

with atheris.instrument_imports(include=["content_sync.cap"]):
    from content_sync.cap.alerts import _ends, _iso
    from content_sync.cap.area import BoardArea, covers
    from content_sync.cap.model import Alert, CapError
    from content_sync.cap.parse import Document, parse_alert, parse_document
    from content_sync.cap.to_playlist import to_playlist

from pydantic import ValidationError  # noqa: E402

MAX_BYTES = 4096 * 1024
BOARD = BoardArea(geocodes=("MA_XA=03085", "SAME=006109"), area_names=("Lai Châu",),
                  position=(22.40, 102.60))
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime.fromisoformat("2026-11-24T09:00:00+07:00")
NO_EXPIRY = timedelta(hours=24)
SAFETY_NET = ("the document could not be understood", "the alert could not be understood")


def check_alert(alert: Alert) -> None:
    assert alert.key and alert.identifier and alert.sender
    alert.reference_keys()
    _iso(alert.sent)
    _iso(_ends(alert, NO_EXPIRY))
    assert Alert.model_validate_json(alert.model_dump_json()) == alert
    for info in alert.infos:
        covers(BOARD, info.areas)
    with contextlib.suppress(ValidationError):  # the player's own model refused it:
        to_playlist(alert, BOARD, ["vi", "vi-VN"], True, TZ, NOW, NO_EXPIRY)  # recorded


def refused(e: CapError) -> None:
    one_line(e)
    assert not str(e).startswith(SAFETY_NET), f"the safety net caught a bug: {e}"


# One alert with every field the reader uses, as a template for mode 2 (module doc).
FIELDS = {
    "identifier": "LCI-2026-0001", "sender": "canhbao@kttv.gov.vn",
    "sent": "2026-11-24T08:00:00+07:00", "status": "Actual", "msgType": "Update",
    "scope": "Public", "references": "canhbao@kttv.gov.vn,LCI-2026-0000,2026-11-23T08:00:00+07:00",
    "language": "vi-VN", "event": "Lũ quét", "urgency": "Immediate", "severity": "Extreme",
    "certainty": "Likely", "effective": "2026-11-24T08:00:00+07:00",
    "onset": "2026-11-24T09:00:00+07:00", "expires": "2026-11-25T08:00:00+07:00",
    "headline": "CẢNH BÁO LŨ QUÉT", "description": "Mưa lớn gây nguy cơ lũ quét.",
    "parameter": "Cấp 4", "areaDesc": "Xã Pa Vệ Sủ, tỉnh Lai Châu",
    "polygon": "22.0,102.0 22.0,103.0 23.0,103.0 23.0,102.0 22.0,102.0",
    "circle": "22.4,102.6 10", "geocode": "03085",
}
TEMPLATE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>'
    "<sender>{sender}</sender><sent>{sent}</sent><status>{status}</status>"
    "<msgType>{msgType}</msgType><scope>{scope}</scope><references>{references}</references>"
    "<info><language>{language}</language><event>{event}</event><urgency>{urgency}</urgency>"
    "<severity>{severity}</severity><certainty>{certainty}</certainty>"
    "<effective>{effective}</effective><onset>{onset}</onset><expires>{expires}</expires>"
    "<headline>{headline}</headline><description>{description}</description>"
    "<parameter><valueName>riskLevel</valueName><value>{parameter}</value></parameter>"
    "<area><areaDesc>{areaDesc}</areaDesc><polygon>{polygon}</polygon><circle>{circle}</circle>"
    "<geocode><valueName>MA_XA</valueName><value>{geocode}</value></geocode></area></info>"
    "</alert>\n"
)
MARK = "\x00"
AROUND = [tuple(TEMPLATE.format(**(FIELDS | {name: MARK})).encode().split(MARK.encode()))
          for name in FIELDS]
"""For each field, the template's bytes before and after its value."""


def one_value(data: bytes) -> bytes:
    before, after = AROUND[data[0] % len(AROUND)]
    return before + data[1:] + after


def test_one_input(data: bytes) -> None:
    check(data)
    if data:
        check(one_value(data))


def check(data: bytes) -> None:
    try:
        doc: Document | None = parse_document(data, MAX_BYTES)
    except CapError as e:
        refused(e)
        doc = None
    for entry in doc.entries if doc else []:
        assert entry.alert is not None or entry.error or entry.link
        if entry.alert is not None:
            check_alert(entry.alert)
    try:
        alert = parse_alert(data, MAX_BYTES)
    except CapError as e:
        refused(e)
    else:
        check_alert(alert)


def nws_head(text: bytes, entries: int) -> bytes:
    """The Atom index cut after its first entries (the whole is 270 KB, too big to mutate)."""
    end = 0
    for _ in range(entries):
        end = text.index(b"</entry>", end) + len(b"</entry>")
    return text[:end] + b"\n</feed>\n"


def seeds() -> dict[str, bytes]:
    sys.path.insert(0, str(ROOT))  # a fuzzer runs as a script from fuzz/
    from tests.kit.cap import (
        BILLION_LAUGHS,
        CAP11,
        POLYGON_AROUND,
        XXE,
        alert,
        area,
        atom,
        info,
        rss,
    )

    full = alert(
        identifier="LCI-2026-0002", msg_type="Update", status="Exercise",
        references=(("LCI-2026-0001", "2026-11-24T08:00:00+07:00"),),
        infos=(
            info(parameters=(("riskLevel", "Cấp 4"),), onset="2026-11-24T07:00:00+07:00",
                 areas=(area(polygons=(POLYGON_AROUND,), circles=("22.4,102.6 10",),
                             geocodes=(("MA_XA", "03085"),)),)),
            info(language="en-US", event="Flash flood", expires=None,
                 areas=(area(desc="Lai Chau"),)),
        ),
    )
    out = {
        f"value-{name}": bytes([i]) + value.encode()
        for i, (name, value) in enumerate(FIELDS.items())
    } | {
        "alert.xml": alert(),
        "alert-every-field.xml": full,
        "alert-cap11.xml": alert(ns=CAP11, sent="2026-11-24T01:00:00Z"),
        "atom.xml": atom([("urn:1", None, alert()), ("urn:2", "alerts/2.xml", None),
                          ("urn:3", "alerts/3.xml", full)]),
        "rss.xml": rss(["alerts/1.xml", "https://canhbao.example.gov.vn/cap/2.xml"]),
        "billion-laughs.xml": BILLION_LAUGHS,
        "xxe.xml": XXE,
    }
    cap = SHARED / "cap"
    if (cap / "oasis-amber-alert.cap.xml").is_file():
        out["shared-oasis-amber-alert.xml"] = (cap / "oasis-amber-alert.cap.xml").read_bytes()
    if (cap / "nws-atom-index-2018-08-15.xml").is_file():
        nws = (cap / "nws-atom-index-2018-08-15.xml").read_bytes()
        out["shared-nws-atom-3-entries.xml"] = nws_head(nws, 3)
    return out


if __name__ == "__main__":
    main("cap", test_one_input, seeds)
