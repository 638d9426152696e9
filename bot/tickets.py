"""Support tickets: the record, the store interface, and its SQL and in-memory implementations.

The contract (``TicketStore``) is fixed here; ``SqlTicketStore`` (SQLite or PostgreSQL through
SQLAlchemy Core) and ``MemoryTicketStore`` (tests, ``faqbot ask``) implement it, and
``open_store(url)`` picks one. Every method raises :class:`bot.errors.StoreError` when the store
cannot be reached.

What must happen once happens once even across processes sharing one database: the database
decides (unique keys for deliveries, dedupe keys and a thread's unresolved ticket; conditional
UPDATEs for the right to post to triage), never a check in Python followed by a write.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import sqlalchemy as sa

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writers queue on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from bot.config import DEFAULT_DATABASE_URL
from bot.errors import StoreError

__all__ = [
    "CLI_ACTOR",
    "SCHEMA_VERSION",
    "Intake",
    "LoggedQuestion",
    "MemoryTicketStore",
    "NewTicket",
    "SqlTicketStore",
    "Ticket",
    "TicketEvent",
    "TicketStore",
    "UnknownTicketError",
    "format_ticket_id",
    "open_store",
    "parse_ticket_id",
]

Status = Literal["open", "in_progress", "resolved"]
STATUSES: tuple[str, ...] = ("open", "in_progress", "resolved")
REASONS: tuple[str, ...] = ("no_match", "cap_increase", "requested", "not_helpful")
TICKET_PREFIX = "FAQ-"
CLI_ACTOR = "cli"  # the actor of a change made with `faqbot tickets` (support at a terminal)


def format_ticket_id(number: int) -> str:
    return f"{TICKET_PREFIX}{number}"


def parse_ticket_id(text: str) -> int | None:
    """``"FAQ-42"``, ``"faq-42"`` or ``"42"`` → 42; anything else → None."""
    text = text.strip().upper()
    if text.startswith(TICKET_PREFIX):
        text = text[len(TICKET_PREFIX):]
    return int(text) if text.isdigit() and len(text) < 12 else None


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history: opened, follow_up, taken, resolved, reopened, reply…"""

    kind: str
    actor: str | None
    text: str | None
    at: datetime


@dataclass(frozen=True)
class NewTicket:
    """What is known when a ticket is opened."""

    requester: str  # Slack user id, or "cli:<name>" from faqbot chat
    question: str  # verbatim, unescaped: escape when posting
    reason: str  # one of REASONS
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None  # the requester's thread (where we reply)
    message_ts: str | None = None  # the requester's message (for the permalink)
    candidates: tuple[dict[str, Any], ...] = ()  # [{"entry", "question", "score"}] best first
    entry: str | None = None  # the entry answered with, when any (cap_increase)
    source: str = "slack"  # "slack" | "cli"
    dedupe_key: str | None = None  # e.g. the Slack event id: opening twice yields one ticket


@dataclass(frozen=True)
class Ticket:
    number: int
    requester: str
    question: str
    reason: str
    status: str
    created_at: datetime
    updated_at: datetime
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    candidates: tuple[dict[str, Any], ...] = ()
    entry: str | None = None
    source: str = "slack"
    assignee: str | None = None
    triage_channel: str | None = None
    triage_ts: str | None = None  # set once posted to the triage channel
    details: dict[str, str] = field(default_factory=dict)  # cap-increase form answers
    history: tuple[TicketEvent, ...] = ()

    @classmethod
    def opened(cls, number: int, new: NewTicket, at: datetime) -> Ticket:
        """The ticket ``new`` becomes when stored as ``number`` at ``at``."""
        return cls(
            number=number,
            requester=new.requester,
            question=new.question,
            reason=new.reason,
            status="open",
            created_at=at,
            updated_at=at,
            team=new.team,
            channel=new.channel,
            thread_ts=new.thread_ts,
            message_ts=new.message_ts,
            candidates=tuple(dict(c) for c in new.candidates),
            entry=new.entry,
            source=new.source,
            history=(TicketEvent("opened", new.requester, new.reason, at),),
        )

    @property
    def id(self) -> str:
        return format_ticket_id(self.number)

    @property
    def posted(self) -> bool:
        return self.triage_ts is not None

    def to_json(self) -> dict[str, Any]:
        """The ``faqbot tickets list --json`` object."""
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "requester": self.requester,
            "question": self.question,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "assignee": self.assignee,
            "team": self.team,
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "entry": self.entry,
            "candidates": list(self.candidates),
            "details": dict(self.details),
            "posted": self.posted,
        }


@dataclass(frozen=True)
class LoggedQuestion:
    """One line of the question log: a question and the bot's decision
    (:meth:`TicketStore.record_question`'s arguments)."""

    question: str
    action: str
    entry: str | None
    score: float | None
    reason: str | None
    requester: str | None = None
    channel: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Intake:
    """What :meth:`TicketStore.take_delivery` recorded."""

    claimed: bool  # False: the delivery was claimed before (a redelivery); nothing recorded
    question_id: int | None = None  # the logged question, when one was given
    ticket: Ticket | None = None  # the ticket opened (or the thread's, or the deduped one)
    ticket_created: bool = False


class UnknownTicketError(LookupError):
    """No ticket has that number."""

    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"no ticket {format_ticket_id(number)}")


