"""The server's tables, declared once (SQLAlchemy Core) for both engines.

This is the schema at the newest migration (``migrations/versions``); the migrations
are what create it. Timestamps are ISO-8601 UTC text, as the boards send them and as
the first release stored them, so they sort and compare as text on either engine.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

# SQLite keeps its INTEGER PRIMARY KEY AUTOINCREMENT (ids never reused: a board's
# events cursor stays valid); PostgreSQL gets a bigint identity.
_ID = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("board", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("at", Text, nullable=False),
    # the same manifest version offered twice (a PUT and the folder watcher, or two
    # server processes watching one folder) is one event
    Column("dedup", Text),
    Index("events_board", "board", "id"),
    Index("events_dedup", "board", "dedup", unique=True),
    sqlite_autoincrement=True,
)

heartbeats = Table(
    "heartbeats", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("board", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Column("data", Text, nullable=False),
    Index("heartbeats_board", "board", "id"),
    Index("heartbeats_received", "received_at"),
    sqlite_autoincrement=True,
)

boards = Table(
    "boards", metadata,
    Column("board", Text, primary_key=True),
    Column("last_seen", Text),
    Column("last_status", Text),
)

commands = Table(
    "commands", metadata,
    Column("id", Text, primary_key=True),
    Column("board", Text, nullable=False),
    Column("command", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("delivered_at", Text),
    Column("result", Text),
    Index("commands_board", "board", "created_at"),
)

plays = Table(
    "plays", metadata,
    Column("id", Text, primary_key=True),
    Column("board", Text, nullable=False),
    Column("item_id", Text),
    Column("playlist_id", Text),
    Column("manifest_version", BigInteger),
    Column("started_at", Text),
    Column("ended_at", Text),
    Column("duration_s", Float),
    Column("outcome", Text),
    Column("detail", Text),
    Column("received_at", Text, nullable=False),
    Index("plays_board", "board", "started_at"),
)

play_counts = Table(
    "play_counts", metadata,
    Column("id", Text, primary_key=True),
    Column("board", Text, nullable=False),
    Column("day", Text),
    Column("playlist_id", Text),
    Column("item_id", Text),
    Column("outcome", Text),
    Column("plays", Integer),
    Column("seconds", Float),
    Column("first_started", Text),
    Column("last_ended", Text),
    Column("received_at", Text, nullable=False),
    Index("play_counts_board", "board", "day"),
)

screenshots = Table(
    "screenshots", metadata,
    Column("board", Text, primary_key=True),
    Column("received_at", Text, nullable=False),
    Column("size", Integer),
)
