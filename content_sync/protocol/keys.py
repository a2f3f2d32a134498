"""Ed25519 key files: generate a pair, load private and public keys."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

PRIVATE_NAME = "eboard-signing.key"
PUBLIC_NAME = "eboard-signing.pub"


class KeyFileError(Exception):
    """A key file is missing or is not an Ed25519 key."""


def generate(out_dir: Path, force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair into ``out_dir``: private (0600) and public PEM."""
    out_dir.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    if priv_path.exists() and not force:
        raise KeyFileError(f"{priv_path} already exists; use --force to replace it")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = priv_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(tmp, 0o600)
    os.replace(tmp, priv_path)
    pub_path.write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return priv_path, pub_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError(
            f"signing key {path} not found; make one with 'eboard keys generate'"
        ) from None
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(
            f"trusted key {path} not found; copy the publisher's .pub file there "
            "or fix source.trusted_keys"
        ) from None
    except ValueError as e:
        raise KeyFileError(f"trusted key {path} is not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"trusted key {path} is not an Ed25519 key")
    return key


def load_trusted(paths: list[str]) -> list[Ed25519PublicKey]:
    return [load_public(Path(p)) for p in paths]
