"""The one shared SQLite database of the box: the only contract between the two processes.

``store`` holds manifests, media, meta, proof of play and the outbox; ``status_schema`` the
status side's tables; ``player_requests`` what the sync side asks of the player (and back);
``damaged`` media the player could not show; ``rows`` the typed rows of the ``status``
table (what each process says of itself). Never imports HTTP.
"""

from content_sync.db import damaged, player_requests, rows, status_schema, store
from content_sync.db.player_requests import screenshot_path
from content_sync.db.rows import (
    CapStatus,
    HeartbeatDelivery,
    PlayerClock,
    PlayerScreen,
    PlayerStatus,
    PlayingNow,
    SyncStatus,
)
from content_sync.db.store import media_path, partial_dir, transaction

__all__ = [
    "CapStatus", "HeartbeatDelivery", "PlayerClock", "PlayerScreen", "PlayerStatus",
    "PlayingNow", "SyncStatus", "damaged", "media_path", "partial_dir", "player_requests",
    "rows", "screenshot_path", "status_schema", "store", "transaction",
]
