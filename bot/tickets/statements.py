"""The ticket store's statements: SQLAlchemy Core constructs over :mod:`bot.tickets.schema`.

Every statement the store runs is here, built once (at import, or once per shape through
``functools.cache``) with bound parameters, and run by :class:`bot.tickets.runner.Runner`,
which compiles each once.

A few have a PostgreSQL form (``pg_*``) that does in one statement, and so one round trip,
what takes several elsewhere: PostgreSQL runs data-modifying ``WITH`` clauses, SQLite does not.
They are built from the same tables, and run the same way as every other statement.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.tickets.model import LoggedQuestion, NewTicket
from bot.tickets.schema import (
    processed_events,
    questions,
    schema_version,
    ticket_events,
    tickets,
    utc,
    when,
)

__all__ = [
    "CLAIM_POSTING",
    "FIND_BY_THREAD",
    "FIND_BY_TRIAGE",
    "GET_TICKET",
    "INSERT_EVENT",
    "INSERT_QUESTION",
    "INSERT_TICKET_IF_ABSENT",
    "LOCK_TICKET",
    "MARK_POSTED",
    "PENDING",
    "PG_MARK_POSTED",
    "PG_SCHEMA_LOCK",
    "PURGE_EVENTS",
    "PURGE_QUESTIONS",
    "RECORD_SCHEMA_VERSION",
    "SCHEMA_VERSION_NOW",
    "SET_DETAILS",
    "SET_FEEDBACK",
    "SET_PICKED",
    "SET_STATUS",
    "TOUCH_TICKET",
    "UNRESOLVED_IN_THREAD",
    "insert_keys",
    "list_tickets",
    "logged_questions",
    "open_lookup",
    "pg_take",
    "question_params",
    "ticket_params",
]


def _param(name: str, type_: Any) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=type_)


_P_NUMBER = _param("p_number", sa.Integer)
_P_NOW = _param("p_now", when())
_P_WORKER = _param("p_worker", sa.String)
_P_CHANNEL = _param("p_channel", sa.String)

INSERT_QUESTION = sa.insert(questions).returning(questions.c.id)
INSERT_EVENT = sa.insert(ticket_events)
TOUCH_TICKET = sa.update(tickets).where(tickets.c.number == _P_NUMBER).values(updated_at=_P_NOW)
#: The right to post a ticket to triage: one conditional UPDATE, so that the database lets
#: exactly one of the racing workers match.
CLAIM_POSTING = (
    sa.update(tickets)
    .where(
        tickets.c.number == _P_NUMBER,
        tickets.c.triage_ts.is_(None),
        sa.or_(
            tickets.c.post_lease_until.is_(None),
            tickets.c.post_lease_until <= _P_NOW,
            tickets.c.post_lease_owner == _P_WORKER,
        ),
    )
    .values(post_lease_owner=_P_WORKER, post_lease_until=_param("p_until", when()))
)
MARK_POSTED = (
    sa.update(tickets)
    .where(tickets.c.number == _P_NUMBER, tickets.c.triage_ts.is_(None))
    .values(
        triage_channel=_P_CHANNEL,
        triage_ts=_param("p_ts", sa.String),
        post_lease_owner=None,
        post_lease_until=None,
        updated_at=_P_NOW,
    )
)
LOCK_TICKET = sa.select(tickets).where(tickets.c.number == _P_NUMBER).with_for_update()
SET_STATUS = (
    sa.update(tickets)
    .where(tickets.c.number == _P_NUMBER)
    .values(status=_param("p_status", sa.String), assignee=_param("p_assignee", sa.String),
            updated_at=_P_NOW)
)
SET_DETAILS = (
    sa.update(tickets)
    .where(tickets.c.number == _P_NUMBER)
    .values(details=_param("p_details", sa.JSON))
)
SET_FEEDBACK = (
    sa.update(questions)
    .where(questions.c.id == _param("p_id", sa.Integer))
    .values(feedback=_param("p_feedback", sa.String))
)
SET_PICKED = (
    sa.update(questions)
    .where(questions.c.id == _param("p_id", sa.Integer))
    .values(picked=_param("p_picked", sa.String))
)
PURGE_QUESTIONS = sa.delete(questions).where(questions.c.at < _param("p_before", when()))
PURGE_EVENTS = sa.delete(processed_events).where(
    processed_events.c.at < _param("p_before", when()))


def _with_history(query: sa.Select[Any], newest_first: bool) -> sa.Select[Any]:
    """The tickets ``query`` selects, one row per history line (``h_*`` columns; NULL for a
    ticket without one), tickets in number order (``newest_first``: descending), each
    ticket's lines in order. One statement, so one consistent read of tickets and history."""
    selected = query.subquery("s")
    number = selected.c.number.desc() if newest_first else selected.c.number
    return (
        sa.select(
            selected,
            ticket_events.c.kind.label("h_kind"),
            ticket_events.c.actor.label("h_actor"),
            ticket_events.c.text.label("h_text"),
            ticket_events.c.at.label("h_at"),
        )
        .select_from(selected.outerjoin(ticket_events,
                                        ticket_events.c.ticket == selected.c.number))
        .order_by(number, ticket_events.c.id)
    )


