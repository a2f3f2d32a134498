"""The reference source server: the other half of the eboard/1 protocol.

Static part from a published folder (any web server could serve it); dynamic
part (status, events long-poll, operator uploads) backed by SQLite.
"""

from content_sync.server.app import create_app, serve
from content_sync.server.tokens import new_token

__all__ = ["create_app", "new_token", "serve"]
