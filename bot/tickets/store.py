"""``SqlTicketStore``: the one :class:`~bot.tickets.model.TicketStore`, on SQLite or PostgreSQL.

Usage::

    store = SqlTicketStore("sqlite:///faqbot.sqlite3")  # or "postgresql://user@host/db"
    store = SqlTicketStore("sqlite://")                  # in memory: tests, faqbot chat

Every statement is a SQLAlchemy Core construct over the tables of :mod:`bot.tickets.schema`,
built once at import where it runs on a hot path, and every one runs through
:meth:`SqlTicketStore._run`: one transaction, committed when the work returns, database
failures raised as :class:`~bot.errors.StoreError`, a transaction that met a lost PostgreSQL
connection before it committed run again once.

What must happen once happens once even across processes sharing one database: the database
decides (unique keys for deliveries, dedupe keys and a thread's unresolved ticket; conditional
UPDATEs for the right to post to triage), never a check in Python followed by a write.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from bot.config import DEFAULT_DATABASE_URL
from bot.errors import StoreError
from bot.tickets.engine import FRESH, connect, table_of
from bot.tickets.model import (
    Intake,
    LoggedQuestion,
    NewTicket,
    Ticket,
    TicketEvent,
    UnknownTicketError,
    check_status,
    details_text,
    reopen_conflict,
    status_event,
)
from bot.tickets.runner import Runner
from bot.tickets.schema import MIGRATIONS, SCHEMA_VERSION, processed_events, schema_version, utc
from bot.tickets.statements import (
    CLAIM_POSTING,
    FIND_BY_THREAD,
    FIND_BY_TRIAGE,
    GET_TICKET,
    INSERT_EVENT,
    INSERT_QUESTION,
    INSERT_TICKET,
    INSERT_TICKET_IF_ABSENT,
    LOCK_TICKET,
    MARK_POSTED,
    PENDING,
    PG_MARK_POSTED,
    PG_SCHEMA_LOCK,
    PURGE_EVENTS,
    PURGE_QUESTIONS,
    RECORD_SCHEMA_VERSION,
    SCHEMA_VERSION_NOW,
    SET_DETAILS,
    SET_FEEDBACK,
    SET_PICKED,
    SET_STATUS,
    TOUCH_TICKET,
    UNRESOLVED_IN_THREAD,
    insert_keys,
    list_tickets,
    logged_questions,
    open_lookup,
    pg_take,
    question_params,
    ticket_params,
)

__all__ = ["Clock", "SqlTicketStore"]

T = TypeVar("T")
#: Where the store reads the time (injected by tests: leases expire without sleeping).
Clock = Callable[[], datetime]

#: Attempts at a write that races other writers on a unique key (a ticket's dedupe key, a
#: thread's unresolved ticket): the loser rolls back and looks again.
_OPEN_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


# -- helpers ------------------------------------------------------------------------------------


class _Contended(Exception):
    """A write lost a race to another writer (see ``_run``'s ``racing``)."""


class _StaleConnection(Exception):
    """A pooled connection was found lost before its transaction committed: nothing was
    written, so the transaction may run again on a new connection (see ``_run``)."""


class _AlreadyClaimed(Exception):
    """Raised inside ``take_delivery``'s transaction to roll it back: a key was taken."""


# -- the store ----------------------------------------------------------------------------------


class SqlTicketStore:
    """A :class:`~bot.tickets.model.TicketStore` in SQLite or PostgreSQL; the schema is created
    or upgraded on start.

    Args:
        url: ``sqlite:///PATH``, ``sqlite://`` (in memory) or ``postgresql://…`` (psycopg 3).
        clock: where the store reads the time (default: the system's, in UTC).

    Raises:
        StoreError: the database cannot be reached or its schema cannot be set up; every
            later failure of the database is raised as StoreError too. Messages never show a
            password.
    """

    def __init__(self, url: str = DEFAULT_DATABASE_URL, *, clock: Clock | None = None) -> None:
        self._db = connect(url)
        self.url = self._db.url  # as the user wrote it, never with its password
        self._exec = Runner(self._db.engine).execute
        self._clock = clock or _now
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SqlTicketStore({self.url!r})"

    # tickets

    def open_ticket(self, new: NewTicket) -> tuple[Ticket, bool]:
        return self._run(lambda conn: self._open_once(conn, new), write=True, racing=True)

    def get(self, number: int) -> Ticket | None:
        return self._run(lambda conn: self._ticket(conn, number))

    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        params = {"p_channel": channel, "p_thread": thread_ts}
        return next(iter(self._read(FIND_BY_THREAD, params)), None)

    def find_by_triage(self, channel: str, ts: str) -> Ticket | None:
        return next(iter(self._read(FIND_BY_TRIAGE, {"p_channel": channel, "p_ts": ts})), None)

    def list(
        self, *, status: str | None = None, requester: str | None = None, limit: int = 100
    ) -> builtins.list[Ticket]:
        query = list_tickets(status is not None, requester is not None)
        return self._read(query, {"p_status": status, "p_requester": requester,
                                  "p_limit": max(limit, 0)})

    def set_status(
        self, number: int, status: str, *, actor: str | None, assignee: str | None = None
    ) -> Ticket:
        check_status(status)

        def work(conn: sa.Connection) -> Ticket:
            row = self._lock_row(conn, number)
            if row.status == status and (assignee is None or assignee == row.assignee):
                return self._require(conn, number)
            if row.status == "resolved" and status != "resolved" and row.channel \
                    and row.thread_ts:
                other = self._exec(conn, UNRESOLVED_IN_THREAD, {
                    "p_channel": row.channel, "p_thread": row.thread_ts}).scalar()
                if other is not None:
                    raise reopen_conflict(number, other)
            kind, text = status_event(row.status, status, assignee)
            now = self._clock()
            self._exec(conn, SET_STATUS, {"p_number": number, "p_status": status,
                                          "p_assignee": assignee or row.assignee, "p_now": now})
            self._append(conn, number, kind, actor, text, now)
            return self._require(conn, number)

        return self._run(work, write=True)

    def add_event(self, number: int, kind: str, *, actor: str | None, text: str | None) -> Ticket:
        def work(conn: sa.Connection) -> Ticket:
            self._lock_row(conn, number)
            self._append(conn, number, kind, actor, text, self._clock())
            return self._require(conn, number)

        return self._run(work, write=True)

    def set_details(self, number: int, details: dict[str, str], *, actor: str | None) -> Ticket:
        def work(conn: sa.Connection) -> Ticket:
            row = self._lock_row(conn, number)
            self._exec(conn, SET_DETAILS, {"p_number": number,
                                           "p_details": {**(row.details or {}), **details}})
            self._append(conn, number, "details", actor, details_text(details), self._clock())
            return self._require(conn, number)

        return self._run(work, write=True)

    # triage posting

    def mark_posted(self, number: int, channel: str, ts: str) -> bool:
        params = {"p_number": number, "p_channel": channel, "p_ts": ts, "p_now": self._clock(),
                  "p_text": f"{channel} {ts}"}
        if not self._db.sqlite:
            runs = []

            def one_statement(conn: sa.Connection) -> bool:
                runs.append(conn)
                row = self._exec(conn, PG_MARK_POSTED, params).first()
                if row is None:
                    return False  # no such ticket
                # Run again after a lost connection, the first run may have committed: then
                # this very message is what is recorded.
                return row[0] == 1 or (len(runs) > 1 and (row[1], row[2]) == (channel, ts))

            return self._run(one_statement, write=True, single=True)

        def work(conn: sa.Connection) -> bool:
            # The conditional UPDATE (which also bumps updated_at, as _append would) decides;
            # the history line follows in the same transaction.
            if self._exec(conn, MARK_POSTED, params).rowcount != 1:
                return False
            self._insert_event(conn, number, "posted", None, params["p_text"], params["p_now"])
            return True

        return self._run(work, write=True)

    def claim_posting(self, number: int, worker: str, lease_seconds: float = 30) -> bool:
        now = self._clock()
        params = {"p_number": number, "p_now": now, "p_worker": worker,
                  "p_until": now + timedelta(seconds=lease_seconds)}
        # Harmless run again after a lost connection: the lease is this worker's.
        return self._run(lambda conn: self._exec(conn, CLAIM_POSTING, params).rowcount == 1,
                         write=True, single=True)

    def pending(self, limit: int = 100) -> builtins.list[Ticket]:
        return self._read(PENDING, {"p_limit": max(limit, 0)})

    def claim_event(self, key: str) -> bool:
        return self.claim_events([key])

    def claim_events(self, keys: Sequence[str]) -> bool:
        return self.take_delivery(keys).claimed

    def take_delivery(
        self,
        keys: Sequence[str],
        *,
        question: LoggedQuestion | None = None,
        ticket: NewTicket | None = None,
    ) -> Intake:
        unique = builtins.list(dict.fromkeys(keys))
        if not unique and question is None and ticket is None:
            return Intake(claimed=True)  # nothing to write
        params: dict[str, Any] = {f"p_key{i}": key for i, key in enumerate(unique)}
        params["p_at"] = self._clock()
        if not self._db.sqlite:
            return self._take_in_one_statement(unique, params, question, ticket)

        def work(conn: sa.Connection) -> Intake:
            if unique:
                try:
                    self._exec(conn, insert_keys(len(unique)), params)
                except sa.exc.IntegrityError:
                    raise _AlreadyClaimed from None  # a key seen before: all rolls back
            qid = self._insert_question(conn, question) if question is not None else None
            if ticket is None:
                return Intake(claimed=True, question_id=qid)
            opened, created = self._open_once(conn, ticket)
            return Intake(claimed=True, question_id=qid, ticket=opened, ticket_created=created)

        try:
            return self._run(work, write=True, racing=ticket is not None)
        except _AlreadyClaimed:
            return Intake(claimed=False)

    def _take_in_one_statement(self, unique: builtins.list[str], params: dict[str, Any],
                               question: LoggedQuestion | None,
                               ticket: NewTicket | None) -> Intake:
        """PostgreSQL: :meth:`take_delivery` in one statement (:func:`~bot.tickets.statements.
        pg_take`), one round trip instead of one per write. Without a ticket (most
        deliveries, and the /faq question log) in autocommit, and not run again after a lost
        connection (it may have committed); with one, in a transaction, as the thread's
        ticket or the dedupe key's may have to be looked up after it."""
        statement = pg_take(len(unique), question is not None, ticket is not None)
        at = params["p_at"]
        if question is not None:
            params.update(question_params(question, at))
        if ticket is not None:
            params.update(ticket_params(ticket, at))

        def work(conn: sa.Connection) -> Intake:
            try:
                qid, number = self._exec(conn, statement, params).rows[0]
            except sa.exc.IntegrityError as exc:
                if table_of(exc) == processed_events.name:
                    raise _AlreadyClaimed from None  # a key seen before: nothing recorded
                raise  # the ticket's dedupe key or thread, taken meanwhile: look again
            if ticket is None:
                return Intake(claimed=True, question_id=qid)
            if number is not None:
                return Intake(claimed=True, question_id=qid,
                              ticket=Ticket.opened(number, ticket, at), ticket_created=True)
            # The dedupe key or the thread's unresolved ticket exists (nothing opened): the
            # keys and the question are recorded; the ticket is decided in this transaction.
            opened, created = self._open_existing(conn, ticket, at)
            return Intake(claimed=True, question_id=qid, ticket=opened, ticket_created=created)

        try:
            if ticket is None:
                return self._run(work, write=True, single=True, rerun=False)
            return self._run(work, write=True, racing=True)
        except _AlreadyClaimed:
            return Intake(claimed=False)

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
        logged = LoggedQuestion(question=question, action=action, entry=entry, score=score,
                                reason=reason, requester=requester, channel=channel, at=at)
        # One statement (PostgreSQL: in autocommit), not run again after a lost connection.
        return self._run(lambda conn: self._insert_question(conn, logged), write=True,
                         single=True, rerun=False)

    def set_feedback(self, question_id: int, feedback: str) -> None:
        self._set_question(SET_FEEDBACK, {"p_id": question_id, "p_feedback": feedback})

    def set_picked(self, question_id: int, entry: str) -> None:
        self._set_question(SET_PICKED, {"p_id": question_id, "p_picked": entry})

    def _set_question(self, statement: sa.Update, params: dict[str, Any]) -> None:
        """Run ``statement`` on the logged question ``params["p_id"]``; LookupError if none."""
        if self._run(lambda conn: self._exec(conn, statement, params).rowcount, write=True) != 1:
            raise LookupError(f"no logged question {params['p_id']}")

    def questions(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        query = logged_questions(since is not None)
        rows = self._run(lambda conn: self._exec(conn, query, {"p_since": since}).rows)
        return [row._asdict() for row in rows]

    def purge_questions(self, older_than: datetime) -> int:
        return self._run(lambda conn: self._exec(conn, PURGE_QUESTIONS, {
            "p_before": older_than}).rowcount, write=True)

    def purge_events(self, older_than: datetime) -> int:
        return self._run(lambda conn: self._exec(conn, PURGE_EVENTS, {
            "p_before": older_than}).rowcount, write=True)

    def close(self) -> None:
        self._db.close()

    # schema

    def _migrate(self) -> None:
        """Create or upgrade the schema, one process at a time."""

        def work(conn: sa.Connection) -> None:  # SQLite: BEGIN IMMEDIATE holds the write lock
            if not self._db.sqlite:
                # DDL is transactional in PostgreSQL; this lock (released at commit) keeps two
                # processes starting at once from creating the same tables.
                self._exec(conn, PG_SCHEMA_LOCK)
            # DDL through SQLAlchemy's schema API (create, checking first).
            schema_version.create(conn, checkfirst=True)
            version = self._exec(conn, SCHEMA_VERSION_NOW).scalar() or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url}: the database schema is version {version}, newer than this "
                    f"faqbot understands ({SCHEMA_VERSION}); upgrade faqbot"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[number - 1](conn)
                self._exec(conn, RECORD_SCHEMA_VERSION, {"p_version": number,
                                                         "p_now": self._clock()})

        self._run(work, write=True)

    # the one way statements run

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool = False,
             racing: bool = False, single: bool = False, rerun: bool = True) -> T:
        """``work(conn)`` in one transaction, committed when it returns; its result.

        Every database failure is raised as a one-line :class:`StoreError`. A transaction
        that met a lost PostgreSQL connection before it committed (nothing was written) runs
        again, once, on a new connection; a failure at COMMIT itself never does (the commit
        may have happened), nor one on a connection just opened (the database is down).

        Args:
            write: the transaction writes (SQLite: it queues for the write lock up front).
            single: ``work`` runs one statement: on PostgreSQL it runs in autocommit, one
                round trip instead of three (BEGIN, the statement, COMMIT).
            rerun: run again after a lost connection. Pass False for a single statement that
                must not be recorded twice: in autocommit it may have committed.
            racing: ``work`` may lose a race on a unique key to another writer (a ticket's
                dedupe key, a thread's unresolved ticket): it then runs again, up to
                ``_OPEN_ATTEMPTS`` times, and sees the winner's row.
        """
        with self._translate():
            for _ in range(_OPEN_ATTEMPTS if racing else 1):
                try:
                    try:
                        return self._transaction(work, write=write, single=single,
                                                 retry=rerun)
                    except _StaleConnection:
                        return self._transaction(work, write=write, single=single,
                                                 retry=False)
                except (sa.exc.IntegrityError, _Contended):
                    if not racing:
                        raise
            raise StoreError(f"{self.url}: could not open a ticket: too much contention")

    def _transaction(self, work: Callable[[sa.Connection], T], *, write: bool,
                     single: bool, retry: bool) -> T:
        db = self._db
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler with a growing back-off: under load, threads lose most of
        # their time there. Queueing this process's writers on a Python lock hands the write
        # lock over at once; other processes on the same file queue on an flock (WriterQueue).
        if single and not db.sqlite:
            return self._autocommit(work, retry=retry)
        local = db.write_lock if write else None
        shared = db.writers if write else None
        with db.serial or nullcontext(), local or nullcontext(), shared or nullcontext(), \
                db.engine.connect() as conn:
            if write and db.sqlite:
                # Take the write lock up front; busy_timeout then makes writers queue.
                conn.execution_options(faqbot_begin="BEGIN IMMEDIATE")
            fresh = not db.sqlite and conn.connection.info.pop(FRESH, False)
            with conn.begin():
                try:
                    return work(conn)
                except Exception as exc:
                    # Lost before COMMIT was sent (or, in autocommit, with ``retry`` for a
                    # statement that may run twice): the server rolls the transaction back.
                    if retry and not db.sqlite and not fresh and db.lost(conn, exc):
                        conn.invalidate()
                        raise _StaleConnection from exc
                    raise

    def _autocommit(self, work: Callable[[Any], T], *, retry: bool) -> T:
        """PostgreSQL, one statement: on a pooled connection in autocommit (one round trip, no
        BEGIN and no COMMIT), without an SQLAlchemy connection around it."""
        pooled = self._db.engine.raw_connection()
        try:
            fresh = pooled.info.pop(FRESH, False)
            dbapi_conn: Any = pooled.dbapi_connection
            dbapi_conn.autocommit = True
            try:
                return work(pooled)
            except Exception as exc:
                if retry and not fresh and self._db.lost(pooled, exc):
                    pooled.invalidate()
                    raise _StaleConnection from exc
                raise
            finally:
                if not dbapi_conn.closed:
                    dbapi_conn.autocommit = False
        finally:
            pooled.close()  # back to the pool (or discarded, when invalidated)

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Raise every database failure as a one-line :class:`StoreError`."""
        try:
            yield
        except (sa.exc.SQLAlchemyError, self._db.dbapi_error) as exc:
            raise StoreError(self._db.describe(exc)) from exc

    # queries (inside a transaction)

    def _open_once(self, conn: sa.Connection, new: NewTicket) -> tuple[Ticket, bool]:
        now = self._clock()
        found = None
        if self._db.sqlite:  # one writer at a time: look, then insert
            found = self._open_lookup(conn, new)
            number = None
            if found == (None, None):
                number = self._exec(conn, INSERT_TICKET, ticket_params(new, now)).scalar()
        else:  # concurrent writers: look and insert in one statement
            number = self._exec(conn, INSERT_TICKET_IF_ABSENT, ticket_params(new, now)).scalar()
        if number is not None:
            # A new row already carries updated_at = now: the history line is all _append
            # adds. Everything is known: build the ticket rather than read it back.
            self._insert_event(conn, number, "opened", new.requester, new.reason, now)
            return Ticket.opened(number, new, now), True
        return self._open_existing(conn, new, now, found)

    def _open_existing(self, conn: sa.Connection, new: NewTicket, now: datetime,
                       found: tuple[int | None, int | None] | None = None) -> tuple[Ticket, bool]:
        """``new`` was not inserted: its dedupe key's ticket, or a follow-up on its thread's
        unresolved ticket (``found``: what :meth:`_open_lookup` returned, if it has run in
        this transaction)."""
        deduped, existing = found if found is not None else self._open_lookup(conn, new)
        if deduped is not None:
            return self._require(conn, deduped), False
        if existing is None:
            raise _Contended  # what kept it out changed meanwhile (PostgreSQL): look again
        self._append(
            conn, existing, "follow_up", new.requester, new.question, now, new.dedupe_key
        )
        return self._require(conn, existing), False

    def _open_lookup(self, conn: sa.Connection, new: NewTicket) -> tuple[int | None, int | None]:
        """One statement for what opening a ticket must know first: ``(deduped, unresolved)``,
        the ticket that already took ``new.dedupe_key`` (as its own key or a follow-up's) and
        the unresolved ticket of ``new``'s thread, each None when there is none."""
        dedupe = new.dedupe_key is not None
        thread = new.channel is not None and new.thread_ts is not None
        if not dedupe and not thread:
            return None, None
        params = {"p_dedupe": new.dedupe_key, "p_channel": new.channel, "p_thread": new.thread_ts}
        deduped = existing = None
        for number, kind in self._exec(conn, open_lookup(dedupe, thread), params).rows:
            if int(kind) == 0:
                deduped = deduped if deduped is not None else number
            elif existing is None:
                existing = number
        return deduped, existing

    def _lock_row(self, conn: sa.Connection, number: int) -> Any:
        """The ticket's row, locked until commit (PostgreSQL; SQLite holds the write lock)."""
        row = self._exec(conn, LOCK_TICKET, {"p_number": number}).first()
        if row is None:
            raise UnknownTicketError(number)
        return row

    def _append(self, conn: sa.Connection, number: int, kind: str, actor: str | None,
                text: str | None, at: datetime, dedupe_key: str | None = None) -> None:
        """A history line, and the ticket's ``updated_at``."""
        self._insert_event(conn, number, kind, actor, text, at, dedupe_key)
        self._exec(conn, TOUCH_TICKET, {"p_number": number, "p_now": at})

    def _insert_event(self, conn: sa.Connection, number: int, kind: str, actor: str | None,
                      text: str | None, at: datetime, dedupe_key: str | None = None) -> None:
        self._exec(conn, INSERT_EVENT, {"ticket": number, "kind": kind, "actor": actor,
                                        "text": text, "at": at, "dedupe_key": dedupe_key})

    def _insert_question(self, conn: sa.Connection, logged: LoggedQuestion) -> int:
        return int(self._exec(conn, INSERT_QUESTION, {
            "at": utc(logged.at) if logged.at is not None else self._clock(),
            "requester": logged.requester,
            "channel": logged.channel,
            "question": logged.question,
            "action": logged.action,
            "entry": logged.entry,
            "score": logged.score,
            "reason": logged.reason,
        }).scalar())

    def _ticket(self, conn: sa.Connection, number: int) -> Ticket | None:
        found = self._load(conn, GET_TICKET, {"p_number": number})
        return found[0] if found else None

    def _require(self, conn: sa.Connection, number: int) -> Ticket:
        ticket = self._ticket(conn, number)
        if ticket is None:
            raise UnknownTicketError(number)
        return ticket

    def _read(self, query: sa.Select[Any], params: dict[str, Any]) -> builtins.list[Ticket]:
        return self._run(lambda conn: self._load(conn, query, params))

    def _load(self, conn: sa.Connection, query: sa.Select[Any],
              params: dict[str, Any]) -> builtins.list[Ticket]:
        """The tickets ``query`` (one of the statements' ``_with_history`` selects) returns:
        one row per history line, grouped back into tickets in the query's order."""
        found: builtins.list[Ticket] = []
        row: Any = None
        history: builtins.list[TicketEvent] = []
        for line in self._exec(conn, query, params).rows:
            if row is None or line.number != row.number:
                if row is not None:
                    found.append(Ticket.from_row(row, history))
                row, history = line, []
            if line.h_kind is not None:
                history.append(TicketEvent(line.h_kind, line.h_actor, line.h_text, line.h_at))
        if row is not None:
            found.append(Ticket.from_row(row, history))
        return found
