"""The board's sync pipeline: a source (http(s) or file://), the manifest fetched and
verified, media downloaded, checked and made durable, the manifest activated; the cache,
repair of damaged media and the interim manifest for emergencies."""

from content_sync.board import cache
from content_sync.board.engine import Engine, SyncResult, SyncState, sync_lock
from content_sync.board.source import Source, SourceError, SourceUnreachable, open_source

__all__ = [
    "Engine", "Source", "SourceError", "SourceUnreachable", "SyncResult", "SyncState", "cache",
    "open_source", "sync_lock",
]
