"""The reference source server: the other half of the eboard/1 protocol.

An asynchronous (ASGI) server: the static part from a published folder (any web
server could serve it); the dynamic part — heartbeats, the events long-poll, proof of
play, screenshots, operator uploads and commands — backed by a store on SQLite or
PostgreSQL. Needs the ``server`` extra (``pip install 'eboard[server]'``).
"""

from content_sync.server.app import SourceServer, create_app
from content_sync.server.serving import listening_socket, make_server, serve
from content_sync.server.store import Store
from content_sync.server.tokens import Tokens, load_tokens, new_token

__all__ = ["SourceServer", "Store", "Tokens", "create_app", "load_tokens", "new_token",
           "listening_socket", "make_server", "serve"]
