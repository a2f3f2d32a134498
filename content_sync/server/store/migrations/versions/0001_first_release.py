"""The server database as the first release (v0.1.0) made it.

A ``server.db`` written by that release has these tables and no ``alembic_version``:
``store.migrate`` stamps it at this revision instead of running it.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sqlite_autoincrement=True)
    op.create_index("events_board", "events", ["board", "id"])
    op.create_table(
        "heartbeats",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sqlite_autoincrement=True)
    op.create_index("heartbeats_board", "heartbeats", ["board", "id"])
    op.create_table(
        "boards",
        sa.Column("board", sa.Text, primary_key=True),
        sa.Column("last_seen", sa.Text),
        sa.Column("last_status", sa.Text))
    op.create_table(
        "commands",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.Text),
        sa.Column("result", sa.Text))
    op.create_index("commands_board", "commands", ["board", "created_at"])
    op.create_table(
        "plays",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("item_id", sa.Text),
        sa.Column("playlist_id", sa.Text),
        sa.Column("manifest_version", sa.BigInteger),
        sa.Column("started_at", sa.Text),
        sa.Column("ended_at", sa.Text),
        sa.Column("duration_s", sa.Float),
        sa.Column("outcome", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("received_at", sa.Text, nullable=False))
    op.create_index("plays_board", "plays", ["board", "started_at"])
    op.create_table(
        "play_counts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("day", sa.Text),
        sa.Column("playlist_id", sa.Text),
        sa.Column("item_id", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("plays", sa.Integer),
        sa.Column("seconds", sa.Float),
        sa.Column("first_started", sa.Text),
        sa.Column("last_ended", sa.Text),
        sa.Column("received_at", sa.Text, nullable=False))
    op.create_table(
        "screenshots",
        sa.Column("board", sa.Text, primary_key=True),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("size", sa.Integer))


def downgrade() -> None:
    for table in ("screenshots", "play_counts", "plays", "commands", "boards", "heartbeats",
                  "events"):
        op.drop_table(table)
