"""The eboard/1 protocol, pure: the manifest's typed values, DSSE envelopes, Ed25519 keys,
the heartbeat document (``status``) and the tolerant base of what crosses between releases.

No I/O beyond reading key files; imported by both processes and the server. The
signature half (``dsse``, ``keys``: the cryptography library, ~8 MB) loads on first use,
so the player, which never checks a signature, does not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from content_sync.protocol import manifest, status, tolerant
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
    version_ceiling,
)
from content_sync.protocol.manifest import parse as parse_manifest
from content_sync.protocol.status import FORMAT as STATUS_FORMAT
from content_sync.protocol.status import (
    CacheReport,
    ClockReport,
    CommandResult,
    DiskReport,
    DisplayReport,
    Emergency,
    Heartbeat,
    HeldClip,
    ManifestReport,
    MemoryReport,
    ModemReport,
    NetworkReport,
    OutboxReport,
    PlayerReport,
    Refusal,
    ScreenReport,
    ScreenshotReport,
    ScreenState,
    SyncReport,
)
from content_sync.protocol.tolerant import Tolerant

if TYPE_CHECKING:
    from content_sync.protocol import dsse, keys
    from content_sync.protocol.keys import PRIVATE_NAME, PUBLIC_NAME, KeyFileError
    from content_sync.protocol.keys import generate as generate_keys
    from content_sync.protocol.keys import load_private as load_private_key
    from content_sync.protocol.keys import load_trusted as load_trusted_keys

_LAZY = {  # name -> (module, attribute or "" for the module itself)
    "dsse": ("content_sync.protocol.dsse", ""),
    "keys": ("content_sync.protocol.keys", ""),
    "KeyFileError": ("content_sync.protocol.keys", "KeyFileError"),
    "PRIVATE_NAME": ("content_sync.protocol.keys", "PRIVATE_NAME"),
    "PUBLIC_NAME": ("content_sync.protocol.keys", "PUBLIC_NAME"),
    "generate_keys": ("content_sync.protocol.keys", "generate"),
    "load_private_key": ("content_sync.protocol.keys", "load_private"),
    "load_trusted_keys": ("content_sync.protocol.keys", "load_trusted"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    return getattr(value, attr) if attr else value

__all__ = [
    "ALLOWED_TYPES", "CacheReport", "ClockReport", "CommandResult", "DiskReport",
    "DisplayReport", "Emergency", "FORMAT", "Heartbeat", "HeldClip", "Item", "ItemKind",
    "KIND_RULES", "KeyFileError", "KindRule", "MEDIA_KINDS", "Manifest", "ManifestError",
    "ManifestReport", "MediaInfo", "MemoryReport", "ModemReport", "NetworkReport",
    "OutboxReport", "PRIVATE_NAME", "PUBLIC_NAME", "PlayerReport", "Playlist", "Refusal",
    "SHA256_RE", "STATUS_FORMAT", "ScreenReport", "ScreenState", "ScreenshotReport",
    "SkippedItem", "SyncReport", "Tolerant", "dsse", "generate_keys", "keys",
    "load_private_key", "load_trusted_keys", "manifest", "parse_manifest", "status",
    "tolerant", "version_ceiling",
]
