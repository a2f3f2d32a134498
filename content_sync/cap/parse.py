"""Parse CAP 1.2 (and 1.1) alerts and Atom/RSS feeds of alerts, refusing hostile XML.

The XML parser is defusedxml with DTDs forbidden: a CAP document needs no DOCTYPE,
and one is how entity expansion (billion laughs) and external entities (XXE) get
in. Anything else wrong with a document raises :class:`CapError` with one line
saying what, so the caller can record it and go on with the rest.

Given a :class:`~content_sync.cap.signature.Trust` with certificates, each alert is
read as its XML signature allows (signature.py), after this gate and never before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from xml.etree.ElementTree import Element

import defusedxml
from defusedxml import ElementTree as SafeET

from content_sync.cap.model import Alert, Area, CapError, Info, parse_time
from content_sync.cap.signature import Trust, Verifier

CAP_NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.2",
    "urn:oasis:names:tc:emergency:cap:1.1",
}
ATOM = "http://www.w3.org/2005/Atom"
STATUSES = {"Actual", "Exercise", "System", "Test", "Draft"}
MSG_TYPES = {"Alert", "Update", "Cancel", "Ack", "Error"}
DEFAULT_MAX_BYTES = 4096 * 1024
MAX_ENTRIES = 1000


@dataclass
class Entry:
    """One alert of a document: embedded, built from feed index fields, or only linked."""

    ref: str = ""
    link: str = ""
    alert: Alert | None = None
    error: str = ""


@dataclass
class Document:
    kind: Literal["alert", "feed"]
    entries: list[Entry] = field(default_factory=list)
    dropped: int = 0
    """Feed entries beyond MAX_ENTRIES, not read (a hostile feed must not cost hours)."""


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _local(el: Element) -> str:
    return _split(el.tag)[1] if isinstance(el.tag, str) else ""


def _is_cap(el: Element, local: str) -> bool:
    if not isinstance(el.tag, str):
        return False
    ns, name = _split(el.tag)
    return name == local and ns in CAP_NAMESPACES


def _children(el: Element, local: str) -> list[Element]:
    return [c for c in el if _local(c) == local]


def _text(el: Element, local: str) -> str:
    for c in el:
        if _local(c) == local:
            return "".join(c.itertext()).strip()
    return ""


def _texts(el: Element, local: str) -> list[str]:
    return ["".join(c.itertext()).strip() for c in el if _local(c) == local]


def _pairs(el: Element) -> tuple[tuple[str, str], ...]:
    """valueName/value pairs in order (CAP has one pair; some feeds put several)."""
    pairs: list[tuple[str, str]] = []
    name = ""
    for c in el:
        if _local(c) == "valueName":
            name = (c.text or "").strip()
        elif _local(c) == "value":
            pairs.append((name, (c.text or "").strip()))
    return tuple(pairs)


def _time(el: Element, local: str, where: str) -> datetime | None:
    text = _text(el, local)
    if not text:
        return None
    value = parse_time(text)
    if not isinstance(value, datetime):
        raise CapError(
            f"{where} <{local}> {text[:60]!r} is not a date-time with an offset, "
            "e.g. 2026-11-24T08:00:00+07:00"
        )
    return value


def _area(el: Element) -> Area:
    return Area(
        desc=_text(el, "areaDesc"),
        polygons=tuple(_texts(el, "polygon")),
        circles=tuple(_texts(el, "circle")),
        geocodes=tuple(p for g in _children(el, "geocode") for p in _pairs(g)),
    )


def _info(el: Element, where: str) -> Info:
    return Info(
        language=_text(el, "language") or "en-US",
        event=_text(el, "event"),
        urgency=_text(el, "urgency") or "Unknown",
        severity=_text(el, "severity") or "Unknown",
        certainty=_text(el, "certainty") or "Unknown",
        headline=_text(el, "headline"),
        description=_text(el, "description"),
        instruction=_text(el, "instruction"),
        sender_name=_text(el, "senderName"),
        effective=_time(el, "effective", where),
        onset=_time(el, "onset", where),
        expires=_time(el, "expires", where),
        parameters=tuple(p for g in _children(el, "parameter") for p in _pairs(g)),
        areas=tuple(_area(a) for a in _children(el, "area")),
    )


def _check_enum(value: str, allowed: set[str], what: str, where: str) -> str:
    if value not in allowed:
        raise CapError(f"{where} <{what}> is {value[:40]!r}, expected one of {sorted(allowed)}")
    return value


def alert_from_element(el: Element) -> Alert:
    """A CAP <alert> element as an Alert, or CapError saying what is wrong."""
    ident = _text(el, "identifier")
    where = f"alert {ident[:80]!r}" if ident else "alert"
    for required in ("identifier", "sender", "sent", "status", "msgType"):
        if not _text(el, required):
            raise CapError(f"{where} has no <{required}>; it is required by CAP 1.2")
    sent = _time(el, "sent", where)
    assert sent is not None
    infos = []
    for n, info in enumerate(_children(el, "info"), start=1):
        infos.append(_info(info, f"{where} info {n}"))
    return Alert(
        identifier=ident,
        sender=_text(el, "sender"),
        sent=sent,
        status=_check_enum(_text(el, "status"), STATUSES, "status", where),
        msg_type=_check_enum(_text(el, "msgType"), MSG_TYPES, "msgType", where),
        scope=_text(el, "scope") or "Public",
        references=tuple(_text(el, "references").split()),
        infos=tuple(infos),
    )


def _index_alert(entry: Element, ident: str, sender: str, title: str, summary: str) -> Alert:
    """An alert from the CAP fields an Atom/RSS index carries beside each entry."""
    fields = {_local(c): c for c in entry if _split(c.tag)[0] in CAP_NAMESPACES}
    where = f"feed entry {ident[:80]!r}"
    status = _text(entry, "status")
    if not status:
        raise CapError(f"{where} has neither an embedded alert nor a <cap:status>")
    sent_text = _text(entry, "sent") or _text(entry, "published") or _text(entry, "updated")
    sent = parse_time(sent_text) if sent_text else ""
    if not isinstance(sent, datetime):
        raise CapError(f"{where} has no usable sent/published time ({sent_text[:40]!r})")
    area = Area(
        desc=_text(entry, "areaDesc"),
        polygons=tuple(_texts(entry, "polygon")),
        circles=tuple(_texts(entry, "circle")),
        geocodes=tuple(p for g in _children(entry, "geocode") for p in _pairs(g)),
    )
    info = Info(
        language=_text(entry, "language") or "en-US",
        event=_text(entry, "event"),
        urgency=_text(entry, "urgency") or "Unknown",
        severity=_text(entry, "severity") or "Unknown",
        certainty=_text(entry, "certainty") or "Unknown",
        headline=_text(entry, "headline") or title,
        description=_text(entry, "description") or summary,
        instruction=_text(entry, "instruction"),
        effective=_time(entry, "effective", where),
        onset=_time(entry, "onset", where),
        expires=_time(entry, "expires", where),
        parameters=tuple(p for g in _children(entry, "parameter") for p in _pairs(g)),
        areas=(area,) if fields.keys() & {"areaDesc", "polygon", "circle", "geocode"} else (),
    )
    return Alert(
        identifier=_text(entry, "identifier") or ident,
        sender=_text(entry, "sender") or sender or "feed",
        sent=sent,
        status=_check_enum(status, STATUSES, "cap:status", where),
        msg_type=_check_enum(_text(entry, "msgType") or "Alert", MSG_TYPES, "cap:msgType", where),
        scope=_text(entry, "scope") or "Public",
        references=tuple(_text(entry, "references").split()),
        infos=(info,),
        from_index=True,
    )


def _embedded(entry: Element) -> Element | None:
    for el in entry.iter():
        if _is_cap(el, "alert"):
            return el
    return None


def _entry(item: Element, ref: str, link: str, sender: str, title: str, summary: str,
           verifier: Verifier) -> Entry:
    out = Entry(ref=ref or link, link=link)
    try:
        embedded = _embedded(item)
        if embedded is not None:
            out.alert = alert_from_element(verifier.alert(embedded))
        elif any(_split(c.tag)[0] in CAP_NAMESPACES for c in item if isinstance(c.tag, str)):
            if verifier.required and not link:
                out.error = (f"feed entry {out.ref[:80]!r} has only the CAP fields of a feed "
                             "index, which no signature covers, and cap.require_signature "
                             "is on; refused")
            elif verifier.required:
                out.alert = None  # the linked alert is read, and its signature checked
            elif not link:
                out.alert = _index_alert(item, out.ref, sender, title, summary)
            else:
                # keep the index fields as a fallback for when the link cannot be fetched
                try:
                    out.alert = _index_alert(item, out.ref, sender, title, summary)
                except CapError:
                    out.alert = None
        elif not link:
            out.error = f"feed entry {out.ref[:80]!r} has no alert, no CAP fields and no link"
    except CapError as e:
        out.error = str(e)
    return out


def _atom_link(entry: Element) -> str:
    links = [c for c in entry if _split(c.tag) == (ATOM, "link")]
    for pred in (
        lambda c: "cap" in (c.get("type") or ""),
        lambda c: (c.get("rel") or "alternate") == "alternate",
    ):
        for c in links:
            if pred(c) and c.get("href"):
                return (c.get("href") or "").strip()
    return ""


def _atom(root: Element, verifier: Verifier) -> Document:
    doc = Document("feed")
    feed_author = _text(_children(root, "author")[0], "name") if _children(root, "author") else ""
    for entry in root:
        if _split(entry.tag) != (ATOM, "entry"):
            continue
        authors = _children(entry, "author")
        sender = _text(authors[0], "name") if authors else feed_author
        if len(doc.entries) >= MAX_ENTRIES:
            doc.dropped += 1
            continue
        doc.entries.append(_entry(
            entry, _text(entry, "id"), _atom_link(entry), sender,
            _text(entry, "title"), _text(entry, "summary"), verifier,
        ))
    return doc


def _rss(root: Element, verifier: Verifier) -> Document:
    doc = Document("feed")
    for channel in _children(root, "channel"):
        for item in _children(channel, "item"):
            link = _text(item, "link")
            for enc in _children(item, "enclosure"):
                if "cap" in (enc.get("type") or "") and enc.get("url"):
                    link = (enc.get("url") or "").strip()
            if len(doc.entries) >= MAX_ENTRIES:
                doc.dropped += 1
                continue
            doc.entries.append(_entry(
                item, _text(item, "guid"), link, _text(item, "author"),
                _text(item, "title"), _text(item, "description"), verifier,
            ))
    return doc


def parse_xml(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Element:
    """Well-formed, DTD-free XML as an element tree, or CapError."""
    if not data.strip():
        raise CapError("the document is empty")
    if len(data) > max_bytes:
        raise CapError(
            f"the document is {len(data) // 1024} KB, above cap.max_document_kb "
            f"({max_bytes // 1024} KB); raise it if this feed is really that large"
        )
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True)
    except defusedxml.DTDForbidden:
        raise CapError(
            "the document has a DOCTYPE; CAP needs none and it can carry entity-expansion "
            "(billion laughs) or external-entity (XXE) attacks, so it is refused"
        ) from None
    except defusedxml.DefusedXmlException as e:
        raise CapError(f"the document uses forbidden XML features ({e}); refused") from None
    except SafeET.ParseError as e:
        raise CapError(f"the document is not well-formed XML: {e}") from None
    except Exception as e:  # expat can raise odd things on odd bytes (encodings, ...)
        raise CapError(f"the document cannot be read as XML: {type(e).__name__}: {e}") from None
    return root


def _verifier(data: bytes, root: Element, trust: Trust | None) -> Verifier:
    """What checks the signatures of ``root``'s alerts (nothing without certificates)."""
    try:
        alerts = [el for el in root.iter() if _is_cap(el, "alert")]
        return Verifier(data, alerts, trust, CAP_NAMESPACES)
    except Exception as e:  # lxml reading what expat read: a surprise, refuse this document
        raise CapError(f"the document cannot be read for its signatures: "
                       f"{type(e).__name__}: {e}") from None


