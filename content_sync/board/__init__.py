"""The board's sync pipeline: a source (http(s) or file://), the manifest fetched and
verified, media downloaded, checked and made durable, the manifest activated; the cache,
repair of damaged media, the interim manifest for emergencies, and the events long-poll
that brings a publish at once."""

from content_sync.board import cache
from content_sync.board.engine import Engine, SyncResult, SyncState, sync_lock
from content_sync.board.events_channel import ChannelState, EventsChannel
from content_sync.board.source import Source, SourceError, SourceUnreachable, open_source

__all__ = [
    "ChannelState", "Engine", "EventsChannel", "Source", "SourceError", "SourceUnreachable",
    "SyncResult", "SyncState", "cache", "open_source", "sync_lock",
]