_P_LIMIT = _param("p_limit", sa.Integer)
GET_TICKET = _with_history(sa.select(tickets).where(tickets.c.number == _P_NUMBER), False)
#: The thread's newest ticket, any status.
FIND_BY_THREAD = _with_history(
    sa.select(tickets)
    .where(tickets.c.channel == _P_CHANNEL, tickets.c.thread_ts == _param("p_thread", sa.String))
    .order_by(tickets.c.number.desc())
    .limit(1),
    True,
)
FIND_BY_TRIAGE = _with_history(
    sa.select(tickets).where(tickets.c.triage_channel == _P_CHANNEL,
                             tickets.c.triage_ts == _param("p_ts", sa.String)),
    False,
)
#: Tickets not posted to triage yet, oldest first, at most ``p_limit``.
PENDING = _with_history(
    sa.select(tickets).where(tickets.c.triage_ts.is_(None))
    .order_by(tickets.c.number).limit(_P_LIMIT),
    False,
)


@functools.cache
def list_tickets(status: bool, requester: bool) -> sa.Select[Any]:
    """Newest first, at most ``p_limit``; with ``status``/``requester``, only those whose
    status is ``p_status``/requester is ``p_requester``."""
    query = sa.select(tickets).order_by(tickets.c.number.desc()).limit(_P_LIMIT)
    if status:
        query = query.where(tickets.c.status == _param("p_status", sa.String))
    if requester:
        query = query.where(tickets.c.requester == _param("p_requester", sa.String))
    return _with_history(query, True)


@functools.cache
def logged_questions(since: bool) -> sa.Select[Any]:
    """The question log oldest first; with ``since``, from ``p_since`` on."""
    query = sa.select(questions).order_by(questions.c.at, questions.c.id)
    if since:
        query = query.where(questions.c.at >= _param("p_since", when()))
    return query


# -- the schema's own bookkeeping (bot.tickets.store._migrate) ---------------------------------

#: PostgreSQL: the lock (released at commit) that keeps two processes starting at once from
#: creating the same tables; DDL is transactional there.
PG_SCHEMA_LOCK = sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(
    sa.literal("faqbot schema ") + sa.func.coalesce(sa.func.current_schema(), ""))))
SCHEMA_VERSION_NOW = sa.select(sa.func.max(schema_version.c.version))
RECORD_SCHEMA_VERSION = sa.insert(schema_version).values(
    version=_param("p_version", sa.Integer), applied_at=_P_NOW)
UNRESOLVED_IN_THREAD = sa.select(tickets.c.number).where(
    tickets.c.channel == _P_CHANNEL,
    tickets.c.thread_ts == _param("p_thread", sa.String),
    tickets.c.status != "resolved",
)


@functools.cache
def insert_keys(count: int) -> sa.Insert:
    """A delivery's ``count`` keys (``p_key0``…, all at ``p_at``) in one INSERT; a delivery
    has one to three keys, so there are a few of these, each built and compiled once."""
    at = _param("p_at", when())
    rows = [sa.select(_param(f"p_key{i}", sa.String), at) for i in range(count)]
    source = rows[0] if count == 1 else sa.union_all(*rows)
    return sa.insert(processed_events).from_select(["key", "at"], source)