class TicketStore(Protocol):
    """Durable tickets plus the bookkeeping that makes Slack deliveries idempotent."""

    def open_ticket(self, new: NewTicket) -> tuple[Ticket, bool]:
        """Store a ticket, committed before returning; ``(ticket, created)``.

        One open ticket per thread: when ``(channel, thread_ts)`` already has a ticket that is
        not resolved, the question is added to its history and ``created`` is False. The same
        ``dedupe_key`` twice returns the first ticket with ``created`` False.
        """

    def get(self, number: int) -> Ticket | None: ...

    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        """The newest ticket (any status) opened from that thread."""

    def find_by_triage(self, channel: str, ts: str) -> Ticket | None:
        """The ticket whose triage message is ``ts`` in ``channel``."""

    def list(
        self, *, status: str | None = None, requester: str | None = None, limit: int = 100
    ) -> builtins.list[Ticket]:
        """Newest first."""

    def set_status(
        self, number: int, status: str, *, actor: str | None, assignee: str | None = None
    ) -> Ticket:
        """Change status (and assignee when given), appending to the history.

        Setting the status (and assignee) a ticket already has changes nothing and adds no
        history. Raises :class:`UnknownTicketError` for an unknown number, ``ValueError`` for a
        status not in ``STATUSES``, and :class:`StoreError` when reopening a ticket whose thread
        already has another unresolved ticket.
        """

    def add_event(self, number: int, kind: str, *, actor: str | None, text: str | None) -> Ticket:
        """Append one line to the history (e.g. ``reply``); :class:`UnknownTicketError` if none."""

    def set_details(self, number: int, details: dict[str, str], *, actor: str | None) -> Ticket:
        """Merge ``details`` into the ticket's details (the history names the keys)."""

    def mark_posted(self, number: int, channel: str, ts: str) -> bool:
        """Record the triage message; False if it was already recorded (someone else posted)."""

    def claim_posting(self, number: int, worker: str, lease_seconds: float = 30) -> bool:
        """Take the right to post ticket ``number`` to triage for a while (exactly-once posting
        across threads and processes); False when another worker holds it or it is posted."""

    def pending(self, limit: int = 100) -> builtins.list[Ticket]:
        """Tickets not yet posted to triage, oldest first."""

    def claim_event(self, key: str) -> bool:
        """Record a processed Slack delivery (event id, or channel+ts); True only the first time."""

    def claim_events(self, keys: Sequence[str]) -> bool:
        """Claim several keys of one delivery at once: True only when none was claimed before
        (then all are recorded); otherwise nothing is recorded. One write for the lot."""

    def take_delivery(
        self,
        keys: Sequence[str],
        *,
        question: LoggedQuestion | None = None,
        ticket: NewTicket | None = None,
    ) -> Intake:
        """One Slack delivery in one transaction: claim ``keys`` (as :meth:`claim_events`) and,
        only when the claim is new, log ``question`` (as :meth:`record_question`) and open
        ``ticket`` (as :meth:`open_ticket`). All or nothing: a redelivery (a key claimed
        before) records nothing and returns ``Intake(claimed=False)``; a failure raises
        :class:`StoreError` with nothing recorded."""

    def record_question(
        self,
        *,
        question: str,
        action: str,
        entry: str | None,
        score: float | None,
        reason: str | None,
        requester: str | None = None,
        channel: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Log one question and the bot's decision (for "what did the FAQ not answer"); its id."""

    def set_feedback(self, question_id: int, feedback: str) -> None:
        """Attach the asker's feedback (e.g. ``helpful``) to a question; ``LookupError`` if none."""

    def questions(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        """Logged questions at or after ``since``, oldest first, as dicts.

        Keys: ``id``, ``at`` (aware UTC datetime), ``requester``, ``channel``, ``question``,
        ``action``, ``entry``, ``score``, ``reason``, ``feedback``.
        """

    def purge_questions(self, older_than: datetime) -> int:
        """Delete logged questions from before ``older_than``; how many were deleted."""

    def purge_events(self, older_than: datetime) -> int:
        """Forget delivery keys claimed before ``older_than`` (Slack retries within the hour);
        how many were deleted."""

    def close(self) -> None: ...


# -- shared helpers ---------------------------------------------------------------------------

_STATUS_EVENT = {"open": "reopened", "in_progress": "taken", "resolved": "resolved"}


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")


def _status_event(old: str, new: str, assignee: str | None) -> tuple[str, str]:
    """The history line (kind, text) for a change of status and/or assignee."""
    if old == new:
        return "assigned", f"assignee {assignee}"
    text = f"{old} -> {new}"
    if assignee:
        text += f" (assignee {assignee})"
    return _STATUS_EVENT[new], text


def _details_text(details: dict[str, str]) -> str:
    return "updated " + ", ".join(sorted(details))


def _unknown_question(question_id: int) -> LookupError:
    return LookupError(f"no logged question {question_id}")


def _reopen_conflict(number: int, other: int) -> StoreError:
    return StoreError(
        f"{format_ticket_id(number)} cannot be reopened: {format_ticket_id(other)} is already "
        "open in the same thread"
    )


# -- in memory --------------------------------------------------------------------------------


class MemoryTicketStore:
    """A :class:`TicketStore` in memory: thread-safe, same behaviour, gone when the process exits.

    Usage::

        store = MemoryTicketStore()
        new = NewTicket(requester="U1", question="Who can approve my app?", reason="no_match")
        ticket, created = store.open_ticket(new)
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tickets: dict[int, Ticket] = {}
        self._dedupe: dict[str, int] = {}  # ticket and follow-up dedupe keys -> ticket number
        self._leases: dict[int, tuple[str, datetime]] = {}
        self._events: dict[str, datetime] = {}  # claimed key -> when
        self._questions: dict[int, dict[str, Any]] = {}
        self._next_question = 1

    # tickets

    def open_ticket(self, new: NewTicket) -> tuple[Ticket, bool]:
        with self._lock:
            if new.dedupe_key is not None and new.dedupe_key in self._dedupe:
                return self._tickets[self._dedupe[new.dedupe_key]], False
            now = _now()
            existing = self._open_in_thread(new.channel, new.thread_ts)
            if existing is not None:
                number = existing.number
                ticket = self._append(number, "follow_up", new.requester, new.question, now)
                if new.dedupe_key is not None:
                    self._dedupe[new.dedupe_key] = ticket.number
                return ticket, False
            number = max(self._tickets, default=0) + 1
            ticket = Ticket.opened(number, new, now)
            self._tickets[number] = ticket
            if new.dedupe_key is not None:
                self._dedupe[new.dedupe_key] = number
            return ticket, True

    def get(self, number: int) -> Ticket | None:
        with self._lock:
            return self._tickets.get(number)

    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        with self._lock:
            found = [
                t for t in self._tickets.values()
                if t.channel == channel and t.thread_ts == thread_ts
            ]
            return max(found, key=lambda t: t.number, default=None)

    def find_by_triage(self, channel: str, ts: str) -> Ticket | None:
        with self._lock:
            for ticket in self._tickets.values():
                if ticket.triage_channel == channel and ticket.triage_ts == ts:
                    return ticket
            return None

    def list(
        self, *, status: str | None = None, requester: str | None = None, limit: int = 100
    ) -> builtins.list[Ticket]:
        with self._lock:
            found = [
                t for t in sorted(self._tickets.values(), key=lambda t: -t.number)
                if (status is None or t.status == status)
                and (requester is None or t.requester == requester)
            ]
            return found[: max(limit, 0)]

    def set_status(
        self, number: int, status: str, *, actor: str | None, assignee: str | None = None
    ) -> Ticket:
        _check_status(status)
        with self._lock:
            ticket = self._require(number)
            if ticket.status == status and (assignee is None or assignee == ticket.assignee):
                return ticket
            if ticket.status == "resolved" and status != "resolved":
                other = self._open_in_thread(ticket.channel, ticket.thread_ts)
                if other is not None:
                    raise _reopen_conflict(number, other.number)
            kind, text = _status_event(ticket.status, status, assignee)
            self._tickets[number] = replace(
                ticket, status=status, assignee=assignee or ticket.assignee
            )
            return self._append(number, kind, actor, text, _now())

    def add_event(self, number: int, kind: str, *, actor: str | None, text: str | None) -> Ticket:
        with self._lock:
            self._require(number)
            return self._append(number, kind, actor, text, _now())

    def set_details(self, number: int, details: dict[str, str], *, actor: str | None) -> Ticket:
        with self._lock:
            ticket = self._require(number)
            self._tickets[number] = replace(ticket, details={**ticket.details, **details})
            return self._append(number, "details", actor, _details_text(details), _now())

    # triage posting

    def mark_posted(self, number: int, channel: str, ts: str) -> bool:
        with self._lock:
            ticket = self._tickets.get(number)
            if ticket is None or ticket.triage_ts is not None:
                return False
            self._tickets[number] = replace(ticket, triage_channel=channel, triage_ts=ts)
            self._leases.pop(number, None)
            self._append(number, "posted", None, f"{channel} {ts}", _now())
            return True

    def claim_posting(self, number: int, worker: str, lease_seconds: float = 30) -> bool:
        with self._lock:
            ticket = self._tickets.get(number)
            if ticket is None or ticket.triage_ts is not None:
                return False
            now = _now()
            owner, until = self._leases.get(number, (worker, now))
            if owner != worker and until > now:
                return False
            self._leases[number] = (worker, now + timedelta(seconds=lease_seconds))
            return True

    def pending(self, limit: int = 100) -> builtins.list[Ticket]:
        with self._lock:
            found = sorted(
                (t for t in self._tickets.values() if t.triage_ts is None),
                key=lambda t: t.number,
            )
            return found[: max(limit, 0)]

    def claim_event(self, key: str) -> bool:
        return self.claim_events([key])

    def claim_events(self, keys: Sequence[str]) -> bool:
        with self._lock:
            if any(key in self._events for key in keys):
                return False
            now = _now()
            self._events.update(dict.fromkeys(keys, now))
            return True

    def take_delivery(
        self,
        keys: Sequence[str],
        *,
        question: LoggedQuestion | None = None,
        ticket: NewTicket | None = None,
    ) -> Intake:
        with self._lock:  # nothing in here can fail half-way
            if not self.claim_events(keys):
                return Intake(claimed=False)
            qid = self.record_question(**vars(question)) if question is not None else None
            if ticket is None:
                return Intake(claimed=True, question_id=qid)
            opened, created = self.open_ticket(ticket)
            return Intake(claimed=True, question_id=qid, ticket=opened, ticket_created=created)

    # question log

    def record_question(
        self,
        *,
        question: str,
        action: str,
        entry: str | None,
        score: float | None,
        reason: str | None,
        requester: str | None = None,
        channel: str | None = None,
        at: datetime | None = None,
    ) -> int:
        with self._lock:
            qid = self._next_question
            self._next_question += 1
            self._questions[qid] = {
                "id": qid,
                "at": _utc(at) if at is not None else _now(),
                "requester": requester,
                "channel": channel,
                "question": question,
                "action": action,
                "entry": entry,
                "score": score,
                "reason": reason,
                "feedback": None,
            }
            return qid

    def set_feedback(self, question_id: int, feedback: str) -> None:
        with self._lock:
            if question_id not in self._questions:
                raise _unknown_question(question_id)
            self._questions[question_id]["feedback"] = feedback

    def questions(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        with self._lock:
            rows = sorted(self._questions.values(), key=lambda q: (q["at"], q["id"]))
            if since is not None:
                rows = [q for q in rows if q["at"] >= _utc(since)]
            return [dict(q) for q in rows]

    def purge_questions(self, older_than: datetime) -> int:
        with self._lock:
            old = [i for i, q in self._questions.items() if q["at"] < _utc(older_than)]
            for qid in old:
                del self._questions[qid]
            return len(old)

    def purge_events(self, older_than: datetime) -> int:
        with self._lock:
            old = [key for key, at in self._events.items() if at < _utc(older_than)]
            for key in old:
                del self._events[key]
            return len(old)

    def close(self) -> None:
        pass

    # internals (call with the lock held)

    def _require(self, number: int) -> Ticket:
        ticket = self._tickets.get(number)
        if ticket is None:
            raise UnknownTicketError(number)
        return ticket

    def _open_in_thread(self, channel: str | None, thread_ts: str | None) -> Ticket | None:
        if channel is None or thread_ts is None:
            return None
        for ticket in self._tickets.values():
            if (
                ticket.channel == channel
                and ticket.thread_ts == thread_ts
                and ticket.status != "resolved"
            ):
                return ticket
        return None

    def _append(
        self, number: int, kind: str, actor: str | None, text: str | None, at: datetime
    ) -> Ticket:
        ticket = self._tickets[number]
        ticket = replace(
            ticket, updated_at=at, history=(*ticket.history, TicketEvent(kind, actor, text, at))
        )
        self._tickets[number] = ticket
        return ticket


# -- SQL: SQLite or PostgreSQL through SQLAlchemy Core ----------------------------------------

_BUSY_TIMEOUT_SECONDS = 15
_CONNECT_TIMEOUT_SECONDS = 10
_OPEN_ATTEMPTS = 5
#: PostgreSQL connections kept per process (SQLAlchemy's QueuePool), and none beyond them.
#: A faqbot worker has up to ~20 threads that use the store at once (the background pool,
#: the /faq question log, triage); SQLAlchemy's default (5 kept, 10 more opened and closed on
#: demand) opened a new connection, a new server process, for every few requests under load
#: (bench/bench_soak.py: 1,477 connections for 5,500 requests). Threads beyond this many
#: wait for a connection instead, which costs less than opening one; the total stays well
#: under PostgreSQL's default max_connections (100) with several processes.
_PG_POOL_SIZE = 10
_PG_POOL_TIMEOUT_SECONDS = 30


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite (which has no time zones) stores them naive."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else _utc(value)


def _when() -> _UTCDateTime:
    return _UTCDateTime(timezone=True)


_metadata = sa.MetaData()

_schema_version = sa.Table(
    "schema_version",
    _metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _when(), nullable=False),
)

_tickets = sa.Table(
    "tickets",
    _metadata,
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
    sa.Column("post_lease_until", _when()),
    sa.Column("created_at", _when(), nullable=False),
    sa.Column("updated_at", _when(), nullable=False),
    sqlite_autoincrement=True,  # never reuse a number, so FAQ-<n> stays unique
)
# One unresolved ticket per thread, enforced by the database so that two processes racing
# on the same thread cannot both open one (the loser retries and adds a follow-up).
_UNRESOLVED = sa.text("status <> 'resolved'")
sa.Index(
    "ux_tickets_unresolved_thread",
    _tickets.c.channel,
    _tickets.c.thread_ts,
    unique=True,
    sqlite_where=_UNRESOLVED,
    postgresql_where=_UNRESOLVED,
)
sa.Index("ix_tickets_thread", _tickets.c.channel, _tickets.c.thread_ts)
sa.Index("ix_tickets_triage", _tickets.c.triage_channel, _tickets.c.triage_ts)
sa.Index("ix_tickets_status", _tickets.c.status)

_ticket_events = sa.Table(
    "ticket_events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket", sa.Integer, sa.ForeignKey("tickets.number"), nullable=False, index=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("actor", sa.String),
    sa.Column("text", sa.Text),
    sa.Column("at", _when(), nullable=False),
    # A follow-up's dedupe key: the same Slack delivery twice adds one follow-up.
    sa.Column("dedupe_key", sa.String, unique=True),
)

_processed_events = sa.Table(
    "processed_events",
    _metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("at", _when(), nullable=False),
)

_questions = sa.Table(
    "questions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _when(), nullable=False, index=True),
    sa.Column("requester", sa.String),
    sa.Column("channel", sa.String),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("entry", sa.String),
    sa.Column("score", sa.Float),
    sa.Column("reason", sa.String),
    sa.Column("feedback", sa.String),
)


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def migrate(conn: sa.Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return migrate


# Applied in order, each once, recorded in ``schema_version``. Append new steps; never edit an
# old one. A step that changes an existing table must ALTER it (and check first: a database
# built from scratch gets today's table definitions from the earlier ``_create`` steps).
_MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (
    _create(_tickets, _ticket_events, _processed_events),  # 1
    _create(_questions),  # 2
)
SCHEMA_VERSION = len(_MIGRATIONS)


# -- statements built once ---------------------------------------------------------------------
# The hot paths execute these with parameters instead of building a new statement per call:
# SQLAlchemy then finds the compiled form by a memoised cache key rather than constructing the
# statement and walking it for its key every time (that was most of a write's Python time).


def _param(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=type_)


_P_NUMBER = _param("p_number", sa.Integer)
_P_NOW = _param("p_now", _when())
_P_WORKER = _param("p_worker", sa.String)

_INSERT_KEYS = sa.insert(_processed_events)
_INSERT_QUESTION = sa.insert(_questions).returning(_questions.c.id)
_INSERT_TICKET = sa.insert(_tickets).returning(_tickets.c.number)
_INSERT_EVENT = sa.insert(_ticket_events)
_TOUCH_TICKET = (
    sa.update(_tickets).where(_tickets.c.number == _P_NUMBER).values(updated_at=_P_NOW)
)
_CLAIM_POSTING = (
    sa.update(_tickets)
    .where(
        _tickets.c.number == _P_NUMBER,
        _tickets.c.triage_ts.is_(None),
        sa.or_(
            _tickets.c.post_lease_until.is_(None),
            _tickets.c.post_lease_until <= _P_NOW,
            _tickets.c.post_lease_owner == _P_WORKER,
        ),
    )
    .values(post_lease_owner=_P_WORKER, post_lease_until=_param("p_until", _when()))
)
_MARK_POSTED = (
    sa.update(_tickets)
    .where(_tickets.c.number == _P_NUMBER, _tickets.c.triage_ts.is_(None))
    .values(
        triage_channel=_param("p_channel", sa.String),
        triage_ts=_param("p_ts", sa.String),
        post_lease_owner=None,
        post_lease_until=None,
        updated_at=_P_NOW,
    )
)
_TICKET_BY_NUMBER = sa.select(_tickets).where(_tickets.c.number == _P_NUMBER)
_EVENTS_OF_TICKETS = (
    sa.select(_ticket_events)
    .where(_ticket_events.c.ticket.in_(sa.bindparam("p_numbers", expanding=True)))
    .order_by(_ticket_events.c.id)
)


def _lookup_statement(dedupe: bool, thread: bool) -> sa.Select[Any] | sa.CompoundSelect:
    """What opening a ticket must know first, in one statement (see ``_open_lookup``)."""
    key = _param("p_dedupe", sa.String)
    parts: builtins.list[sa.Select[Any]] = []
    if dedupe:
        parts.append(sa.select(_tickets.c.number, sa.literal_column("0").label("kind"))
                     .where(_tickets.c.dedupe_key == key))
        parts.append(sa.select(_ticket_events.c.ticket, sa.literal_column("0"))
                     .where(_ticket_events.c.dedupe_key == key))
    if thread:
        parts.append(sa.select(_tickets.c.number, sa.literal_column("1")).where(
            _tickets.c.channel == _param("p_channel", sa.String),
            _tickets.c.thread_ts == _param("p_thread", sa.String),
            _tickets.c.status != "resolved",
        ))
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


_OPEN_LOOKUPS = {
    (dedupe, thread): _lookup_statement(dedupe, thread)
    for dedupe in (False, True) for thread in (False, True) if dedupe or thread
}


class _Raw:
    """One of the statements above compiled once for a dialect and run straight on the DBAPI
    cursor: the same SQL and the same type conversions as ``conn.execute`` (each parameter
    goes through its SQLAlchemy type's bind processor), without SQLAlchemy's per-execution
    work, which was most of the time a write held SQLite's write lock. Only for statements
    whose parameters are all plain bind parameters (no expanding IN); results are raw rows.
    """

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect,
                 column_keys: builtins.list[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if getattr(compiled, "escaped_bind_names", None):  # pragma: no cover - our names
            raise ValueError(f"bind names need escaping in {compiled.string!r}")
        self.sql = compiled.string
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self.fixed: dict[str, Any] = {}  # literal values in the statement ('resolved', NULL…)
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.value is not None or not bind.required:
                self.fixed[name] = bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor

    def args(self, params: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = {**self.fixed, **params}
        for name, processor in self.processors.items():
            values[name] = processor(values.get(name))
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)


def _engine_url(url: str) -> sa.URL:
    """Parse ``url`` and pick the psycopg 3 driver for ``postgresql://`` (and ``postgres://``)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            "the database URL is not valid; expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {_display_url(url)}; use sqlite:///PATH or postgresql://…"
        )
    return parsed


def _display_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let _on_sqlite_begin issue BEGIN: pysqlite's own would be deferred, and a deferred
    # transaction that later writes fails at once ("database is locked") in WAL mode.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except dbapi_conn.OperationalError:
            pass  # a read-only database keeps its journal mode and can still be read
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Straight to the driver: BEGIN has no parameters and no result, and this runs once per
    # transaction, inside the write lock. A failure (e.g. the database is locked past
    # busy_timeout) is still wrapped by SQLAlchemy, which calls this from its own begin.
    begin = conn.get_execution_options().get("faqbot_begin", "BEGIN")
    conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]


_WRITER_LOCK_SUFFIX = "-writers.lock"


class _WriterQueue:
    """An exclusive ``flock`` on a file beside a SQLite database, held around each write
    transaction, so that faqbot processes sharing the file (gunicorn workers) hand the write
    lock to each other within a fraction of a millisecond. Without it a writer that finds
    the database locked sleeps in SQLite's busy handler, whose back-off (1, 2, 5, 10, …, 100
    ms) leaves the database idle while writers of the other process wait.

    It only orders faqbot's own writers: SQLite's locks still decide, and a writer outside
    faqbot is still waited for by ``busy_timeout``. The wait here is bounded by the same
    timeout (a process stopped while holding the lock cannot block the others for longer),
    after which the writer goes on without it. The kernel drops the lock of a process that
    dies. Where the file cannot be opened (a read-only directory) or there is no ``flock``,
    writers go without it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._broken = False
        self._held = False

    def __enter__(self) -> None:
        fd = self._open()
        if fd is None:
            return
        deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return  # go on without it: SQLite's busy_timeout has the last word
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
                continue
            except OSError:
                self._broken = True
                return
            self._held = True
            return

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
            except OSError:
                self._broken = True

    def _open(self) -> int | None:
        """This process's descriptor (a forked child opens its own: a lock taken through an
        inherited descriptor would be shared with the parent)."""
        if self._broken or fcntl is None:
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            self._broken = True
            return None
        self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


_FRESH = "faqbot_fresh"


def _on_pg_connect(_dbapi_conn: Any, record: Any) -> None:
    # A connection just opened has not had the time to go stale: a failure on it is not
    # retried (the database is down, not a connection lost while idle in the pool).
    record.info[_FRESH] = True


def _check_idle_socket(dialect: sa.Dialect, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Checkout: an idle PostgreSQL connection has nothing to read. When its socket is
    readable, the server has closed it or said something (e.g. "terminating connection due
    to administrator command"): ping it, and let the pool open another when the ping fails.
    One poll() instead of pool_pre_ping's round trip on every checkout."""
    try:
        if dbapi_conn.closed:
            raise sa.exc.DisconnectionError("connection closed")
        readable, _, _ = select.select([dbapi_conn.pgconn.socket], [], [], 0)
    except Exception as exc:  # closed or broken (psycopg), a bad descriptor (OSError)…
        raise sa.exc.DisconnectionError(str(exc)) from exc
    if readable:
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc


