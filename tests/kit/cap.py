"""CAP 1.2 documents written from the OASIS specification (CAP-v1.2-os), and a feed server.

Builders here follow the element order of the CAP 1.2 schema (alert: identifier,
sender, sent, status, msgType, scope, references, info; info: language, category,
event, urgency, severity, certainty, effective, onset, expires, senderName, headline,
description, instruction, parameter, area; area: areaDesc, polygon, circle, geocode).
The CAP test modules and the CAP fuzzer import them; tests/test_cap_docs.py checks that
the builders parse the way the specification says.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pytest

from content_sync.cap.model import alert_key

CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11 = "urn:oasis:names:tc:emergency:cap:1.1"
SENDER = "canhbao@kttv.gov.vn"

# A commune in the hills of Lai Châu (illustrative position and codes).
LAT, LON = 22.40, 102.60
POLYGON_AROUND = "22.0,102.0 22.0,103.0 23.0,103.0 23.0,102.0 22.0,102.0"
POLYGON_ELSEWHERE = "10.0,106.0 10.0,107.0 11.0,107.0 11.0,106.0 10.0,106.0"


def _el(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{escape(value)}</{name}>"


def area(desc: str = "Xã Pa Vệ Sủ, huyện Mường Tè, tỉnh Lai Châu",
         polygons: tuple[str, ...] = (), circles: tuple[str, ...] = (),
         geocodes: tuple[tuple[str, str], ...] = ()) -> str:
    return (
        "<area>" + _el("areaDesc", desc)
        + "".join(_el("polygon", p) for p in polygons)
        + "".join(_el("circle", c) for c in circles)
        + "".join(f"<geocode>{_el('valueName', n)}{_el('value', v)}</geocode>"
                  for n, v in geocodes)
        + "</area>"
    )


def info(language: str = "vi-VN", event: str = "Lũ quét, sạt lở đất",
         urgency: str = "Immediate", severity: str = "Extreme", certainty: str = "Likely",
         headline: str | None = "CẢNH BÁO LŨ QUÉT, SẠT LỞ ĐẤT",
         description: str | None = "Mưa lớn gây nguy cơ lũ quét tại các xã vùng núi.",
         instruction: str | None = "Di chuyển ngay khỏi khu vực ven suối, sườn dốc.",
         effective: str | None = "2026-11-24T08:00:00+07:00", onset: str | None = None,
         expires: str | None = "2026-11-25T08:00:00+07:00",
         parameters: tuple[tuple[str, str], ...] = (),
         areas: tuple[str, ...] | None = None, category: str = "Met") -> str:
    if areas is None:
        areas = (area(),)
    return (
        "<info>" + _el("language", language) + _el("category", category)
        + _el("event", event) + _el("urgency", urgency) + _el("severity", severity)
        + _el("certainty", certainty) + _el("effective", effective) + _el("onset", onset)
        + _el("expires", expires) + _el("senderName", "Đài KTTV tỉnh Lai Châu")
        + _el("headline", headline) + _el("description", description)
        + _el("instruction", instruction)
        + "".join(f"<parameter>{_el('valueName', n)}{_el('value', v)}</parameter>"
                  for n, v in parameters)
        + "".join(areas) + "</info>"
    )


def alert(identifier: str = "LCI-2026-0001", sent: str = "2026-11-24T08:00:00+07:00",
          status: str = "Actual", msg_type: str = "Alert", scope: str = "Public",
          references: tuple[tuple[str, str], ...] = (), infos: tuple[str, ...] | None = None,
          sender: str = SENDER, ns: str = CAP12) -> bytes:
    """A CAP alert; references are (identifier, sent) of messages by the same sender."""
    if infos is None:
        infos = (info(),)
    refs = " ".join(f"{sender},{i},{s}" for i, s in references)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{ns}">'
        + _el("identifier", identifier) + _el("sender", sender) + _el("sent", sent)
        + _el("status", status) + _el("msgType", msg_type) + _el("scope", scope)
        + (_el("references", refs) if refs else "") + "".join(infos) + "</alert>"
    ).encode()


def key(identifier: str, sent: str = "2026-11-24T08:00:00+07:00", sender: str = SENDER) -> str:
    from content_sync.cap.model import parse_time
    return alert_key(sender, identifier, parse_time(sent))


def atom(entries: list[tuple[str, str | None, bytes | None]]) -> bytes:
    """An Atom feed; each entry is (id, link href or None, embedded alert or None)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
             "<id>urn:uuid:canhbao-laichau</id><title>Cảnh báo thiên tai</title>",
             "<updated>2026-11-24T08:00:00+07:00</updated>"]
    for ident, href, embedded in entries:
        parts.append(f"<entry><id>{escape(ident)}</id><title>{escape(ident)}</title>"
                     "<updated>2026-11-24T08:00:00+07:00</updated>")
        if href is not None:
            parts.append('<link rel="alternate" type="application/cap+xml" '
                         f'href="{escape(href)}"/>')
        if embedded is not None:
            body = embedded.decode().split("?>", 1)[1]
            parts.append(f'<content type="application/cap+xml">{body}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts).encode()


def rss(links: list[str]) -> bytes:
    items = "".join(f"<item><title>{escape(u)}</title><link>{escape(u)}</link>"
                    f"<guid>{escape(u)}</guid></item>" for u in links)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>CAP</title>{items}</channel></rss>").encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier>
<sender>x</sender><sent>2026-11-24T08:00:00+07:00</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope></alert>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier>
<sender>x</sender><sent>2026-11-24T08:00:00+07:00</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope></alert>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/evil.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier></alert>
"""


class FeedServer:
    """A real HTTP server on 127.0.0.1 serving ``docs`` (path → bytes), changeable live.

    It sends an ETag and answers 304 to a matching If-None-Match, as feed servers do.
    """

    def __init__(self) -> None:
        self.docs: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.not_modified: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits.append(self.path)
                body = server.docs.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    server.not_modified.append(self.path)
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


# --- the builders give what the specification says ------------------------------------
