"""CAP 1.2 XML signatures (§3.3.2.1) end to end: alerts signed here with signxml, with a
certificate and key made here with cryptography, served by the real FeedServer and
polled into a real SQLite file."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import ValidationError
from signxml import XMLSigner, methods

from content_sync.cap import poll_once
from content_sync.db import CapStatus, rows, store
from kiosk_config import Config
from tests.kit.cap import (
    BILLION_LAUGHS,
    XXE,
    FeedServer,
    alert,
    atom,
    feed_server,
    info,
)

__all__ = ["feed_server"]
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


class Issuer:
    """A signer of CAP alerts: an EC key and its self-signed certificate, as a PEM file."""

    def __init__(self, folder: Path, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start = datetime.now(UTC) - timedelta(days=1)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = folder / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def sign(self, doc: bytes) -> bytes:
        """The alert with an enveloped signature as the last child of <alert>."""
        signer = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256",
                           digest_algorithm="sha256", c14n_algorithm=EXC_C14N)
        signed = signer.sign(etree.fromstring(doc), key=self.key,
                             cert=self.cert.public_bytes(serialization.Encoding.PEM))
        return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.connect(tmp_path / "eboard.db")
    yield c
    c.close()


@pytest.fixture
def kttv(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path, "canhbao.kttv.gov.vn")


def cfg(url: str, certs: list[Path], require: bool = False) -> Config:
    return Config.model_validate({"cap": {
        "feed_url": url, "area_names": ["Pa Vệ Sủ", "Lai Châu"], "require_signature": require,
        "trusted_certs": [str(p) for p in certs]}})


def headlines(conn: sqlite3.Connection) -> list[str]:
    return sorted(json.loads(b)["items"][0]["title"] for b in store.overlays(conn))


def refusals(conn: sqlite3.Connection) -> str:
    return " | ".join(f"{x['subject']}: {x['reason']}" for x in store.recent_refusals(conn))


def status(conn: sqlite3.Connection) -> CapStatus:
    got = rows.read(conn, CapStatus)
    assert got is not None
    return got


def serve(server: FeedServer, doc: bytes, path: str = "/cap.xml") -> str:
    server.docs[path] = doc
    return server.url(path)


def test_an_alert_signed_by_a_trusted_issuer_is_shown(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer, tmp_path: Path) -> None:
    other = Issuer(tmp_path, "other.example")
    url = serve(feed_server, kttv.sign(alert()))
    for certs in ([kttv.pem], [other.pem, kttv.pem]):  # any of the trusted ones
        r = poll_once(cfg(url, certs, require=True), conn, now=NOW)
        assert r.state == "ok" and r.problems == []
        assert headlines(conn) == ["CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"]


def test_a_tampered_alert_is_refused_with_the_reason_logged_once(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer,
        caplog: pytest.LogCaptureFixture) -> None:
    signed = kttv.sign(alert(infos=(info(severity="Moderate", urgency="Expected"),)))
    forged = signed.replace(b"<severity>Moderate</severity>", b"<severity>Extreme</severity>")
    assert forged != signed
    url = serve(feed_server, forged)
    caplog.set_level(logging.WARNING, logger="content_sync.cap.job")
    logged = []
    for require in (True, True, False):  # a signature that fails is never ignored
        r = poll_once(cfg(url, [kttv.pem], require=require), conn, now=NOW)
        assert r.state == "error" and headlines(conn) == []
        assert "changed after it was signed" in r.error and "LCI-2026-0001" in r.error
        assert "changed after it was signed" in status(conn).error
        logged.append(len([m for m in caplog.messages if "changed after it was signed" in m]))
    assert logged[0] >= 1 and logged[1] == logged[0]  # said once, not every poll
    assert "changed after it was signed" in refusals(conn)
    assert len(store.recent_refusals(conn)) == 1  # recorded once


def test_an_alert_signed_with_another_key_is_refused(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer, tmp_path: Path) -> None:
    mallory = Issuer(tmp_path, "canhbao.kttv.gov.vn.evil")  # embeds its own certificate
    r = poll_once(cfg(serve(feed_server, mallory.sign(alert())), [kttv.pem]), conn, now=NOW)
    assert r.state == "error" and headlines(conn) == []
    assert "does not verify with any of the 1 certificate(s) in cap.trusted_certs" in r.error


def test_unsigned_is_refused_with_require_and_shown_without(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer) -> None:
    url = serve(feed_server, alert())
    r = poll_once(cfg(url, [kttv.pem], require=True), conn, now=NOW)
    assert r.state == "error" and headlines(conn) == []
    assert "is not signed" in r.error and "cap.require_signature is on" in r.error
    assert "is not signed" in status(conn).error
    for certs in ([kttv.pem], []):  # as before signatures existed
        r = poll_once(cfg(url, certs), conn, now=NOW)
        assert r.state == "ok" and headlines(conn) == ["CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT"]


def test_a_feed_of_signed_unsigned_and_forged_alerts(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer) -> None:
    def doc(ident: str, headline: str) -> bytes:
        return alert(ident, infos=(info(headline=headline),))

    forged = kttv.sign(doc("C", "C")).replace(b">C</headline>", ">C GIẢ</headline>".encode())
    feed_server.docs.update({
        "/a.xml": kttv.sign(doc("A", "A")),  # linked, signed
        "/d.xml": doc("D", "D"),  # linked, unsigned
    })
    feed = atom([("A", "/a.xml", None), ("B", None, kttv.sign(doc("B", "B"))),
                 ("C", None, forged), ("D", "/d.xml", None), ("E", None, doc("E", "E"))])
    url = serve(feed_server, feed, "/feed.xml")
    r = poll_once(cfg(url, [kttv.pem], require=True), conn, now=NOW)
    assert r.state == "ok" and headlines(conn) == ["A", "B"]
    text = refusals(conn)
    assert "'C' was changed after it was signed" in text
    assert "'D' is not signed" in text and "/d.xml" in text
    assert "'E' is not signed" in text


def test_index_only_entries_are_refused_when_a_signature_is_required(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer) -> None:
    index = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" '
             'xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2"><entry><id>X-1</id>'
             "<title>Lũ quét</title><updated>2026-11-24T08:00:00+07:00</updated>"
             "<cap:status>Actual</cap:status><cap:severity>Extreme</cap:severity>"
             "<cap:urgency>Immediate</cap:urgency><cap:areaDesc>Lai Châu</cap:areaDesc>"
             "</entry></feed>").encode()
    url = serve(feed_server, index, "/index.xml")
    poll_once(cfg(url, [kttv.pem], require=True), conn, now=NOW)
    assert headlines(conn) == []
    assert "only the CAP fields of a feed index" in refusals(conn)
    # Turned off: the unchanged feed is read again (no 304), and shown as before.
    poll_once(cfg(url, [kttv.pem]), conn, now=NOW)
    assert headlines(conn) == ["Lũ quét"] and feed_server.not_modified == []
    poll_once(cfg(url, [kttv.pem]), conn, now=NOW)
    assert feed_server.not_modified == ["/index.xml"]  # same settings: 304 as before


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_hostile_xml_is_refused_by_the_gate_before_any_signature_check(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer, hostile: bytes) -> None:
    r = poll_once(cfg(serve(feed_server, hostile), [kttv.pem], require=True), conn, now=NOW)
    assert r.state == "error" and "DOCTYPE" in r.error


def test_a_validly_signed_alert_behind_a_doctype_is_still_refused(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer) -> None:
    """A DTD is outside what XML-DSig signs: a signature that verifies must not let in
    the entities a DOCTYPE declares."""
    signed = kttv.sign(alert())
    decl, body = signed.split(b"?>", 1)
    dtd = (b'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
           b'<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;">]>')
    r = poll_once(cfg(serve(feed_server, decl + b"?>" + dtd + body), [kttv.pem]), conn,
                  now=NOW)
    assert r.state == "error" and "DOCTYPE" in r.error and headlines(conn) == []


def test_certificate_problems_are_said_plainly(
        feed_server: FeedServer, conn: sqlite3.Connection, tmp_path: Path) -> None:
    url = serve(feed_server, alert())
    missing = tmp_path / "nowhere.pem"
    r = poll_once(cfg(url, [missing], require=True), conn, now=NOW)
    assert r.state == "error" and str(missing) in r.error and "cannot be read" in r.error
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    r = poll_once(cfg(url, [junk]), conn, now=NOW)
    assert r.state == "error" and "holds no PEM certificate" in r.error
    assert headlines(conn) == []


def test_require_signature_needs_trusted_certs() -> None:
    config: dict[str, Any] = {"require_signature": True}
    with pytest.raises(ValidationError, match="cap.trusted_certs is empty"):
        Config.model_validate({"cap": config})
    assert Config().cap.require_signature is False and Config().cap.trusted_certs == []


def test_a_signature_over_part_of_the_alert_is_refused(
        feed_server: FeedServer, conn: sqlite3.Connection, kttv: Issuer) -> None:
    """Signed is only what the reference covers: a signature over one <info> must not
    vouch for the <status>, <scope> or other infos around it."""
    doc = alert().replace(b"<info>", b'<info Id="i1">', 1)
    signer = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256",
                       digest_algorithm="sha256", c14n_algorithm=EXC_C14N)
    signed = signer.sign(etree.fromstring(doc), key=kttv.key, reference_uri="#i1",
                         cert=kttv.cert.public_bytes(serialization.Encoding.PEM))
    data = bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    r = poll_once(cfg(serve(feed_server, data), [kttv.pem]), conn, now=NOW)
    assert r.state == "error" and "does not cover the whole alert" in r.error
    assert headlines(conn) == []


def test_no_change_to_a_signed_alert_gets_through_and_nothing_but_caperror_escapes(
        tmp_path: Path) -> None:
    """Any one byte of a signed alert changed, dropped or doubled: refused with a
    CapError, or read exactly as signed (a change the signature does not cover, such
    as in the XML declaration)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from content_sync.cap import CapError, parse_document
    from content_sync.cap.signature import Trust

    kttv = Issuer(tmp_path, "kttv")
    signed = kttv.sign(alert())
    trust = Trust((kttv.cert,), required=True)
    original = parse_document(signed, trust=trust).entries[0].alert

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, len(signed) - 1), st.integers(0, 255), st.sampled_from("sdi"))
    def check(at: int, byte: int, how: str) -> None:
        b = bytes([byte])
        data = {"s": signed[:at] + b + signed[at + 1:], "d": signed[:at] + signed[at + 1:],
                "i": signed[:at] + b + signed[at:]}[how]
        try:
            doc = parse_document(data, trust=trust)
        except CapError:
            return
        assert doc.entries[0].alert == original

    check()