class _StaleConnection(Exception):
    """A pooled connection was found lost before its transaction committed: nothing was
    written, so the operation may run again on a new connection (see ``_reconnecting``)."""


def _reconnecting(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method again, once, when its transaction met a lost connection before
    committing. A failure at COMMIT itself is never retried (the commit may have happened:
    running it again could record twice); nor is one on a connection just opened."""

    @functools.wraps(method)
    def wrapper(self: SqlTicketStore, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._retrying, "active", False):  # nested: the outer call retries
            return method(self, *args, **kwargs)
        try:
            self._retrying.active = True
            try:
                return method(self, *args, **kwargs)
            except _StaleConnection:
                pass
            self._retrying.active = "again"  # this time a lost connection is an error
            return method(self, *args, **kwargs)
        finally:
            self._retrying.active = False

    return wrapper


#: PostgreSQL: a delivery's keys in one statement (an array, whatever their number).
_PG_INSERT_KEYS = ("INSERT INTO processed_events (key, at) "
                   "SELECT unnest(%(keys)s::varchar[]), %(key_at)s")


_PG_INSERT_QUESTION = (
    "INSERT INTO questions (at, requester, channel, question, action, entry, score, reason) "
    "VALUES (%(at)s, %(requester)s, %(channel)s, %(question)s, %(action)s, %(entry)s, "
    "%(score)s, %(reason)s) RETURNING id"
)


def _question_params(question: LoggedQuestion) -> dict[str, Any]:
    """The parameters of ``_PG_INSERT_QUESTION``."""
    return {
        "at": _utc(question.at) if question.at is not None else _now(),
        "requester": question.requester, "channel": question.channel,
        "question": question.question, "action": question.action, "entry": question.entry,
        "score": question.score, "reason": question.reason,
    }


def _pg_take(question: bool) -> str:
    """PostgreSQL: a delivery's keys, its question (when ``question``) and its new ticket with
    the ticket's first history line, in one statement (see ``SqlTicketStore._take_pg``). The
    ticket is inserted only when the lookup that opening a ticket makes first
    (``_OPEN_LOOKUPS``) finds nothing; a NULL dedupe key or thread matches nothing."""
    parts = [f"k AS ({_PG_INSERT_KEYS})"]
    if question:
        parts.append(f"q AS ({_PG_INSERT_QUESTION})")
    parts.append(
        "t AS (INSERT INTO tickets (requester, team, channel, thread_ts, message_ts, question, "
        "candidates, entry, reason, status, source, details, dedupe_key, created_at, "
        "updated_at) SELECT %(t_requester)s::varchar, %(t_team)s::varchar, "
        "%(t_channel)s::varchar, %(t_thread)s::varchar, %(t_message)s::varchar, "
        "%(t_question)s::text, %(t_candidates)s::json, %(t_entry)s::varchar, "
        "%(t_reason)s::varchar, 'open', %(t_source)s::varchar, '{}'::json, "
        "%(t_dedupe)s::varchar, %(t_at)s::timestamptz, %(t_at)s::timestamptz "
        "WHERE NOT EXISTS (SELECT 1 FROM tickets WHERE dedupe_key = %(t_dedupe)s::varchar) "
        "AND NOT EXISTS (SELECT 1 FROM ticket_events WHERE dedupe_key = %(t_dedupe)s::varchar) "
        "AND NOT EXISTS (SELECT 1 FROM tickets WHERE channel = %(t_channel)s::varchar "
        "AND thread_ts = %(t_thread)s::varchar AND status <> 'resolved') "
        "RETURNING number)"
    )
    parts.append(
        "e AS (INSERT INTO ticket_events (ticket, kind, actor, text, at) SELECT number, "
        "'opened', %(t_requester)s::varchar, %(t_reason)s::varchar, %(t_at)s::timestamptz "
        "FROM t)"
    )
    qid = "(SELECT id FROM q)" if question else "NULL::integer"
    return f"WITH {', '.join(parts)} SELECT {qid}, (SELECT number FROM t)"


_PG_TAKE = _pg_take(question=False)
_PG_TAKE_WITH_QUESTION = _pg_take(question=True)


def _table_of(exc: BaseException) -> str | None:
    """The table a PostgreSQL constraint violation names (psycopg's diagnostics)."""
    diag = getattr(getattr(exc, "orig", None) or exc, "diag", None)
    return getattr(diag, "table_name", None)


#: PostgreSQL: record a ticket's triage message and its history line in one statement, and
#: read what was recorded before (the outer SELECT sees the row as it was before the UPDATE).
_PG_MARK_POSTED = (
    "WITH u AS (UPDATE tickets SET triage_channel = %(channel)s, triage_ts = %(ts)s, "
    "post_lease_owner = NULL, post_lease_until = NULL, updated_at = %(now)s "
    "WHERE number = %(number)s AND triage_ts IS NULL RETURNING number), "
    "e AS (INSERT INTO ticket_events (ticket, kind, text, at) "
    "SELECT number, 'posted', %(text)s, %(now)s FROM u) "
    "SELECT (SELECT count(*) FROM u), triage_channel, triage_ts FROM tickets "
    "WHERE number = %(number)s"
)


class _AlreadyClaimed(Exception):
    """Raised inside ``take_delivery``'s transaction to roll it back: a key was taken."""


class SqlTicketStore:
    """A :class:`TicketStore` in SQLite or PostgreSQL; the schema is created or upgraded on start.

    Usage::

        store = SqlTicketStore("sqlite:///faqbot.sqlite3")  # or "postgresql://user@host/db"

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://…`` (driven by psycopg 3).

    Raises:
        StoreError: the database cannot be reached or its schema cannot be set up; every
            later failure of the database is raised as StoreError too. Messages never show a
            password.
    """

    def __init__(self, url: str = DEFAULT_DATABASE_URL) -> None:
        parsed = _engine_url(url)
        # Name the database as the user wrote it, never with its password.
        self.url = _display_url(url)
        self._password = parsed.password
        self._sqlite = parsed.get_backend_name() == "sqlite"
        connect_args: dict[str, Any] = {}
        options: dict[str, Any] = {}
        # sqlite:// (in memory) is one connection shared by every thread: take turns on it.
        self._serial: threading.Lock | None = None
        self._write_lock: threading.Lock | None = None
        self._writers: _WriterQueue | None = None
        if self._sqlite:
            connect_args = {"check_same_thread": False, "timeout": _BUSY_TIMEOUT_SECONDS}
            self._write_lock = threading.Lock()
            if parsed.database in (None, "", ":memory:"):
                options["poolclass"] = sa.pool.StaticPool
                self._serial = threading.Lock()
            elif not parsed.database.startswith("file:"):  # a URI (e.g. mode=ro): left alone
                self._writers = _WriterQueue(
                    os.path.abspath(parsed.database + _WRITER_LOCK_SUFFIX))
        else:
            if "connect_timeout" not in parsed.query:
                connect_args = {"connect_timeout": _CONNECT_TIMEOUT_SECONDS}
            options.update(pool_size=_PG_POOL_SIZE, max_overflow=0,
                           pool_timeout=_PG_POOL_TIMEOUT_SECONDS)
        try:
            # No pool_pre_ping (a round trip before every transaction): a PostgreSQL
            # connection is checked by a look at its socket when taken from the pool
            # (_check_idle_socket), and a transaction that meets a connection lost before it
            # committed is run again once on a new one (_reconnecting).
            self._engine = sa.create_engine(parsed, connect_args=connect_args, **options)
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise StoreError(self._describe(exc)) from exc
        dbapi = self._engine.dialect.loaded_dbapi
        self._dbapi_error: type[Exception] = dbapi.Error
        # Statements run through _Raw raise the driver's own errors.
        self._integrity_errors: tuple[type[Exception], ...] = (
            sa.exc.IntegrityError, dbapi.IntegrityError)
        self._raw: dict[tuple[int, tuple[str, ...]], _Raw] = {}
        if self._sqlite:
            sa.event.listen(self._engine, "connect", _on_sqlite_connect)
            sa.event.listen(self._engine, "begin", _on_sqlite_begin)
        else:
            sa.event.listen(self._engine, "connect", _on_pg_connect)
            sa.event.listen(self._engine, "checkout",
                            functools.partial(_check_idle_socket, self._engine.dialect))
        self._retrying = threading.local()
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlTicketStore({self.url!r})"

    # tickets

    @_reconnecting
    def open_ticket(self, new: NewTicket) -> tuple[Ticket, bool]:
        with self._translate():
            for _ in range(_OPEN_ATTEMPTS):
                try:
                    with self._begin(write=True) as conn:
                        return self._open_once(conn, new)
                except self._integrity_errors:
                    # Another process took the dedupe key or the thread first; look again.
                    continue
            raise StoreError(f"{self.url}: could not open a ticket: too much contention")

    @_reconnecting
    def get(self, number: int) -> Ticket | None:
        with self._tx() as conn:
            return self._ticket(conn, number)

    @_reconnecting
    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        query = (
            sa.select(_tickets)
            .where(_tickets.c.channel == channel, _tickets.c.thread_ts == thread_ts)
            .order_by(_tickets.c.number.desc())
            .limit(1)
        )
        with self._tx() as conn:
            return next(iter(self._load(conn, query)), None)

    @_reconnecting
    def find_by_triage(self, channel: str, ts: str) -> Ticket | None:
        query = sa.select(_tickets).where(
            _tickets.c.triage_channel == channel, _tickets.c.triage_ts == ts
        )
        with self._tx() as conn:
            return next(iter(self._load(conn, query)), None)

    @_reconnecting
    def list(
        self, *, status: str | None = None, requester: str | None = None, limit: int = 100
    ) -> builtins.list[Ticket]:
        query = sa.select(_tickets).order_by(_tickets.c.number.desc()).limit(max(limit, 0))
        if status is not None:
            query = query.where(_tickets.c.status == status)
        if requester is not None:
            query = query.where(_tickets.c.requester == requester)
        with self._tx() as conn:
            return self._load(conn, query)

    @_reconnecting
    def set_status(
        self, number: int, status: str, *, actor: str | None, assignee: str | None = None
    ) -> Ticket:
        _check_status(status)
        with self._tx(write=True) as conn:
            row = self._lock_row(conn, number)
            if row.status == status and (assignee is None or assignee == row.assignee):
                return self._require(conn, number)
            if row.status == "resolved" and status != "resolved":
                other = self._unresolved_in_thread(conn, row.channel, row.thread_ts)
                if other is not None:
                    raise _reopen_conflict(number, other)
            kind, text = _status_event(row.status, status, assignee)
            now = _now()
            conn.execute(
                sa.update(_tickets)
                .where(_tickets.c.number == number)
                .values(status=status, assignee=assignee or row.assignee, updated_at=now)
            )
            self._append(conn, number, kind, actor, text, now)
            return self._require(conn, number)

    @_reconnecting
    def add_event(self, number: int, kind: str, *, actor: str | None, text: str | None) -> Ticket:
        with self._tx(write=True) as conn:
            self._lock_row(conn, number)
            self._append(conn, number, kind, actor, text, _now())
            return self._require(conn, number)

    @_reconnecting
    def set_details(self, number: int, details: dict[str, str], *, actor: str | None) -> Ticket:
        with self._tx(write=True) as conn:
            row = self._lock_row(conn, number)
            now = _now()
            conn.execute(
                sa.update(_tickets)
                .where(_tickets.c.number == number)
                .values(details={**(row.details or {}), **details})
            )
            self._append(conn, number, "details", actor, _details_text(details), now)
            return self._require(conn, number)

    # triage posting

    @_reconnecting
    def mark_posted(self, number: int, channel: str, ts: str) -> bool:
        now = _now()
        if not self._sqlite:
            # One statement in autocommit (one round trip instead of four: BEGIN, UPDATE,
            # INSERT, COMMIT); it also reads what was recorded before it.
            with self._translate():
                rows = self._autocommit(_PG_MARK_POSTED, {
                    "number": number, "channel": channel, "ts": ts, "now": now,
                    "text": f"{channel} {ts}",
                })[1]
            if not rows:
                return False  # no such ticket
            updated, before = rows[0][0] == 1, (rows[0][1], rows[0][2])
            # Run again after a lost connection: the first attempt may have committed, in
            # which case this very message is what is recorded.
            return updated or (self._retrying.active == "again" and before == (channel, ts))
        with self._tx(write=True) as conn:
            # Two statements: the conditional UPDATE (which also bumps updated_at, as _append
            # would) and the history line.
            result = self._run(conn, _MARK_POSTED, {
                "p_number": number, "p_channel": channel, "p_ts": ts, "p_now": now,
            })
            if result[0] != 1:
                return False
            self._insert_event(conn, number, "posted", None, f"{channel} {ts}", now)
            return True

    @_reconnecting
    def claim_posting(self, number: int, worker: str, lease_seconds: float = 30) -> bool:
        now = _now()
        # One conditional UPDATE: the database lets exactly one of the racing workers match.
        params = {"p_number": number, "p_now": now, "p_worker": worker,
                  "p_until": now + timedelta(seconds=lease_seconds)}
        if not self._sqlite:
            # In autocommit: one round trip instead of three (BEGIN, UPDATE, COMMIT). Run
            # again after a lost connection it is harmless: the lease is this worker's.
            raw = self._compiled(_CLAIM_POSTING, tuple(params))
            with self._translate():
                return self._autocommit(raw.sql, raw.args(params))[0] == 1
        with self._tx(write=True) as conn:
            return self._run(conn, _CLAIM_POSTING, params)[0] == 1

    @_reconnecting
    def pending(self, limit: int = 100) -> builtins.list[Ticket]:
        query = (
            sa.select(_tickets)
            .where(_tickets.c.triage_ts.is_(None))
            .order_by(_tickets.c.number)
            .limit(max(limit, 0))
        )
        with self._tx() as conn:
            return self._load(conn, query)

    def claim_event(self, key: str) -> bool:
        return self.claim_events([key])

    def claim_events(self, keys: Sequence[str]) -> bool:
        return self.take_delivery(keys).claimed

    @_reconnecting
    def take_delivery(
        self,
        keys: Sequence[str],
        *,
        question: LoggedQuestion | None = None,
        ticket: NewTicket | None = None,
    ) -> Intake:
        at = _now()
        rows = [{"key": key, "at": at} for key in dict.fromkeys(keys)]
        if not rows and question is None and ticket is None:
            return Intake(claimed=True)  # nothing to write
        if ticket is None and not self._sqlite:
            return self._take_in_one_statement(rows, question)
        with self._translate():
            for _ in range(_OPEN_ATTEMPTS):
                try:
                    with self._begin(write=True) as conn:
                        if ticket is not None and not self._sqlite:
                            # One statement for the keys, the question and a new ticket.
                            qid, number, at = self._take_pg(conn, rows, question, ticket)
                            if number is not None:
                                return Intake(claimed=True, question_id=qid,
                                              ticket=Ticket.opened(number, ticket, at),
                                              ticket_created=True)
                            # The dedupe key or the thread's unresolved ticket was found
                            # (nothing opened): the keys and the question are recorded; what
                            # happens to the ticket is decided below, in this transaction.
                        else:
                            if rows:
                                try:
                                    self._insert_keys(conn, rows)
                                except self._integrity_errors:
                                    # A key seen before: the whole transaction rolls back.
                                    raise _AlreadyClaimed from None
                            qid = self._insert_question(conn, question) if question else None
                        if ticket is None:
                            return Intake(claimed=True, question_id=qid)
                        opened, created = self._open_once(conn, ticket)
                        return Intake(claimed=True, question_id=qid, ticket=opened,
                                      ticket_created=created)
                except _AlreadyClaimed:
                    return Intake(claimed=False)
                except self._integrity_errors:
                    # Another process took the ticket's dedupe key or thread first (the keys
                    # were ours): roll back and look again, as open_ticket does.
                    continue
            raise StoreError(f"{self.url}: could not open a ticket: too much contention")

    # question log

    @_reconnecting
    def record_question(
        self,
        *,
        question: str,
        action: str,
        entry: str | None,
        score: float | None,
        reason: str | None,
        requester: str | None = None,
        channel: str | None = None,
        at: datetime | None = None,
    ) -> int:
        logged = LoggedQuestion(question=question, action=action, entry=entry, score=score,
                                reason=reason, requester=requester, channel=channel, at=at)
        if not self._sqlite:
            return int(self._take_in_one_statement([], logged).question_id or 0)
        with self._tx(write=True) as conn:
            return self._insert_question(conn, logged)

    def _take_in_one_statement(self, rows: builtins.list[dict[str, Any]],
                               question: LoggedQuestion | None) -> Intake:
        """PostgreSQL, a delivery without a ticket (most of them) and the /faq question log:
        one statement in autocommit, one round trip instead of four (BEGIN, the keys, the
        question, COMMIT). The keys go in a data-modifying WITH, which PostgreSQL runs to
        completion whatever the main INSERT does; a key claimed before fails the whole
        statement on the unique key, so nothing is recorded: all or nothing, as in a
        transaction. Not run again after a lost connection: it may have committed."""
        statement, params = self._one_statement(rows, question)
        with self._translate():
            try:
                found = self._autocommit(statement, params, rerun=False)[1]
            except self._integrity_errors:
                return Intake(claimed=False)  # a key seen before: nothing recorded
        row = found[0] if found else None
        return Intake(claimed=True, question_id=int(row[0]) if row else None)

    def _autocommit(self, sql: str, params: dict[str, Any] | tuple[Any, ...], *,
                    rerun: bool = True) -> tuple[int, builtins.list[Any]]:
        """PostgreSQL: one statement on its own, in autocommit (one round trip: no BEGIN and
        no COMMIT), on a pooled connection taken without an SQLAlchemy ``Connection`` around
        it; ``(rowcount, rows)``. Raises the driver's errors. With ``rerun`` (a statement
        that is harmless run twice: it may have committed before its connection was lost), a
        pooled connection found lost is replaced and the statement run again once (see
        ``_reconnecting``); without, a lost connection is an error."""
        pooled = self._engine.raw_connection()
        try:
            fresh = pooled.info.pop(_FRESH, False)
            dbapi_conn = pooled.dbapi_connection
            assert dbapi_conn is not None
            dbapi_conn.autocommit = True
            try:
                cursor = dbapi_conn.cursor()
                try:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall() if cursor.description else []
                    return cursor.rowcount, rows
                except Exception as exc:
                    if (rerun and not fresh
                            and getattr(self._retrying, "active", False) is True
                            and self._lost(pooled, exc)):
                        pooled.invalidate()
                        raise _StaleConnection from exc
                    raise
                finally:
                    cursor.close()
            finally:
                if not dbapi_conn.closed:
                    dbapi_conn.autocommit = False
        finally:
            pooled.close()  # back to the pool (or discarded, when invalidated)

    def _take_pg(self, conn: sa.Connection, rows: builtins.list[dict[str, Any]],
                 question: LoggedQuestion | None, ticket: NewTicket
                 ) -> tuple[int | None, int | None, datetime]:
        """PostgreSQL, inside take_delivery's transaction: claim the keys, log the question and
        open ``ticket`` in one statement (one round trip instead of five: the keys, the
        question, the lookup, the ticket and its history line). The ticket is inserted only
        when neither its dedupe key nor an unresolved ticket of its thread exists (the
        lookup of :meth:`_open_lookup`, in the statement); the unique keys still decide a
        race, as in :meth:`_open_once`. ``(question id, ticket number or None when none
        was inserted, the ticket's time)``. A key claimed before raises ``_AlreadyClaimed``."""
        at = _now()
        params: dict[str, Any] = {
            "keys": [row["key"] for row in rows], "key_at": rows[0]["at"] if rows else at,
            "t_requester": ticket.requester, "t_team": ticket.team,
            "t_channel": ticket.channel, "t_thread": ticket.thread_ts,
            "t_message": ticket.message_ts, "t_question": ticket.question,
            "t_candidates": json.dumps([dict(c) for c in ticket.candidates]),
            "t_entry": ticket.entry, "t_reason": ticket.reason, "t_source": ticket.source,
            "t_dedupe": ticket.dedupe_key, "t_at": at,
        }
        if question is not None:
            params.update(_question_params(question))
        sql = _PG_TAKE_WITH_QUESTION if question is not None else _PG_TAKE
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            try:
                cursor.execute(sql, params)
            except self._integrity_errors as exc:
                if _table_of(exc) == "processed_events":
                    raise _AlreadyClaimed from None  # a key seen before: all rolls back
                raise  # the ticket's dedupe key or thread, taken meanwhile: look again
            qid, number = cursor.fetchone()  # type: ignore[misc]
        finally:
            cursor.close()
        return qid, number, at

    def _insert_keys(self, conn: sa.Connection, rows: builtins.list[dict[str, Any]]) -> None:
        """Claim a delivery's keys inside a transaction. PostgreSQL: one INSERT of an array
        (psycopg's executemany enters pipeline mode, which cost more Python time than the
        whole rest of a delivery's transaction)."""
        if self._sqlite:
            self._run_many(conn, _INSERT_KEYS, rows)
            return
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_PG_INSERT_KEYS, {"keys": [row["key"] for row in rows],
                                             "key_at": rows[0]["at"]})
        finally:
            cursor.close()

    def _one_statement(self, rows: builtins.list[dict[str, Any]],
                       question: LoggedQuestion | None) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        parts = []
        keys = _PG_INSERT_KEYS
        if rows:
            parts.append(f"WITH k AS ({keys})" if question is not None else keys)
            params.update(keys=[row["key"] for row in rows], key_at=rows[0]["at"])
        if question is not None:
            parts.append(_PG_INSERT_QUESTION)
            params.update(_question_params(question))
        return " ".join(parts), params

    @_reconnecting
    def set_feedback(self, question_id: int, feedback: str) -> None:
        update = (
            sa.update(_questions).where(_questions.c.id == question_id).values(feedback=feedback)
        )
        with self._tx(write=True) as conn:
            if conn.execute(update).rowcount != 1:
                raise _unknown_question(question_id)

    @_reconnecting
    def questions(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        # Read on the driver's cursor (see _Raw), each column's values converted as SQLAlchemy
        # would: its row objects were most of the time of ``faqbot kb gaps`` on a large log.
        columns = _questions.c
        query = sa.select(_questions).order_by(columns.at, columns.id)
        params: dict[str, Any] = {}
        if since is not None:
            query = query.where(columns.at >= sa.bindparam("p_since", type_=columns.at.type))
            params["p_since"] = since
        dialect = self._engine.dialect
        raw = _Raw(query, dialect)
        with self._tx() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(raw.sql, raw.args(params))
                names = [column.name for column in columns]
                convert = [  # d[1]: the driver's type code
                    (column.name, column.type.dialect_impl(dialect).result_processor(dialect, d[1]))
                    for column, d in zip(columns, cursor.description, strict=True)
                ]
                fetched = cursor.fetchall()
            finally:
                cursor.close()
        rows = [dict(zip(names, row, strict=True)) for row in fetched]
        for name, process in convert:
            if process is not None:
                for row in rows:
                    row[name] = process(row[name])
        return rows

    @_reconnecting
    def purge_questions(self, older_than: datetime) -> int:
        with self._tx(write=True) as conn:
            return conn.execute(sa.delete(_questions).where(_questions.c.at < older_than)).rowcount

    @_reconnecting
    def purge_events(self, older_than: datetime) -> int:
        query = sa.delete(_processed_events).where(_processed_events.c.at < older_than)
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount

    def close(self) -> None:
        self._engine.dispose()
        if self._writers is not None:
            self._writers.close()

    # schema

    def _migrate(self) -> None:
        """Create or upgrade the schema, one process at a time."""
        with self._tx(write=True) as conn:  # SQLite: BEGIN IMMEDIATE holds the write lock
            if not self._sqlite:
                # DDL is transactional in PostgreSQL; this lock (released at commit) keeps two
                # processes starting at once from creating the same tables.
                conn.execute(
                    sa.text(
                        "SELECT pg_advisory_xact_lock("
                        "hashtext('faqbot schema ' || coalesce(current_schema(), '')))"
                    )
                )
            _schema_version.create(conn, checkfirst=True)
            version = conn.execute(sa.select(sa.func.max(_schema_version.c.version))).scalar()
            version = version or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url}: the database schema is version {version}, newer than this "
                    f"faqbot understands ({SCHEMA_VERSION}); upgrade faqbot"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[number - 1](conn)
                conn.execute(
                    sa.insert(_schema_version).values(version=number, applied_at=_now())
                )

    # transactions and errors

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Raise every database failure as a one-line :class:`StoreError`."""
        try:
            yield
        except (sa.exc.SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreError(self._describe(exc)) from exc

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed when the block ends without an error."""
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler with a growing back-off: under load, threads lose most of
        # their time there. Queueing this process's writers on a Python lock hands the write
        # lock over at once; only other processes still meet the busy handler.
        # Other processes on the same file queue on an flock (see _WriterQueue) for the same
        # reason.
        local = self._write_lock if write else None
        shared = self._writers if write else None
        with self._serial or nullcontext(), local or nullcontext(), shared or nullcontext(), \
                self._engine.connect() as conn:
            if write and self._sqlite:
                # Take the write lock up front; busy_timeout then makes writers queue.
                conn.execution_options(faqbot_begin="BEGIN IMMEDIATE")
            fresh = not self._sqlite and conn.connection.info.pop(_FRESH, False)
            with conn.begin():
                try:
                    yield conn
                except Exception as exc:
                    # Lost before COMMIT was sent: the server rolls the transaction back.
                    if (not self._sqlite and not fresh
                            and getattr(self._retrying, "active", False) is True
                            and self._lost(conn, exc)):
                        conn.invalidate()
                        raise _StaleConnection from exc
                    raise

    def _lost(self, conn: sa.Connection | sa.PoolProxiedConnection,
              exc: BaseException) -> bool:
        """Whether ``exc`` says the connection is gone (not a failed statement); ``conn``: an
        SQLAlchemy connection or the pool's connection (see ``_autocommit``)."""
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig  # type: ignore[assignment]
        if not isinstance(exc, self._dbapi_error):
            return False
        try:
            pooled = conn.connection if isinstance(conn, sa.Connection) else conn
            dbapi_conn = pooled.dbapi_connection
        except sa.exc.SQLAlchemyError:
            return True
        if dbapi_conn is None or getattr(dbapi_conn, "closed", False) or \
                getattr(dbapi_conn, "broken", False):
            return True
        return bool(self._engine.dialect.is_disconnect(exc, dbapi_conn, None))

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[sa.Connection]:
        with self._translate(), self._begin(write=write) as conn:
            yield conn

    def _describe(self, exc: BaseException) -> str:
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        message = lines[0].strip() if lines else type(cause).__name__
        if self._password:
            message = message.replace(self._password, "***")
        return f"ticket store {self.url}: {message}"

    # queries (inside a transaction)

    def _compiled(self, statement: sa.Executable, keys: tuple[str, ...]) -> _Raw:
        raw = self._raw.get((id(statement), keys))
        if raw is None:
            columns = builtins.list(keys) if isinstance(statement, sa.Insert) else None
            raw = self._raw[id(statement), keys] = _Raw(statement, self._engine.dialect, columns)
        return raw

    def _run(self, conn: sa.Connection, statement: sa.Executable,
             params: dict[str, Any]) -> tuple[int, builtins.list[Any]]:
        """Execute one of the module's prepared statements (see :class:`_Raw`):
        ``(rowcount, rows)``, the rows read to the end (RETURNING included)."""
        raw = self._compiled(statement, tuple(params))
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(raw.sql, raw.args(params))
            rows = cursor.fetchall() if cursor.description else []
            return cursor.rowcount, rows
        finally:
            cursor.close()

    def _run_many(self, conn: sa.Connection, statement: sa.Executable,
                  rows: builtins.list[dict[str, Any]]) -> None:
        raw = self._compiled(statement, tuple(rows[0]))
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(raw.sql, [raw.args(row) for row in rows])
        finally:
            cursor.close()

    def _open_once(self, conn: sa.Connection, new: NewTicket) -> tuple[Ticket, bool]:
        deduped, existing = self._open_lookup(conn, new)
        if deduped is not None:
            return self._require(conn, deduped), False
        now = _now()
        if existing is not None:
            self._append(
                conn, existing, "follow_up", new.requester, new.question, now, new.dedupe_key
            )
            return self._require(conn, existing), False
        number = self._run(conn, _INSERT_TICKET, {
            "requester": new.requester,
            "team": new.team,
            "channel": new.channel,
            "thread_ts": new.thread_ts,
            "message_ts": new.message_ts,
            "question": new.question,
            "candidates": [dict(c) for c in new.candidates],
            "entry": new.entry,
            "reason": new.reason,
            "status": "open",
            "source": new.source,
            "details": {},
            "dedupe_key": new.dedupe_key,
            "created_at": now,
            "updated_at": now,
        })[1][0][0]
        # A new row already carries updated_at = now: the history line is all _append adds.
        self._insert_event(conn, number, "opened", new.requester, new.reason, now)
        # Everything is known: build the ticket rather than read it back (two fewer queries on
        # the path every unanswered question takes).
        return Ticket.opened(number, new, now), True

    def _open_lookup(self, conn: sa.Connection, new: NewTicket) -> tuple[int | None, int | None]:
        """One statement for what opening a ticket must know first: ``(deduped, unresolved)``,
        the ticket that already took ``new.dedupe_key`` (as its own key or a follow-up's) and
        the unresolved ticket of ``new``'s thread, each None when there is none."""
        dedupe = new.dedupe_key is not None
        thread = new.channel is not None and new.thread_ts is not None
        if not dedupe and not thread:
            return None, None
        query = _OPEN_LOOKUPS[dedupe, thread]
        params = {"p_dedupe": new.dedupe_key, "p_channel": new.channel, "p_thread": new.thread_ts}
        deduped = existing = None
        for number, kind in self._run(conn, query, params)[1]:
            if int(kind) == 0:
                deduped = deduped if deduped is not None else number
            elif existing is None:
                existing = number
        return deduped, existing

    def _unresolved_in_thread(
        self, conn: sa.Connection, channel: str | None, thread_ts: str | None
    ) -> int | None:
        if channel is None or thread_ts is None:
            return None
        return conn.execute(
            sa.select(_tickets.c.number).where(
                _tickets.c.channel == channel,
                _tickets.c.thread_ts == thread_ts,
                _tickets.c.status != "resolved",
            )
        ).scalar()

    def _lock_row(self, conn: sa.Connection, number: int) -> sa.Row[Any]:
        """The ticket's row, locked until commit (PostgreSQL; SQLite holds the write lock)."""
        query = sa.select(_tickets).where(_tickets.c.number == number)
        row = conn.execute(query.with_for_update()).first()
        if row is None:
            raise UnknownTicketError(number)
        return row

    def _append(
        self,
        conn: sa.Connection,
        number: int,
        kind: str,
        actor: str | None,
        text: str | None,
        at: datetime,
        dedupe_key: str | None = None,
    ) -> None:
        self._insert_event(conn, number, kind, actor, text, at, dedupe_key)
        self._run(conn, _TOUCH_TICKET, {"p_number": number, "p_now": at})

    def _insert_event(
        self,
        conn: sa.Connection,
        number: int,
        kind: str,
        actor: str | None,
        text: str | None,
        at: datetime,
        dedupe_key: str | None = None,
    ) -> None:
        """The history line alone (:meth:`_append` also bumps the ticket's ``updated_at``)."""
        self._run(conn, _INSERT_EVENT, {
            "ticket": number, "kind": kind, "actor": actor, "text": text, "at": at,
            "dedupe_key": dedupe_key,
        })

    def _insert_question(self, conn: sa.Connection, logged: LoggedQuestion) -> int:
        return int(self._run(conn, _INSERT_QUESTION, {
            "at": logged.at if logged.at is not None else _now(),
            "requester": logged.requester,
            "channel": logged.channel,
            "question": logged.question,
            "action": logged.action,
            "entry": logged.entry,
            "score": logged.score,
            "reason": logged.reason,
        })[1][0][0])

    def _ticket(self, conn: sa.Connection, number: int) -> Ticket | None:
        found = self._load(conn, _TICKET_BY_NUMBER, {"p_number": number})
        return found[0] if found else None

    def _require(self, conn: sa.Connection, number: int) -> Ticket:
        ticket = self._ticket(conn, number)
        if ticket is None:
            raise UnknownTicketError(number)
        return ticket

    def _load(self, conn: sa.Connection, query: sa.Select[Any],
              params: dict[str, Any] | None = None) -> builtins.list[Ticket]:
        """The tickets ``query`` selects, in its order, each with its history."""
        rows = conn.execute(query, params).all()
        history: dict[int, list[TicketEvent]] = {row.number: [] for row in rows}
        if history:
            events = conn.execute(_EVENTS_OF_TICKETS, {"p_numbers": list(history)})
            for event in events:
                history[event.ticket].append(
                    TicketEvent(event.kind, event.actor, event.text, event.at)
                )
        return [
            Ticket(
                number=row.number,
                requester=row.requester,
                question=row.question,
                reason=row.reason,
                status=row.status,
                created_at=row.created_at,
                updated_at=row.updated_at,
                team=row.team,
                channel=row.channel,
                thread_ts=row.thread_ts,
                message_ts=row.message_ts,
                candidates=tuple(row.candidates or ()),
                entry=row.entry,
                source=row.source,
                assignee=row.assignee,
                triage_channel=row.triage_channel,
                triage_ts=row.triage_ts,
                details=dict(row.details or {}),
                history=tuple(history[row.number]),
            )
            for row in rows
        ]


def open_store(url: str) -> TicketStore:
    """The store for ``url``: ``memory://``, ``sqlite:///path`` or ``postgresql://…``.

    Raises:
        StoreError: the database cannot be reached, or the URL is not one of those.
    """
    if url.strip().startswith("memory:"):
        return MemoryTicketStore()
    return SqlTicketStore(url)
