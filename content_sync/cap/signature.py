"""CAP 1.2 XML signatures (§3.3.2.1): an enveloped XML-DSig in ``<alert>``, checked with signxml.

Trust is pinned: ``cap.trusted_certs`` names PEM files of the issuers' certificates, and
a signature verifies only with the key of one of them (the certificate inside the
signature's KeyInfo is not trusted for itself). With certificates configured:

- a signed alert is read from what was signed, not from the bytes around it (XML-DSig's
  "see what is signed"): the signature must sit directly in ``<alert>`` and its one
  reference must be the whole alert (``URI=""``); SHA-1 is refused (signxml's default);
- a signature that does not verify refuses the alert, whatever ``cap.require_signature``
  says: it was changed after signing, or signed by a key not trusted here;
- an unsigned alert is refused when ``cap.require_signature`` is on, else read as before.

The document has already passed the defusedxml gate (parse.py: no DTD, no entities)
before anything here parses it with lxml; the lxml parser here and signxml's own also
refuse to resolve entities or load anything, as a second wall.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

from cryptography import x509
from defusedxml import ElementTree as SafeET
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidDigest

from content_sync.cap.model import CapError

DSIG = "http://www.w3.org/2000/09/xmldsig#"
SIGNATURE = f"{{{DSIG}}}Signature"
_EXPECT = SignatureConfiguration(location="./", expect_references=1)


@dataclass(frozen=True)
class Trust:
    """The certificates alerts may be signed with, and whether a signature is required."""

    certs: tuple[x509.Certificate, ...] = ()
    required: bool = False


def load_trust(paths: Sequence[str], required: bool) -> Trust:
    """The certificates of ``cap.trusted_certs`` (PEM, one or more per file), or CapError."""
    certs: list[x509.Certificate] = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as e:
            raise CapError(f"cap.trusted_certs: {name} cannot be read ({e.strerror or e}); "
                           "fix the path or the file's permissions") from None
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            found = []
        if not found:
            raise CapError(f"cap.trusted_certs: {name} holds no PEM certificate "
                           "(-----BEGIN CERTIFICATE-----); convert a DER file with "
                           "`openssl x509 -inform der -in FILE -out FILE.pem`")
        certs.extend(found)
    if required and not certs:
        raise CapError("cap.require_signature is on but cap.trusted_certs is empty: "
                       "no alert could be shown")
    return Trust(tuple(certs), required)


def settings_key(paths: Sequence[str], required: bool) -> str:
    """What the signature settings are, as a short key: the paths, the certificates'
    bytes and the flag. "" when signatures are not checked. An alert refused under one
    key must be read again under another, even when the feed has not changed."""
    if not paths and not required:
        return ""
    h = hashlib.sha256(b"required" if required else b"optional")
    for name in paths:
        h.update(b"\0" + name.encode())
        try:
            h.update(hashlib.sha256(Path(name).read_bytes()).digest())
        except OSError:
            h.update(b"(unreadable)")
    return h.hexdigest()[:16]


def _lxml_root(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    return etree.fromstring(data, parser)


def _is_alert(tag: object, namespaces: Collection[str]) -> bool:
    if not isinstance(tag, str) or not tag.startswith("{"):
        return False
    ns, _, local = tag[1:].partition("}")
    return local == "alert" and ns in namespaces


def _identifier(el: etree._Element) -> str:
    for child in el:
        if isinstance(child.tag, str) and child.tag.endswith("}identifier"):
            return repr((child.text or "").strip()[:80])
    return "(no identifier)"


class Verifier:
    """The CAP alerts of one document, as their signatures allow them to be read.

    ``alerts`` are the document's CAP ``<alert>`` elements as parse.py read them
    (defusedxml), in document order; the same bytes are read again with lxml, whose
    tree keeps the exact text the signature covers.
    """

    def __init__(self, data: bytes, alerts: list[Element], trust: Trust | None,
                 namespaces: Collection[str]) -> None:
        self.trust = trust or Trust()
        self._signed: dict[int, etree._Element] = {}
        if self.trust.certs and alerts:
            theirs = [e for e in _lxml_root(data).iter() if _is_alert(e.tag, namespaces)]
            self._signed = {id(a): b for a, b in zip(alerts, theirs, strict=True)}

    @property
    def required(self) -> bool:
        return self.trust.required

    def alert(self, el: Element) -> Element:
        """The alert element to read: ``el`` itself when unsigned and allowed, the
        signed content when its signature verifies; else CapError saying why."""
        if not self.trust.certs:
            return el
        signed = self._signed[id(el)]
        where = f"alert {_identifier(signed)}"
        if signed.find(SIGNATURE) is None:
            if self.trust.required:
                raise CapError(
                    f"{where} is not signed (no <Signature> in its <alert>) and "
                    "cap.require_signature is on; ask the issuer for signed alerts "
                    "(CAP 1.2 §3.3.2.1)"
                )
            return el
        return _verified(signed, where, self.trust.certs)


def _verified(signed: etree._Element, where: str,
              certs: tuple[x509.Certificate, ...]) -> Element:
    reasons: list[str] = []
    for cert in certs:
        try:
            result = XMLVerifier().verify(signed, x509_cert=cert, expect_config=_EXPECT)
        except InvalidDigest:
            raise CapError(f"{where} was changed after it was signed (its XML signature's "
                           "digest does not match); refused") from None
        except Exception as e:  # signxml, lxml and cryptography all raise their own
            reasons.append(f"{type(e).__name__}: {e}"[:160])
            continue
        one = result if not isinstance(result, list) else None  # one reference expected
        refs = [] if one is None else one.signature_xml.findall(
            f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference")
        content = None if one is None else one.signed_xml
        if len(refs) != 1 or refs[0].get("URI") != "" or content is None or (
                content.tag != signed.tag):
            raise CapError(f"{where}: its signature does not cover the whole alert "
                           '(one <Reference URI=""> is expected); refused')
        read: Element = SafeET.fromstring(etree.tostring(content), forbid_dtd=True)
        return read  # what was signed, through the same gate again
    raise CapError(
        f"{where}: its XML signature does not verify with any of the {len(certs)} "
        f"certificate(s) in cap.trusted_certs ({'; '.join(dict.fromkeys(reasons))}); "
        "it was signed by another key, or changed after signing; refused"
    )
