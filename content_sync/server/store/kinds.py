"""Names of the store's kinds, said once."""

from __future__ import annotations

import enum


class Engine(enum.StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    ANSWERED = "answered"
    EXPIRED = "expired"
    EXPIRED_UNANSWERED = "expired_unanswered"


class EventType(enum.StrEnum):
    MANIFEST = "manifest"
    COMMAND = "command"
