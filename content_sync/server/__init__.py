"""The reference source server: the other half of the eboard/1 protocol.

Static part from a published folder (any web server could serve it); dynamic
part (status, events long-poll, operator uploads) backed by SQLite.
"""

from content_sync.server.app import create_app, serve

__all__ = ["create_app", "serve"]