def _lookup(dedupe: bool, thread: bool) -> sa.Select[Any] | sa.CompoundSelect:
    key = _param("p_dedupe", sa.String)
    parts: list[sa.Select[Any]] = []
    if dedupe:
        parts.append(sa.select(tickets.c.number, sa.literal_column("0").label("kind"))
                     .where(tickets.c.dedupe_key == key))
        parts.append(sa.select(ticket_events.c.ticket, sa.literal_column("0"))
                     .where(ticket_events.c.dedupe_key == key))
    if thread:
        parts.append(sa.select(tickets.c.number, sa.literal_column("1")).where(
            tickets.c.channel == _P_CHANNEL,
            tickets.c.thread_ts == _param("p_thread", sa.String),
            tickets.c.status != "resolved",
        ))
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


_LOOKUPS = {
    (dedupe, thread): _lookup(dedupe, thread)
    for dedupe in (False, True) for thread in (False, True) if dedupe or thread
}


def open_lookup(dedupe: bool, thread: bool) -> sa.Select[Any] | sa.CompoundSelect:
    """What opening a ticket must know first, in one statement: rows ``(number, kind)``, kind
    0 for the ticket that took ``p_dedupe`` (as its own key or a follow-up's), 1 for the
    unresolved ticket of thread ``p_channel``/``p_thread``."""
    return _LOOKUPS[dedupe, thread]


# -- PostgreSQL: several writes in one statement -----------------------------------------------

#: Recording a ticket's triage message and its history line in one statement, which also reads
#: what was recorded before (the outer SELECT sees the row as it was before the UPDATE): rows
#: ``(updated, triage_channel, triage_ts)``.
_posted = MARK_POSTED.returning(tickets.c.number).cte("u")
PG_MARK_POSTED = (
    sa.select(
        sa.select(sa.func.count()).select_from(_posted).scalar_subquery(),
        tickets.c.triage_channel,
        tickets.c.triage_ts,
    )
    .where(tickets.c.number == _P_NUMBER)
    .add_cte(
        sa.insert(ticket_events).from_select(
            ["ticket", "kind", "text", "at"],
            sa.select(_posted.c.number, sa.literal("posted"), _param("p_text", sa.Text), _P_NOW),
        ).cte("e")
    )
)


def _question_cte() -> sa.CTE:
    return (
        sa.insert(questions)
        .values(
            at=_param("q_at", when()),
            requester=_param("q_requester", sa.String),
            channel=_param("q_channel", sa.String),
            question=_param("q_question", sa.Text),
            action=_param("q_action", sa.String),
            entry=_param("q_entry", sa.String),
            score=_param("q_score", sa.Float),
            reason=_param("q_reason", sa.String),
        )
        .returning(questions.c.id)
        .cte("q")
    )


#: A new ticket's empty ``details``, written in the SQL (a bound ``{}`` would be serialised to
#: JSON again for every ticket).
_NO_DETAILS = sa.literal_column("'{}'", sa.JSON)


def _new_ticket() -> dict[str, Any]:
    """A new ticket's columns and their values (parameters ``t_*``), in the table's order."""
    at = _param("t_at", when())
    return {
        "requester": _param("t_requester", sa.String), "team": _param("t_team", sa.String),
        "channel": _param("t_channel", sa.String), "thread_ts": _param("t_thread", sa.String),
        "message_ts": _param("t_message", sa.String), "question": _param("t_question", sa.Text),
        "candidates": _param("t_candidates", sa.JSON), "entry": _param("t_entry", sa.String),
        "reason": _param("t_reason", sa.String), "status": sa.literal("open", sa.String),
        "source": _param("t_source", sa.String), "details": _NO_DETAILS,
        "dedupe_key": _param("t_dedupe", sa.String), "created_at": at, "updated_at": at,
        "post_lease_owner": _param("t_lease_owner", sa.String),
        "post_lease_until": _param("t_lease_until", when()),
    }


