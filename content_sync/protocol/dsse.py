"""DSSE envelopes (Dead Simple Signing Envelope) signed with Ed25519.

PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body, and the
signature is over the PAE bytes. A keyid is the SHA-256 of the raw public key.

An envelope arrives from anyone on the path, so what :func:`verify` does before a
signature is checked is bounded whatever the bytes: at most :data:`MAX_ENVELOPE_BYTES`
(so a payload of at most 3/4 of that), and the shape first: a DSSE envelope is one
object with a few short fields beside its base64 payload, which has no ``{``, ``[`` or
``,``, so more than :data:`MAX_MARKS` of those in the bytes is refused before any JSON is
parsed. What the parser builds then is a handful of values (each value but the first of
a container needs a comma, each container a bracket): a few times the envelope's size,
never the gigabyte that millions of tiny objects cost. The payload itself is parsed by
the caller only once a trusted key has signed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MANIFEST_TYPE = "application/vnd.eboard.manifest+json"
MAX_ENVELOPE_BYTES = 32 * 1024 * 1024  # a payload of 24 MB; 10,000 items take about 3 MB
MAX_SIGNATURES = 16
# '{', '[' and ',' in a whole envelope: 2 for the envelope and its list, 3 per signature
# (its object, its comma inside and the one after it), and a few for fields of later
# DSSE versions. The base64 payload has none.
MAX_MARKS = 16 + 3 * MAX_SIGNATURES


TrustedKeys = list[Ed25519PublicKey]  # the publishers' keys a board trusts


class EnvelopeError(Exception):
    """An envelope is malformed or carries no valid signature by a trusted key."""


def pae(payload_type: str, body: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def keyid(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(body: bytes, key: Ed25519PrivateKey, payload_type: str = MANIFEST_TYPE) -> bytes:
    """Wrap ``body`` in a signed envelope and return its JSON bytes."""
    sig = key.sign(pae(payload_type, body))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}
        ],
    }
    return json.dumps(envelope, indent=1).encode("utf-8")


@dataclass(frozen=True)
class Verified:
    body: bytes
    keyid: str


def verify(
    envelope_bytes: bytes,
    trusted: list[Ed25519PublicKey],
    payload_type: str = MANIFEST_TYPE,
) -> Verified:
    """Return the payload if some signature is valid by a trusted key, else raise.

    Bounded before the signature is checked (see the module's docstring)."""
    if len(envelope_bytes) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"envelope is {len(envelope_bytes) / 2**20:.1f} MB, more than the "
                            f"{MAX_ENVELOPE_BYTES >> 20} MB a board reads")
    marks = sum(envelope_bytes.count(c) for c in (b"{", b"[", b","))
    if marks > MAX_MARKS:
        raise EnvelopeError(
            f"envelope has {marks} braces, brackets and commas beside its payload, more than "
            f"the {MAX_MARKS} of a DSSE envelope with {MAX_SIGNATURES} signatures; not parsed")
    try:
        env = json.loads(envelope_bytes.decode("utf-8"))  # the text is dropped at once
    except UnicodeDecodeError:
        raise EnvelopeError("envelope is not UTF-8 text (JSON between systems is UTF-8, "
                            "RFC 8259)") from None
    except ValueError as e:
        raise EnvelopeError(f"envelope is not JSON ({e})") from None
    if not isinstance(env, dict):
        raise EnvelopeError("envelope is not a JSON object")
    if env.get("payloadType") != payload_type:
        raise EnvelopeError(
            f"envelope payloadType is {env.get('payloadType')!r}, expected {payload_type!r}"
        )
    payload = env.get("payload")
    sigs = env.get("signatures")
    if not isinstance(payload, str) or not isinstance(sigs, list) or not sigs:
        raise EnvelopeError("envelope lacks a payload string or a signatures list")
    if len(sigs) > MAX_SIGNATURES:
        raise EnvelopeError(f"envelope has {len(sigs)} signatures, more than the "
                            f"{MAX_SIGNATURES} a board tries")
    # One copy of a payload of up to 24 MB at a time: its text, its ASCII, its bytes.
    try:
        ascii_payload = payload.encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeError("envelope payload is not valid base64") from None
    del env, payload
    try:
        body = base64.b64decode(ascii_payload, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("envelope payload is not valid base64") from None
    del ascii_payload
    if not trusted:
        raise EnvelopeError("no trusted keys configured (source.trusted_keys is empty)")
    message = pae(payload_type, body)
    by_id = {keyid(k): k for k in trusted}
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
            continue
        try:
            raw_sig = base64.b64decode(s["sig"], validate=True)
        except (binascii.Error, ValueError):
            continue
        # The keyid is only a hint: try the named key first, then every trusted key.
        hinted = by_id.get(str(s.get("keyid", "")))
        for key in ([hinted] if hinted else []) + [k for k in trusted if k is not hinted]:
            try:
                key.verify(raw_sig, message)
            except InvalidSignature:
                continue
            return Verified(body=body, keyid=keyid(key))
    raise EnvelopeError(
        "no valid signature by a trusted key; check that source.trusted_keys holds "
        "the publisher's public key"
    )
