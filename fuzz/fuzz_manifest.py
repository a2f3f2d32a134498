"""Fuzz the manifest path: bytes from the network → DSSE envelope → signature → manifest.

Each input is used twice, as ``SyncEngine._process`` would see it:

1. as the envelope the source answered (decoded with ``errors="replace"`` and encoded
   again, as the engine stores it): ``dsse.verify`` against the harness's trusted key,
   then, if a signature holds (a seed envelope whose signed part survived the
   mutation), ``manifest.parse`` of the payload;
2. as the payload of an envelope signed by the trusted key, so that the fuzzer reaches
   the manifest parser and validator behind the signature check: the round trip must
   give the same bytes back, then ``manifest.parse``.

Contract: ``dsse.EnvelopeError`` and ``manifest.ManifestError`` with one line are the
only errors; an accepted manifest has the fields the engine reads next. Anything else
escaping is a defect (atheris reports it and writes the input).

Seeds: the demo manifest as ``eboard publish`` builds it (assets/demo/playlist.toml,
signed by the harness key), as envelope and as body, and a manifest using every field.
"""

from __future__ import annotations

import hashlib
import json

import atheris
from _harness import ROOT, main, one_line

with atheris.instrument_imports(include=["content_sync.protocol"]):
    from content_sync.protocol import dsse, manifest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

# A fixed key, so that the envelopes kept in a corpus stay signed from one run to the next.
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"eboard fuzz manifest").digest())
TRUSTED = [KEY.public_key()]


def check_manifest(body: bytes) -> None:
    try:
        m = manifest.parse(body)
    except manifest.ManifestError as e:
        one_line(e)
        return
    # what SyncEngine._process reads before any download
    assert isinstance(m.board, str) and m.version >= 1
    m.issued_at.isoformat()
    for pl in m.playlists:
        for item in pl.items:
            assert item.media is None or item.media in m.media
            # what goes on to SQLite, the heartbeat and the log must be UTF-8-encodable
            for text in (pl.id, pl.title, item.id, item.title, item.body):
                (text or "").encode("utf-8")


def test_one_input(data: bytes) -> None:
    wire = data.decode("utf-8", errors="replace").encode("utf-8")
    try:
        verified = dsse.verify(wire, TRUSTED)
    except dsse.EnvelopeError as e:
        one_line(e)
    else:
        check_manifest(verified.body)
    verified = dsse.verify(dsse.sign(data, KEY), TRUSTED)
    assert verified.body == data
    check_manifest(data)


def every_field() -> bytes:
    sha = hashlib.sha256(b"x").hexdigest()
    return json.dumps({
        "format": manifest.FORMAT, "board": "laichau.muongte.pavesu-01", "version": 7,
        "issued_at": "2026-11-24T08:00:00+07:00",
        "media": {sha: {"size": 1234, "type": "image/png"}},
        "playlists": [{
            "id": "lu-quet", "title": "Cảnh báo lũ quét", "priority": "emergency",
            "risk_level": 4,
            "schedule": {"start": "2026-11-24T00:00:00+07:00", "end": "2026-12-01T00:00:00Z",
                         "days": [1, 3, 5], "times": [["06:00", "11:30"], ["13:00", "24:00"]]},
            "items": [
                {"id": "anh", "type": "image", "media": sha, "duration": 6.5},
                {"id": "tb", "type": "text", "title": "THÔNG BÁO", "body": "Họp dân",
                 "instructions": "Di chuyển ngay", "valid_from": "2026-11-24T08:00:00+07:00",
                 "valid_until": "2026-11-25T08:00:00+07:00"},
            ],
        }],
        "ticker": [{"id": "t1", "text": "Đường dây nóng: 1900 9095",
                    "valid_until": "2026-11-30T23:59:59+07:00"}],
        "x-future": {"ignored": [1, 2.5, None, True]},
    }, ensure_ascii=False, indent=1).encode("utf-8")


def seeds() -> dict[str, bytes]:
    from content_sync.publish.build import prepare

    pub = prepare(ROOT / "assets" / "demo" / "playlist.toml", "demo.board-01", KEY)
    full = every_field()
    return {
        "demo-envelope.json": pub.envelope,
        "demo-manifest.json": pub.manifest,
        "every-field-envelope.json": dsse.sign(full, KEY),
        "every-field-manifest.json": full,
    }


if __name__ == "__main__":
    main("manifest", test_one_input, seeds)