def _insert_ticket_if_absent() -> sa.Insert:
    row = _new_ticket()
    dedupe, channel, thread = row["dedupe_key"], row["channel"], row["thread_ts"]
    values = sa.select(*row.values()).where(
        ~sa.exists().where(tickets.c.dedupe_key == dedupe),
        ~sa.exists().where(ticket_events.c.dedupe_key == dedupe),
        ~sa.exists().where(tickets.c.channel == channel, tickets.c.thread_ts == thread,
                           tickets.c.status != "resolved"),
    )
    return sa.insert(tickets).from_select(list(row), values).returning(tickets.c.number)


#: A new ticket (parameters ``t_*``), inserted only when what :func:`open_lookup` looks for
#: does not exist (a NULL dedupe key or thread matches nothing): its number, or no row.
INSERT_TICKET_IF_ABSENT = _insert_ticket_if_absent()


def _insert_ticket() -> sa.Insert:
    return sa.insert(tickets).values(**_new_ticket()).returning(tickets.c.number)


#: A new ticket (parameters ``t_*``), unconditionally: its number. For SQLite, whose one writer
#: at a time has looked with :func:`open_lookup` first; there an INSERT … SELECT that reads
#: its own table goes through a temporary table and takes about three times as long.
INSERT_TICKET = _insert_ticket()


def _ticket_ctes() -> tuple[sa.CTE, sa.CTE]:
    """:data:`INSERT_TICKET_IF_ABSENT` and the new ticket's first history line."""
    ticket = _insert_ticket_if_absent().cte("t")
    requester = _param("t_requester", sa.String)
    opened = sa.insert(ticket_events).from_select(
        ["ticket", "kind", "actor", "text", "at"],
        sa.select(ticket.c.number, sa.literal("opened", sa.String), requester,
                  _param("t_reason", sa.String), _param("t_at", when())),
    ).cte("o")
    return ticket, opened


@functools.cache
def pg_take(keys: int, question: bool, ticket: bool) -> sa.Select[Any]:
    """PostgreSQL: a delivery's ``keys`` keys (as :func:`insert_keys`), its question (when
    ``question``: parameters ``q_*``) and its new ticket (when ``ticket``: ``t_*``) in one
    statement; one row ``(question id or NULL, new ticket number or NULL)``.

    A key claimed before fails the whole statement on the unique key of
    ``processed_events``: nothing is recorded. When the ticket's dedupe key or its thread's
    unresolved ticket exists, no ticket is inserted (NULL): the caller looks it up."""
    columns: list[Any] = [sa.null(), sa.null()]
    ctes: list[sa.CTE] = []
    if keys:
        ctes.append(insert_keys(keys).cte("k"))
    if question:
        q = _question_cte()
        columns[0] = sa.select(q.c.id).scalar_subquery()
    if ticket:
        t, opened = _ticket_ctes()
        columns[1] = sa.select(t.c.number).scalar_subquery()
        ctes.append(opened)
    return sa.select(*columns).add_cte(*ctes)


def question_params(question: LoggedQuestion, at: datetime) -> dict[str, Any]:
    """The ``q_*`` parameters of :func:`pg_take` for ``question``, logged at ``at`` unless it
    says when."""
    return {
        "q_at": utc(question.at) if question.at is not None else at,
        "q_requester": question.requester, "q_channel": question.channel,
        "q_question": question.question, "q_action": question.action,
        "q_entry": question.entry, "q_score": question.score, "q_reason": question.reason,
    }


def ticket_params(new: NewTicket, at: datetime) -> dict[str, Any]:
    """The ``t_*`` parameters of :data:`INSERT_TICKET`, :data:`INSERT_TICKET_IF_ABSENT` and
    :func:`pg_take`."""
    return {
        "t_requester": new.requester, "t_team": new.team, "t_channel": new.channel,
        "t_thread": new.thread_ts, "t_message": new.message_ts, "t_question": new.question,
        "t_candidates": [dict(c) for c in new.candidates], "t_entry": new.entry,
        "t_reason": new.reason, "t_source": new.source, "t_dedupe": new.dedupe_key,
        "t_at": at, "t_lease_owner": new.lease.owner if new.lease else None,
        "t_lease_until": at + timedelta(seconds=new.lease.seconds) if new.lease else None,
    }
