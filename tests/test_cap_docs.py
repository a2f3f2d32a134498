"""The CAP builders of tests/kit/cap.py parse the way the CAP 1.2 specification says."""

from __future__ import annotations

from content_sync.cap import parse_document
from tests.kit.cap import CAP11, POLYGON_AROUND, alert, area, atom, info, key, rss


def test_single_alert_with_two_languages() -> None:
    doc = parse_document(alert(infos=(info(language="en-US", event="Flash flood"), info())))
    assert doc.kind == "alert"
    a = doc.entries[0].alert
    assert a is not None and a.status == "Actual" and a.msg_type == "Alert"
    assert [i.language for i in a.infos] == ["en-US", "vi-VN"]
    assert a.infos[1].event == "Lũ quét, sạt lở đất"
    assert a.key == key("LCI-2026-0001")


def test_cap_1_1_namespace_is_accepted() -> None:
    a = parse_document(alert(ns=CAP11)).entries[0].alert
    assert a is not None and a.identifier == "LCI-2026-0001"


def test_references_name_sender_identifier_sent() -> None:
    a = parse_document(alert(identifier="B", msg_type="Update", references=(
        ("A", "2026-11-24T08:00:00+07:00"), ("A0", "2026-11-24T01:00:00Z")))).entries[0].alert
    assert a is not None
    assert a.reference_keys() == [key("A"), key("A0", "2026-11-24T08:00:00+07:00")]


def test_area_forms_survive_parsing() -> None:
    a = parse_document(alert(infos=(info(areas=(area(
        polygons=(POLYGON_AROUND, ""), circles=("22.4,102.6 5",),
        geocodes=(("MA_XA", "03085"),)),)),))).entries[0].alert
    assert a is not None
    ar = a.infos[0].areas[0]
    assert ar.polygons == (POLYGON_AROUND, "") and ar.circles == ("22.4,102.6 5",)
    assert ar.geocodes == (("MA_XA", "03085"),)


def test_atom_feed_embeds_and_links() -> None:
    doc = parse_document(atom([("e1", None, alert()), ("e2", "/alerts/2.xml", None)]))
    assert doc.kind == "feed" and len(doc.entries) == 2
    assert doc.entries[0].alert is not None and doc.entries[0].ref == "e1"
    assert doc.entries[1].alert is None and doc.entries[1].link == "/alerts/2.xml"


def test_rss_feed_links() -> None:
    doc = parse_document(rss(["http://127.0.0.1/a.xml"]))
    assert [e.link for e in doc.entries] == ["http://127.0.0.1/a.xml"]