def parse_document(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                   trust: Trust | None = None) -> Document:
    """A single CAP alert or an Atom/RSS feed of alerts; CapError when neither."""
    root = parse_xml(data, max_bytes)
    ns, local = _split(root.tag)
    verifier = _verifier(data, root, trust)
    try:
        if local == "alert" and ns in CAP_NAMESPACES:
            return Document("alert", [Entry(alert=alert_from_element(verifier.alert(root)))])
        if (ns, local) == (ATOM, "feed"):
            return _atom(root, verifier)
        if (ns, local) == ("", "rss"):
            return _rss(root, verifier)
    except CapError:
        raise
    except Exception as e:  # a bug must not stop the box: refuse this document only
        raise CapError(f"the document could not be understood: {type(e).__name__}: {e}") from None
    if local == "alert":
        raise CapError(
            f"the root <alert> is in namespace {ns!r}, not CAP 1.2 "
            "(urn:oasis:names:tc:emergency:cap:1.2) or 1.1; check the feed URL"
        )
    raise CapError(
        f"the document is not a CAP alert nor an Atom/RSS feed (root element <{local[:40]}>); "
        "check cap.feed_url"
    )


def parse_alert(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
                trust: Trust | None = None) -> Alert:
    """A document that must be one CAP alert (e.g. fetched from a feed entry's link)."""
    root = parse_xml(data, max_bytes)
    if not _is_cap(root, "alert"):
        raise CapError(
            f"expected a CAP 1.2 <alert>, found <{_local(root)[:40]}>; "
            "the feed entry's link does not lead to a CAP alert"
        )
    verifier = _verifier(data, root, trust)
    try:
        return alert_from_element(verifier.alert(root))
    except CapError:
        raise
    except Exception as e:
        raise CapError(f"the alert could not be understood: {type(e).__name__}: {e}") from None
