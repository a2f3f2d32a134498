"""Real published CAP documents (../shared/data/cap/, see its README.md) parse and filter.

- the OASIS CAP 1.2 example: one Amber Alert, two info blocks (en-US, es-US), a SAME
  geocode, no expires;
- a real NWS Atom index (15 August 2018): 163 entries carrying CAP 1.1 fields, links
  to full alerts that cannot be reached from here (https, while the feed is file://,
  so the index fields are used), FIPS6/UGC geocodes with several codes per value, and
  empty polygons.

Expectations are counted from the raw XML with the standard library, not with our parser.
"""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as StdET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from content_sync.cap import parse_document, poll_once
from content_sync.cap.alerts import states
from content_sync.db import store
from kiosk_config import Config
from tests.kit.cap import FeedServer, feed_server

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cap"
OASIS = DATA / "oasis-amber-alert.cap.xml"
NWS = DATA / "nws-atom-index-2018-08-15.xml"
__all__ = ["feed_server"]  # the fixture, imported for its side effect
CAP11 = "{urn:oasis:names:tc:emergency:cap:1.1}"
ATOM = "{http://www.w3.org/2005/Atom}"

pytestmark = pytest.mark.skipif(
    not (OASIS.is_file() and NWS.is_file()),
    reason=f"the shared real CAP documents are not at {DATA} (a clone outside the workspace)",
)
OASIS_SENT = datetime(2003, 6, 11, 22, 39, tzinfo=UTC) + timedelta(hours=7)
NWS_NOW = datetime(2018, 8, 15, 23, 0, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "eboard.db")
    yield c
    c.close()


def cfg(url: str, **cap: Any) -> Config:
    return Config.model_validate({"cap": {"feed_url": url, **cap}})


