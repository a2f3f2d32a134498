"""Helpers for the sync tests: signed source folders, configs, real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from content_sync.protocol import dsse, keys
from kiosk_config import Config, load_config

BOARD = "test.board-01"
ISSUED = "2026-11-24T08:00:00+07:00"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_keys(d: Path) -> tuple[Ed25519PrivateKey, Path]:
    priv, pub = keys.generate(d)
    return keys.load_private(priv), pub


def png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small PNG whose bytes differ per seed."""
    rnd = random.Random(seed)
    im = Image.new("RGB", size, (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    im.putpixel((0, 0), (seed % 256, (seed >> 8) % 256, 7))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def big_bmp(seed: int, side: int) -> bytes:
    """An incompressible BMP of about side × side × 3 bytes."""
    im = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "BMP")
    return buf.getvalue()


def noise(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


_video_cache: dict[str, bytes] = {}


def mp4() -> bytes:
    """A one-second H.264 clip made with ffmpeg (cached for the session)."""
    if "mp4" not in _video_cache:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"eboard-test-{os.getpid()}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             "testsrc=size=160x120:rate=10:duration=1", "-pix_fmt", "yuv420p",
             "-c:v", "libx264", str(out)], check=True)
        _video_cache["mp4"] = out.read_bytes()
        out.unlink()
    return _video_cache["mp4"]


@dataclass
class Publisher:
    """Writes a source folder: ``media/{sha256}`` and a signed ``boards/{id}/manifest.json``."""

    root: Path
    key: Ed25519PrivateKey
    board: str = BOARD

    def add_media(self, data: bytes) -> str:
        h = sha256(data)
        (self.root / "media").mkdir(parents=True, exist_ok=True)
        (self.root / "media" / h).write_bytes(data)
        return h

    def manifest(self, version: int, media: dict[str, tuple[bytes, str]] | None = None,
                 board: str | None = None, **extra: Any) -> dict[str, Any]:
        """A manifest dict with one playlist: an item per media (name → (bytes, type))."""
        entries: dict[str, Any] = {}
        items: list[dict[str, Any]] = [{"id": "tb-1", "type": "text", "title": "THÔNG BÁO",
                                        "body": "Lịch tiêm chủng", "duration": 10}]
        for name, (data, mtype) in (media or {}).items():
            h = self.add_media(data)
            entries[h] = {"size": len(data), "type": mtype}
            items.append({"id": name, "type": mtype.split("/")[0], "media": h, "duration": 5})
        body: dict[str, Any] = {
            "format": "eboard.manifest/1", "board": board or self.board, "version": version,
            "issued_at": ISSUED, "media": entries,
            "playlists": [{"id": "pl-1", "title": "Thông báo", "items": items}],
        }
        body.update(extra)
        return body

    def write(self, body: dict[str, Any] | bytes, key: Ed25519PrivateKey | None = None,
              board: str | None = None) -> Path:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        path = self.root / "boards" / (board or self.board) / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(dsse.sign(raw, key or self.key))
        os.replace(tmp, path)
        return path

    def publish(self, version: int, media: dict[str, tuple[bytes, str]] | None = None,
                **extra: Any) -> dict[str, Any]:
        body = self.manifest(version, media, **extra)
        self.write(body)
        return body


def write_config(d: Path, url: str, trusted: list[Path], cache_dir: Path | None = None,
                 board: str = BOARD, **source: Any) -> Config:
    """A config file in ``d`` (TOML), loaded through the real layered loader."""
    src = {"url": url, "trusted_keys": [str(p) for p in trusted], "poll_interval": 5,
           "connect_timeout": 2.0, "read_timeout": 5.0, **source}
    cache = {"dir": str(cache_dir or d / "cache")}
    if "quota_mb" in source:
        cache["quota_mb"] = src.pop("quota_mb")
    lines = [f'[board]\nid = "{board}"\n', "[source]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in src.items()]
    lines += ["", "[cache]"] + [f"{k} = {json.dumps(v)}" for k, v in cache.items()]
    path = d / "eboard.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path)


# --- servers ---------------------------------------------------------------------------------

@dataclass
class Hit:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    sent: int


@dataclass
class ServerLog:
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def paths(self, prefix: str = "") -> list[str]:
        return [h.path for h in self.hits if h.path.startswith(prefix)]

    def clear(self) -> None:
        with self.lock:
            self.hits.clear()


@dataclass
class Served:
    url: str
    log: ServerLog
    port: int


@contextmanager
def serve_wsgi(app: Callable[..., Any], date: str | None = None,
               port: int = 0) -> Iterator[Served]:
    """Serve a WSGI app on 127.0.0.1; ``date`` replaces the server's Date header."""

    class Handler(WSGIRequestHandler):
        def date_time_string(self, timestamp: float | None = None) -> str:
            return date or super().date_time_string(timestamp)

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=Handler)
    port = server.server_port
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield Served(f"http://127.0.0.1:{port}/", getattr(app, "log", ServerLog()), port)
    finally:
        server.shutdown()
        server.server_close()


