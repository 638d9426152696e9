"""The ticket store's schema: SQLAlchemy Core tables for SQLite and PostgreSQL, and the
migrations that create or upgrade it (recorded in ``schema_version``).

Every statement the store runs is built from these tables; no SQL text repeats them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "metadata",
    "processed_events",
    "questions",
    "schema_version",
    "ticket_events",
    "tickets",
    "utc",
    "when",
]


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite (which has no time zones) stores them naive."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else utc(value)


def when() -> _UTCDateTime:
    """An aware-UTC timestamp column type."""
    return _UTCDateTime(timezone=True)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", when(), nullable=False),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("requester", sa.String, nullable=False),
    sa.Column("team", sa.String),
    sa.Column("channel", sa.String),
    sa.Column("thread_ts", sa.String),
    sa.Column("message_ts", sa.String),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("candidates", sa.JSON, nullable=False),
    sa.Column("entry", sa.String),
    sa.Column("reason", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("assignee", sa.String),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("triage_channel", sa.String),
    sa.Column("triage_ts", sa.String),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String, unique=True),
    sa.Column("post_lease_owner", sa.String),
    sa.Column("post_lease_until", when()),
    sa.Column("created_at", when(), nullable=False),
    sa.Column("updated_at", when(), nullable=False),
    sqlite_autoincrement=True,  # never reuse a number, so FAQ-<n> stays unique
)
# One unresolved ticket per thread, enforced by the database so that two processes racing
# on the same thread cannot both open one (the loser retries and adds a follow-up).
_UNRESOLVED = sa.text("status <> 'resolved'")
sa.Index(
    "ux_tickets_unresolved_thread",
    tickets.c.channel,
    tickets.c.thread_ts,
    unique=True,
    sqlite_where=_UNRESOLVED,
    postgresql_where=_UNRESOLVED,
)
sa.Index("ix_tickets_thread", tickets.c.channel, tickets.c.thread_ts)
sa.Index("ix_tickets_triage", tickets.c.triage_channel, tickets.c.triage_ts)
sa.Index("ix_tickets_status", tickets.c.status)

ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("tickets.number"), nullable=False, index=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("actor", sa.String),
    sa.Column("text", sa.Text),
    sa.Column("at", when(), nullable=False),
    # A follow-up's dedupe key: the same Slack delivery twice adds one follow-up.
    sa.Column("dedupe_key", sa.String, unique=True),
)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("at", when(), nullable=False),
)

questions = sa.Table(
    "questions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", when(), nullable=False, index=True),
    sa.Column("requester", sa.String),
    sa.Column("channel", sa.String),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("entry", sa.String),
    sa.Column("score", sa.Float),
    sa.Column("reason", sa.String),
    sa.Column("feedback", sa.String),
    # the entry the asker picked from a "Did you mean…" (a clarified question)
    sa.Column("picked", sa.String),
)


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def migrate(conn: sa.Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return migrate


def _add_column(table: sa.Table, name: str) -> Callable[[sa.Connection], None]:
    """ALTER ``table`` to add its column ``name``, unless it has it already (a table created
    after the column was defined)."""

    def migrate(conn: sa.Connection) -> None:
        if any(c["name"] == name for c in sa.inspect(conn).get_columns(table.name)):
            return
        column = table.c[name]
        type_ = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {type_}"))

    return migrate


# Applied in order, each once, recorded in ``schema_version``. Append new steps; never edit an
# old one. A step that changes an existing table must ALTER it (and check first: a database
# built from scratch gets today's table definitions from the earlier ``_create`` steps).
MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (
    _create(tickets, ticket_events, processed_events),  # 1
    _create(questions),  # 2
    _add_column(questions, "picked"),  # 3
)
SCHEMA_VERSION = len(MIGRATIONS)
