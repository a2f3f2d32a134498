"""The server at scale: one event per offered manifest version, indexes for pruning.

``events.dedup`` makes "manifest version N offered to board B" one row however many
writers notice it (a PUT, the folder watcher, several server processes); heartbeats
are pruned by age (``received_at``); play counts are read per board and day.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("dedup", sa.Text))
    op.create_index("events_dedup", "events", ["board", "dedup"], unique=True)
    op.create_index("heartbeats_received", "heartbeats", ["received_at"])
    op.create_index("play_counts_board", "play_counts", ["board", "day"])


def downgrade() -> None:
    op.drop_index("play_counts_board", "play_counts")
    op.drop_index("heartbeats_received", "heartbeats")
    op.drop_index("events_dedup", "events")
    op.drop_column("events", "dedup")