class StaticApp:
    """Serves a source folder with ETag, Last-Modified and Range (werkzeug), logging hits.

    ``hook(request)`` may return a Response to misbehave on purpose.
    """

    def __init__(self, root: Path, hook: Callable[[Request], Response | None] | None = None
                 ) -> None:
        self.root = root
        self.hook = hook
        self.log = ServerLog()
        self.extra_headers: dict[str, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.utils import send_file

        req = Request(environ)
        resp = self.hook(req) if self.hook else None
        if resp is None:
            rel = req.path.lstrip("/")
            path = (self.root / rel).resolve()
            if ".." in rel.split("/") or not path.is_file() or \
                    not str(path).startswith(str(self.root.resolve())):
                resp = Response("not found\n", 404)
            else:
                resp = send_file(str(path), environ, conditional=True, etag=True,
                                 max_age=None)
                resp.direct_passthrough = False
        body = resp.get_data()
        self.log.add(Hit(req.method, req.path, resp.status_code, dict(req.headers), len(body)))
        resp.set_data(body)
        resp.headers.update(self.extra_headers)
        return resp(environ, start_response)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, step: float = 0.1) -> bool:
    """Poll ``cond`` until true or ``timeout`` (a test's patience, not a timing assertion)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


# --- a raw server that misbehaves on purpose ----------------------------------------------
# A real HTTP server on 127.0.0.1 that misbehaves on purpose, per request.
#
# Files are served from a dict; each path has a plan: a list of behaviours used by
# successive requests (the last one repeats). Behaviours:
#
# - ``ok``: 200, or 206 for ``Range: bytes=N-`` (honouring ``If-Range`` against the ETag)
# - ``cut:F``: send headers for the whole body, then only the fraction F of it, and close
# - ``short_cl``: Content-Length 100 bytes above the body; send the body and close
# - ``small_cl``: Content-Length 100 bytes below the body; send the whole body and close
# - ``status:N``: answer HTTP N with a tiny body
# - ``drip:N``: send N bytes every 0.2 s
# - ``redirect:URL``: 302 to URL + the request path
# - ``norange``: 200 with the whole body, ignoring Range
# - ``wrong``: like ``ok`` but the first byte flipped, under the same ETag
#
# Any request whose ``If-None-Match`` is the path's ETag gets 304, as from a web server.


@dataclass
class RawRequest:
    path: str
    headers: dict[str, str]
    behaviour: str
    sent: int = 0


@dataclass
class Plan:
    files: dict[str, bytes] = field(default_factory=dict)
    plans: dict[str, list[str]] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    requests: list[RawRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, path: str) -> str:
        with self.lock:
            plan = self.plans.get(path, ["ok"])
            return plan.pop(0) if len(plan) > 1 else plan[0]

    def sent(self, path: str | None = None) -> int:
        return sum(r.sent for r in self.requests if path is None or r.path == path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    plan: Plan

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        behaviour = self.plan.next(path)
        req = RawRequest(path, dict(self.headers), behaviour)
        with self.plan.lock:
            self.plan.requests.append(req)
        body = self.plan.files.get(path)
        kind, _, arg = behaviour.partition(":")
        if kind == "status":
            return self._simple(int(arg), b"oops\n")
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", arg.rstrip("/") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if body is None:
            return self._simple(404, b"not found\n")
        etag = self.plan.etags.get(path, '"v1"')
        if self.headers.get("If-None-Match") == etag:  # as a web server does
            return self._simple(304, b"")
        if kind == "wrong":  # corrupted on the way (a proxy, a CDN edge), same validator
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        start = 0
        rng = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if kind != "norange" and rng.startswith("bytes=") and rng.endswith("-") and (
                if_range is None or if_range == etag):
            start = int(rng[6:-1])
        part = body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        extra = {"short_cl": 100, "small_cl": -100}.get(kind, 0)
        self.send_header("Content-Length", str(len(part) + extra))
        if kind in ("cut", "short_cl", "small_cl", "drip"):
            self.send_header("Connection", "close")
        self.end_headers()
        if kind == "cut":
            part = part[: int(len(part) * float(arg))]
        try:
            if kind == "drip":
                n = int(arg)
                for i in range(0, len(part), n):
                    self.wfile.write(part[i:i + n])
                    self.wfile.flush()
                    req.sent += len(part[i:i + n])
                    time.sleep(0.2)
            else:
                self.wfile.write(part)
                req.sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if kind in ("cut", "short_cl", "small_cl", "drip"):
            self.close_connection = True
        return None

    def _simple(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def self_signed(d: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem): a private CA of one."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eboard test source")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


@contextmanager
def misbehaving(plan: Plan, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """Serve ``plan`` on 127.0.0.1 (https with ``tls`` = (cert, key)); yield the base URL."""
    import ssl

    handler = type("PlanHandler", (Handler,), {"plan": plan})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