def shown(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [json.loads(b) for b in store.overlays(conn)]


def test_oasis_example_parses() -> None:
    doc = parse_document(OASIS.read_bytes())
    assert doc.kind == "alert"
    a = doc.entries[0].alert
    assert a is not None
    assert (a.identifier, a.sender, a.status, a.msg_type, a.scope) == (
        "KAR0-0306112239-SW", "KARO@CLETS.DOJ.CA.GOV", "Actual", "Alert", "Public")
    assert a.sent == OASIS_SENT
    assert [i.language for i in a.infos] == ["en-US", "es-US"]
    assert a.infos[0].areas[0].geocodes == (("SAME", "006037"),)
    assert a.infos[1].headline == "Alerta Amber en el condado de Los Ángeles"


@pytest.mark.parametrize(("cap", "expected"), [
    ({"geocodes": ["SAME=006037"]}, ("en-US", "Amber Alert in Los Angeles County")),
    ({"geocodes": ["006037"], "languages": ["es"]},
     ("es-US", "Alerta Amber en el condado de Los Ángeles")),
    ({"area_names": ["los angeles county"]}, ("en-US", "Amber Alert in Los Angeles County")),
    ({"geocodes": ["SAME=006038"]}, None),
    ({"area_names": ["Orange County"]}, None),
])
def test_oasis_example_filters(conn: sqlite3.Connection, cap: dict[str, Any],
                               expected: tuple[str, str] | None) -> None:
    r = poll_once(cfg(OASIS.as_uri(), **cap), conn, now=OASIS_SENT + timedelta(hours=1))
    assert r.state == "ok" and r.problems == []
    if expected is None:
        assert shown(conn) == []
        return
    [pl] = shown(conn)
    assert (pl["origin"]["language"], pl["items"][0]["title"]) == expected
    assert pl["priority"] == "emergency"  # Severe + Immediate
    assert pl["risk_level"] is None  # nothing in the alert says a QĐ 18 level
    # no <expires>: shown for cap.no_expiry_hours after it was sent
    poll_once(cfg(OASIS.as_uri(), **cap), conn, now=OASIS_SENT + timedelta(hours=25))
    assert shown(conn) == []


def _raw_entries() -> list[StdET.Element]:
    return StdET.parse(NWS).getroot().findall(f"{ATOM}entry")


def test_nws_index_parses_every_entry() -> None:
    raw = _raw_entries()
    doc = parse_document(NWS.read_bytes())
    assert doc.kind == "feed" and len(doc.entries) == len(raw) == 163
    assert [e.error for e in doc.entries if e.error] == []
    alerts = [e.alert for e in doc.entries]
    assert all(a is not None and a.from_index for a in alerts)
    assert [e.ref for e in doc.entries] == [x.findtext(f"{ATOM}id") for x in raw]
    empty_raw = sum(1 for x in raw if not (x.findtext(f"{CAP11}polygon") or "").strip())
    empty = sum(1 for a in alerts if a is not None and a.infos[0].areas[0].polygons == ("",))
    assert empty == empty_raw == 64
    severities = [a.infos[0].severity for a in alerts if a is not None]
    assert severities == [x.findtext(f"{CAP11}severity") for x in raw]


def test_nws_index_filters_by_geocode_polygon_and_name(conn: sqlite3.Connection) -> None:
    raw = _raw_entries()
    url = NWS.as_uri()
    board = {"geocodes": ["UGC=WYZ277"], "area_names": ["Catalina and Santa Barbara Islands"],
             "latitude": 31.8, "longitude": -86.55}
    r = poll_once(cfg(url, **board), conn, now=NWS_NOW)
    assert r.state == "ok" and r.problems == [] and r.entries == 163
    got = {pl["title"]: pl["priority"] for pl in shown(conn)}
    assert got == {
        "Red Flag Warning": "emergency",          # UGC WYZ277 of "WYZ277 WYZ278 …"; Severe+Expected
        "Special Weather Statement": "normal",    # polygon around Butler/Crenshaw, Alabama
        "Beach Hazards Statement": "priority",    # areaDesc; Moderate+Expected
    }
    # every entry of the index is stored; links to https were not followed from file://
    assert len(states(conn, url)) == len(raw)


def test_nws_index_all_expired_later(conn: sqlite3.Connection) -> None:
    url = NWS.as_uri()
    later = datetime(2018, 8, 25, tzinfo=UTC)
    poll_once(cfg(url, geocodes=["UGC=WYZ277"]), conn, now=NWS_NOW)
    assert len(shown(conn)) == 1
    poll_once(cfg(url, geocodes=["UGC=WYZ277"]), conn, now=later)
    assert shown(conn) == []
    assert set(states(conn, url).values()) == {"expired"}


def test_nws_emergencies_match_the_documented_mapping(conn: sqlite3.Connection) -> None:
    """With every UGC code of the index as the board's area, count emergencies two ways."""
    raw = _raw_entries()
    codes = set()
    for x in raw:
        geo = x.find(f"{CAP11}geocode")
        assert geo is not None
        values = [v.text or "" for v in geo if v.tag.endswith("value")]
        codes.update(values[1].split())  # the UGC value follows FIPS6
    poll_once(cfg(NWS.as_uri(), geocodes=[f"UGC={c}" for c in sorted(codes)]), conn,
              now=datetime(2018, 8, 15, 12, 0, tzinfo=UTC))  # before any of them expires
    expected = sum(
        1 for x in raw
        if x.findtext(f"{CAP11}severity") in ("Extreme", "Severe")
        and x.findtext(f"{CAP11}urgency") in ("Immediate", "Expected")
        and x.findtext(f"{CAP11}certainty") != "Unlikely"
    )
    got = [pl for pl in shown(conn) if pl["priority"] == "emergency"]
    assert len(shown(conn)) == len(raw)
    assert len(got) == expected > 0


def test_nws_index_over_http_uses_index_fields_for_unreachable_links(
    feed_server: FeedServer, conn: sqlite3.Connection
) -> None:
    feed_server.docs["/us.php"] = NWS.read_bytes()
    r = poll_once(cfg(feed_server.url("/us.php"), geocodes=["FIPS6=056041"]), conn, now=NWS_NOW)
    assert r.state == "ok" and r.problems == [] and r.entries == 163
    assert feed_server.hits == ["/us.php"]  # the https links were not followed from http
    assert [pl["title"] for pl in shown(conn)] == ["Red Flag Warning"]
