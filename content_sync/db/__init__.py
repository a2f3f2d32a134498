"""The one shared SQLite database of the box: the only contract between the two processes.

``schema`` declares every table and index once, with the migrations that bring a file of
an older release to it (``store.connect`` applies them); ``store`` holds manifests, media,
meta, proof of play and the outbox; ``play_outcome`` how a record of play ends;
``player_requests`` what the sync side asks of the player (and back); ``damaged`` media
the player could not show; ``rows`` the typed rows of the ``status`` table (what each
process says of itself). Never imports HTTP.
"""

from content_sync.db import damaged, play_outcome, player_requests, rows, schema, store
from content_sync.db.play_outcome import PlayOutcome
from content_sync.db.player_requests import screenshot_path
from content_sync.db.rows import (
    CapStatus,
    HeartbeatDelivery,
    PlayerClock,
    PlayerScreen,
    PlayerState,
    PlayerStatus,
    PlayingNow,
    SyncStatus,
)
from content_sync.db.schema import SchemaTooNew
from content_sync.db.store import media_path, partial_dir, transaction

__all__ = [
    "CapStatus", "HeartbeatDelivery", "PlayOutcome", "PlayerClock", "PlayerScreen",
    "PlayerState", "PlayerStatus", "PlayingNow", "SchemaTooNew", "SyncStatus", "damaged",
    "media_path", "partial_dir", "play_outcome", "player_requests", "rows", "schema",
    "screenshot_path", "store", "transaction",
]
