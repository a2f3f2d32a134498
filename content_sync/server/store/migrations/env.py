"""Alembic's environment for the server's store: always run by ``store.migrate`` on a
connection it opened (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

from content_sync.server.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
