"""The server's store: one interface (SQLAlchemy Core), two engines (SQLite, PostgreSQL),
schema migrations by Alembic."""

from content_sync.server.store import ops
from content_sync.server.store.kinds import CommandState, Engine, EventType
from content_sync.server.store.ops import NOTIFY_CHANNEL, now_iso
from content_sync.server.store.store import AsyncStore, Record, Store

__all__ = ["NOTIFY_CHANNEL", "AsyncStore", "CommandState", "Engine", "EventType", "Record",
           "Store", "now_iso", "ops"]
