"""Support tickets: the record, the store, and the workflow staff and requesters drive.

- :mod:`bot.tickets.model`: ``Ticket``, ``NewTicket``, ``LoggedQuestion``, ``Intake`` and the
  ``TicketStore`` protocol;
- :mod:`bot.tickets.schema`: the tables and their migrations;
- :mod:`bot.tickets.store`: ``SqlTicketStore``, the one implementation, on SQLite (a file, or
  ``sqlite://`` in memory) or PostgreSQL, through SQLAlchemy Core;
- :mod:`bot.tickets.workflow`: taking, resolving, reopening and answering a ticket, with a
  small notifier interface the Slack side implements.

``open_store(url)`` opens the store. Every store method raises :class:`bot.errors.StoreError`
when the database cannot be reached.
"""

from __future__ import annotations

from bot.tickets.model import (
    CLI_ACTOR,
    REASONS,
    STATUSES,
    Intake,
    LoggedQuestion,
    NewTicket,
    Origin,
    PostingLease,
    Ticket,
    TicketEvent,
    TicketStore,
    UnknownTicketError,
    format_ticket_id,
    parse_ticket_id,
)
from bot.tickets.schema import SCHEMA_VERSION
from bot.tickets.store import SqlTicketStore

__all__ = [
    "CLI_ACTOR",
    "REASONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Intake",
    "LoggedQuestion",
    "NewTicket",
    "Origin",
    "PostingLease",
    "SqlTicketStore",
    "Ticket",
    "TicketEvent",
    "TicketStore",
    "UnknownTicketError",
    "format_ticket_id",
    "open_store",
    "parse_ticket_id",
]

#: ``memory://`` (accepted since the in-memory store was a class of its own) is SQLite in memory.
_MEMORY = "memory:"


def open_store(url: str) -> TicketStore:
    """The store for ``url``: ``sqlite:///path``, ``sqlite://`` or ``memory://`` (in memory,
    gone when closed), or ``postgresql://…``.

    Raises:
        StoreError: the database cannot be reached, or the URL is not one of those.
    """
    if url.strip().startswith(_MEMORY):
        url = "sqlite://"
    return SqlTicketStore(url)
