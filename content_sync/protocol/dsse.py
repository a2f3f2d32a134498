"""DSSE envelopes (Dead Simple Signing Envelope) signed with Ed25519.

PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body, and the
signature is over the PAE bytes. A keyid is the SHA-256 of the raw public key.
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
    """Return the payload if some signature is valid by a trusted key, else raise."""
    try:
        env = json.loads(envelope_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # [[[[… nested too deep
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
    try:
        body = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("envelope payload is not valid base64") from None
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
