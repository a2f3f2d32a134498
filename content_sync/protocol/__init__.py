"""The eboard/1 protocol, pure: the manifest's typed values, DSSE envelopes, Ed25519 keys.

No I/O beyond reading key files; imported by both processes and the server.
"""

from content_sync.protocol import dsse, keys, manifest
from content_sync.protocol.keys import PRIVATE_NAME, PUBLIC_NAME, KeyFileError
from content_sync.protocol.keys import generate as generate_keys
from content_sync.protocol.keys import load_private as load_private_key
from content_sync.protocol.keys import load_trusted as load_trusted_keys
from content_sync.protocol.manifest import (
    ALLOWED_TYPES,
    FORMAT,
    KIND_RULES,
    MEDIA_KINDS,
    SHA256_RE,
    Item,
    ItemKind,
    KindRule,
    Manifest,
    ManifestError,
    MediaInfo,
    Playlist,
    SkippedItem,
)
from content_sync.protocol.manifest import parse as parse_manifest

__all__ = [
    "ALLOWED_TYPES", "FORMAT", "KIND_RULES", "MEDIA_KINDS", "PRIVATE_NAME", "PUBLIC_NAME",
    "SHA256_RE", "Item", "ItemKind", "KeyFileError", "KindRule", "Manifest", "ManifestError",
    "MediaInfo", "Playlist", "SkippedItem", "dsse", "generate_keys", "keys",
    "load_private_key", "load_trusted_keys", "manifest", "parse_manifest",
]
