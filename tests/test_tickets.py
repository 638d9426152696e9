"""The ticket store: one set of tests run against every backend.

SQLite (a file, and ``sqlite://`` in memory) always runs; PostgreSQL runs when
``TEST_DATABASE_URL`` is set, e.g. ``TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test``.
Each PostgreSQL test gets a schema of its own (through ``search_path``), dropped afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.tickets import (
    SCHEMA_VERSION,
    Intake,
    LoggedQuestion,
    NewTicket,
    PostingLease,
    SqlTicketStore,
    Ticket,
    TicketStore,
    UnknownTicketError,
    format_ticket_id,
    open_store,
    parse_ticket_id,
)

PG_ENV = "TEST_DATABASE_URL"


def _admin_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, isolation_level="AUTOCOMMIT")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, empty schema (dropped afterwards)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL tests")
    schema = f"faqbot_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(base)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(base).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'faqbot.sqlite3'}"
    if backend == "sqlite-memory":
        return "sqlite://"
    return request.getfixturevalue("pg_url")


POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgres)


@pytest.fixture(params=["sqlite", "sqlite-memory", POSTGRESQL])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url_for(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRESQL])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a store that outlives its store object (not memory)."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[TicketStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def new(question: str = "Why was my app rejected?", **fields: Any) -> NewTicket:
    fields.setdefault("requester", "U1")
    fields.setdefault("reason", "no_match")
    return NewTicket(question=question, **fields)


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised below in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


class TestTicketIds:
    """Human ids are FAQ-<number>, parsed back case-insensitively."""

    @pytest.mark.parametrize(
        ("text", "number"),
        [("FAQ-42", 42), ("faq-7", 7), (" 12 ", 12), ("FAQ-", None), ("abc", None), ("-3", None)],
    )
    def test_parse(self, text: str, number: int | None) -> None:
        """Ids with or without the prefix parse; anything else is None."""
        assert parse_ticket_id(text) == number

    def test_format_round_trips(self) -> None:
        """format_ticket_id and parse_ticket_id are inverses."""
        assert parse_ticket_id(format_ticket_id(314)) == 314


class TestOpenStore:
    """open_store picks the implementation from the URL."""

    def test_memory(self) -> None:
        """memory:// (as before the in-memory store was folded into SQL) is SQLite in memory."""
        store = open_store("memory://")
        try:
            assert isinstance(store, SqlTicketStore)
            assert store.url == "sqlite://"
            assert store.open_ticket(new())[0].id == "FAQ-1"
        finally:
            store.close()

    def test_sqlite(self, tmp_path: Path) -> None:
        """sqlite:///PATH gives a SqlTicketStore and creates the file."""
        path = tmp_path / "t.sqlite3"
        store = open_store(f"sqlite:///{path}")
        try:
            assert isinstance(store, SqlTicketStore)
            assert path.exists()
        finally:
            store.close()


class TestOpenTicket:
    """Opening, reading and listing tickets."""

    def test_open_and_get(self, store: TicketStore) -> None:
        """Every field given when opening comes back, with the human id and an 'opened' line."""
        candidates = ({"entry": "review-time", "question": "How long?", "score": 55.5},)
        ticket, created = store.open_ticket(
            new(
                "Why was my <app> rejected? @here",
                team="T1",
                channel="C1",
                thread_ts="100.1",
                message_ts="100.2",
                candidates=candidates,
                entry="not-approved",
                source="slack",
            )
        )
        assert created
        assert ticket.id == "FAQ-1"
        assert store.get(ticket.number) == ticket
        assert ticket.question == "Why was my <app> rejected? @here"  # verbatim
        assert (ticket.team, ticket.channel, ticket.thread_ts, ticket.message_ts) == (
            "T1", "C1", "100.1", "100.2"
        )
        assert ticket.candidates == candidates
        assert (ticket.entry, ticket.reason, ticket.status) == ("not-approved", "no_match", "open")
        assert not ticket.posted and ticket.assignee is None and ticket.details == {}
        assert [e.kind for e in ticket.history] == ["opened"]
        assert ticket.created_at.tzinfo is not None
        assert abs(ticket.created_at - datetime.now(UTC)) < timedelta(minutes=1)

    def test_numbers_count_up(self, store: TicketStore) -> None:
        """Each new ticket gets the next number."""
        ids = [store.open_ticket(new(f"q{i}"))[0].id for i in range(3)]
        assert ids == ["FAQ-1", "FAQ-2", "FAQ-3"]

    def test_get_unknown(self, store: TicketStore) -> None:
        """An unknown number is None."""
        assert store.get(999) is None

    def test_list_newest_first_with_filters(self, store: TicketStore) -> None:
        """list() is newest first and filters by status, requester and limit."""
        first, _ = store.open_ticket(new("one", requester="U1"))
        second, _ = store.open_ticket(new("two", requester="U2"))
        third, _ = store.open_ticket(new("three", requester="U1"))
        store.set_status(second.number, "resolved", actor="U9")
        assert [t.number for t in store.list()] == [3, 2, 1]
        assert [t.number for t in store.list(status="open")] == [3, 1]
        assert [t.number for t in store.list(status="resolved")] == [2]
        assert [t.number for t in store.list(requester="U1")] == [3, 1]
        assert [t.number for t in store.list(limit=2)] == [3, 2]
        assert store.list(requester="nobody") == []
        assert store.list()[0].history == third.history

    def test_to_json(self, store: TicketStore) -> None:
        """to_json has at least the fields ``tickets list --json`` promises."""
        ticket, _ = store.open_ticket(new())
        data = ticket.to_json()
        assert {"id", "status", "reason", "requester", "question", "created_at"} <= set(data)
        assert data["id"] == "FAQ-1"
        assert datetime.fromisoformat(data["created_at"]) == ticket.created_at


class TestThreads:
    """One unresolved ticket per thread; more questions become follow-ups."""

    def test_second_question_is_a_follow_up(self, store: TicketStore) -> None:
        """A second question in a thread with an open ticket adds a follow_up, not a ticket."""
        first, created = store.open_ticket(new("first", channel="C1", thread_ts="1.0"))
        again, created_again = store.open_ticket(
            new("and another thing", requester="U2", channel="C1", thread_ts="1.0")
        )
        assert created and not created_again
        assert again.number == first.number
        assert again.question == "first"
        follow_up = again.history[-1]
        assert (follow_up.kind, follow_up.actor, follow_up.text) == (
            "follow_up", "U2", "and another thing"
        )
        assert len(store.list()) == 1

    def test_other_threads_and_no_thread_get_their_own(self, store: TicketStore) -> None:
        """Different threads, and tickets without a thread, never merge."""
        store.open_ticket(new(channel="C1", thread_ts="1.0"))
        _, other_thread = store.open_ticket(new(channel="C1", thread_ts="2.0"))
        _, other_channel = store.open_ticket(new(channel="C2", thread_ts="1.0"))
        _, no_thread = store.open_ticket(new())
        _, no_thread_again = store.open_ticket(new())
        assert other_thread and other_channel and no_thread and no_thread_again

    def test_resolved_thread_opens_a_new_ticket(self, store: TicketStore) -> None:
        """Once the thread's ticket is resolved, a new question opens a new ticket."""
        first, _ = store.open_ticket(new(channel="C1", thread_ts="1.0"))
        store.set_status(first.number, "resolved", actor="S1")
        second, created = store.open_ticket(new("again", channel="C1", thread_ts="1.0"))
        assert created and second.number != first.number
        assert store.find_by_thread("C1", "1.0") == second
        assert store.find_by_thread("C1", "9.9") is None

    def test_find_by_thread_any_status(self, store: TicketStore) -> None:
        """find_by_thread returns the thread's newest ticket even when resolved."""
        ticket, _ = store.open_ticket(new(channel="C1", thread_ts="1.0"))
        store.set_status(ticket.number, "resolved", actor="S1")
        found = store.find_by_thread("C1", "1.0")
        assert found is not None and found.number == ticket.number
        assert found.status == "resolved"

    def test_reopen_conflict(self, store: TicketStore) -> None:
        """Reopening a ticket whose thread already has an open one is refused."""
        first, _ = store.open_ticket(new(channel="C1", thread_ts="1.0"))
        store.set_status(first.number, "resolved", actor="S1")
        store.open_ticket(new("again", channel="C1", thread_ts="1.0"))
        with pytest.raises(StoreError, match="FAQ-2"):
            store.set_status(first.number, "open", actor="S1")
        assert store.get(first.number).status == "resolved"


class TestDedupe:
    """The same dedupe key (a Slack event id) opens at most one ticket."""

    def test_same_key_twice(self, store: TicketStore) -> None:
        """The second call returns the first ticket with created False."""
        first, created = store.open_ticket(new(dedupe_key="Ev1"))
        again, created_again = store.open_ticket(new("different text", dedupe_key="Ev1"))
        assert created and not created_again
        assert again == first
        assert len(store.list()) == 1

    def test_follow_up_key_twice(self, store: TicketStore) -> None:
        """A follow-up delivered twice is recorded once."""
        store.open_ticket(new(channel="C1", thread_ts="1.0", dedupe_key="Ev1"))
        store.open_ticket(new("more", channel="C1", thread_ts="1.0", dedupe_key="Ev2"))
        ticket, created = store.open_ticket(
            new("more", channel="C1", thread_ts="1.0", dedupe_key="Ev2")
        )
        assert not created
        assert [e.kind for e in ticket.history] == ["opened", "follow_up"]

    def test_threads_racing(self, store: TicketStore) -> None:
        """Eight threads opening with the same key make one ticket, and all see it."""
        results = race(8, lambda i: store.open_ticket(new(f"q{i}", dedupe_key="Ev1")))
        assert sum(created for _, created in results) == 1
        assert {ticket.number for ticket, _ in results} == {1}
        assert len(store.list()) == 1

    def test_threads_racing_in_one_thread(self, store: TicketStore) -> None:
        """Eight questions racing in one Slack thread make one ticket and seven follow-ups."""
        results = race(
            8, lambda i: store.open_ticket(new(f"q{i}", channel="C1", thread_ts="1.0"))
        )
        assert sum(created for _, created in results) == 1
        ticket = store.get(results[0][0].number)
        assert [e.kind for e in ticket.history].count("follow_up") == 7
        assert len(store.list()) == 1


class TestStatus:
    """Status, assignee, events and details, each leaving a line of history."""

    def test_status_changes_and_history(self, store: TicketStore) -> None:
        """taken, resolved and reopened lines follow the status changes, with actor and text."""
        ticket, _ = store.open_ticket(new())
        taken = store.set_status(ticket.number, "in_progress", actor="S1", assignee="S1")
        assert (taken.status, taken.assignee) == ("in_progress", "S1")
        resolved = store.set_status(ticket.number, "resolved", actor="S1")
        assert resolved.assignee == "S1"  # kept when not given
        reopened = store.set_status(ticket.number, "open", actor="U1")
        assert [(e.kind, e.actor) for e in reopened.history] == [
            ("opened", "U1"), ("taken", "S1"), ("resolved", "S1"), ("reopened", "U1")
        ]
        assert reopened.history[1].text == "open -> in_progress (assignee S1)"
        assert reopened.updated_at >= reopened.created_at
        assert store.get(ticket.number) == reopened

    def test_same_status_changes_nothing(self, store: TicketStore) -> None:
        """Resolving a resolved ticket adds no history."""
        ticket, _ = store.open_ticket(new())
        once = store.set_status(ticket.number, "resolved", actor="S1")
        twice = store.set_status(ticket.number, "resolved", actor="S2")
        assert twice == once

    def test_new_assignee_only(self, store: TicketStore) -> None:
        """A new assignee with the same status is an 'assigned' line."""
        ticket, _ = store.open_ticket(new())
        store.set_status(ticket.number, "in_progress", actor="S1", assignee="S1")
        moved = store.set_status(ticket.number, "in_progress", actor="S1", assignee="S2")
        assert moved.assignee == "S2"
        assert (moved.history[-1].kind, moved.history[-1].text) == ("assigned", "assignee S2")

    def test_bad_status_and_unknown_ticket(self, store: TicketStore) -> None:
        """An unknown status is a ValueError; an unknown ticket an UnknownTicketError."""
        ticket, _ = store.open_ticket(new())
        with pytest.raises(ValueError, match="closed"):
            store.set_status(ticket.number, "closed", actor=None)
        with pytest.raises(UnknownTicketError, match="FAQ-99"):
            store.set_status(99, "resolved", actor=None)
        with pytest.raises(UnknownTicketError):
            store.add_event(99, "reply", actor=None, text=None)
        with pytest.raises(UnknownTicketError):
            store.set_details(99, {"a": "b"}, actor=None)

    def test_add_event(self, store: TicketStore) -> None:
        """add_event appends one line to the history, in order."""
        ticket, _ = store.open_ticket(new())
        store.add_event(ticket.number, "reply", actor="S1", text="Looking into it")
        updated = store.add_event(ticket.number, "note", actor=None, text=None)
        assert [(e.kind, e.actor, e.text) for e in updated.history[1:]] == [
            ("reply", "S1", "Looking into it"), ("note", None, None)
        ]

    def test_details_merge(self, store: TicketStore) -> None:
        """set_details merges the answers and notes the keys in the history."""
        ticket, _ = store.open_ticket(new(reason="cap_increase"))
        store.set_details(ticket.number, {"app_id": "123", "users": "500"}, actor="U1")
        updated = store.set_details(ticket.number, {"users": "5000"}, actor="U1")
        assert updated.details == {"app_id": "123", "users": "5000"}
        assert store.get(ticket.number).details == updated.details
        assert updated.history[-1].kind == "details"
        assert updated.history[-1].text == "updated users"


class TestPosting:
    """Posting to triage happens exactly once: leases, mark_posted, pending."""

    def test_claim_then_post(self, store: TicketStore) -> None:
        """The lease holder may claim again; others may not; nobody may after posting."""
        ticket, _ = store.open_ticket(new())
        assert store.claim_posting(ticket.number, "w1")
        assert store.claim_posting(ticket.number, "w1")
        assert not store.claim_posting(ticket.number, "w2")
        assert store.mark_posted(ticket.number, "CTRIAGE", "555.1")
        assert not store.mark_posted(ticket.number, "CTRIAGE", "555.2")
        assert not store.claim_posting(ticket.number, "w1")
        posted = store.get(ticket.number)
        assert posted.posted and (posted.triage_channel, posted.triage_ts) == ("CTRIAGE", "555.1")
        assert posted.history[-1].kind == "posted"
        assert store.find_by_triage("CTRIAGE", "555.1") == posted
        assert store.find_by_triage("CTRIAGE", "555.2") is None

    def test_expired_lease(self, store: TicketStore) -> None:
        """Once a lease runs out another worker may take it."""
        ticket, _ = store.open_ticket(new())
        assert store.claim_posting(ticket.number, "w1", lease_seconds=0)
        assert store.claim_posting(ticket.number, "w2", lease_seconds=30)
        assert not store.claim_posting(ticket.number, "w1")

    def test_lease_runs_out_on_the_clock(self, store_url: str) -> None:
        """A lease is the store clock's: once the clock passes its end, another worker may
        take it (no sleeping: the clock is injected)."""
        now = [datetime(2024, 1, 1, tzinfo=UTC)]
        store = SqlTicketStore(store_url, clock=lambda: now[0])
        try:
            ticket, _ = store.open_ticket(new())
            assert store.claim_posting(ticket.number, "w1", lease_seconds=30)
            now[0] += timedelta(seconds=29)
            assert not store.claim_posting(ticket.number, "w2")
            now[0] += timedelta(seconds=1)
            assert store.claim_posting(ticket.number, "w2")
            assert not store.claim_posting(ticket.number, "w1")
        finally:
            store.close()

    @pytest.mark.parametrize("how", ["open_ticket", "take_delivery"])
    def test_opened_holding_the_lease(self, store_url: str, how: str) -> None:
        """A new ticket opened with a lease is its owner's until the lease runs out, as if
        claimed in the same write; a ticket that already existed gets no lease from it."""
        now = [datetime(2024, 1, 1, tzinfo=UTC)]
        store = SqlTicketStore(store_url, clock=lambda: now[0])

        def open_(key: str, **fields: Any) -> tuple[Ticket, bool]:
            ticket = new(dedupe_key=key, **fields)
            if how == "open_ticket":
                return store.open_ticket(ticket)
            intake = store.take_delivery([f"event:{key}"], ticket=ticket)
            return intake.ticket, intake.ticket_created

        try:
            ticket, created = open_("m1", lease=PostingLease("w1", 30))
            assert created
            assert not store.claim_posting(ticket.number, "w2")
            assert store.claim_posting(ticket.number, "w1")
            now[0] += timedelta(seconds=30)
            assert store.claim_posting(ticket.number, "w2")  # w1 died: w2 may post it
            plain, _ = open_("m2")
            assert store.claim_posting(plain.number, "w2")  # no lease: anyone may
            again, created = store.open_ticket(new(dedupe_key="m2", lease=PostingLease("w3", 30)))
            assert (again.number, created) == (plain.number, False)
            assert not store.claim_posting(plain.number, "w3")  # still w2's
        finally:
            store.close()

    def test_unknown_ticket(self, store: TicketStore) -> None:
        """Claiming or marking an unknown ticket is False."""
        assert not store.claim_posting(42, "w1")
        assert not store.mark_posted(42, "C", "1.0")

    def test_threads_racing_claim(self, store: TicketStore) -> None:
        """Eight workers claim at once; exactly one wins."""
        ticket, _ = store.open_ticket(new())
        wins = race(8, lambda i: store.claim_posting(ticket.number, f"w{i}"))
        assert sum(wins) == 1

    def test_threads_racing_mark_posted(self, store: TicketStore) -> None:
        """Eight workers record a triage message at once; exactly one is kept."""
        ticket, _ = store.open_ticket(new())
        wins = race(8, lambda i: store.mark_posted(ticket.number, "CT", f"{i}.0"))
        assert sum(wins) == 1
        winner = wins.index(True)
        assert store.get(ticket.number).triage_ts == f"{winner}.0"

    def test_pending(self, store: TicketStore) -> None:
        """pending() lists unposted tickets, oldest first."""
        numbers = [store.open_ticket(new(f"q{i}"))[0].number for i in range(4)]
        store.mark_posted(numbers[1], "CT", "1.0")
        assert [t.number for t in store.pending()] == [numbers[0], numbers[2], numbers[3]]
        assert [t.number for t in store.pending(limit=1)] == [numbers[0]]


class TestClaimEvent:
    """A Slack delivery is claimed once."""

    def test_once(self, store: TicketStore) -> None:
        """The first claim is True, later ones False; other keys are independent."""
        assert store.claim_event("Ev1")
        assert not store.claim_event("Ev1")
        assert store.claim_event("Ev2")

    def test_threads_racing(self, store: TicketStore) -> None:
        """Eight threads claim the same key; one gets it."""
        assert sum(race(8, lambda i: store.claim_event("Ev1"))) == 1


class TestQuestions:
    """The question log behind "what did the FAQ not answer"."""

    def test_record_and_read(self, store: TicketStore) -> None:
        """Recorded questions come back oldest first with every field and their feedback."""
        early = datetime(2024, 1, 1, 12, tzinfo=UTC)
        first = store.record_question(
            question="how long is review", action="answer", entry="review-time", score=88.5,
            reason=None, requester="U1", channel="C1", at=early,
        )
        second = store.record_question(
            question="what is love", action="ticket", entry=None, score=12.0, reason="no_match"
        )
        assert first != second
        store.set_feedback(first, "not_helpful")
        rows = store.questions()
        assert [r["id"] for r in rows] == [first, second]
        assert rows[0] == {
            "id": first, "at": early, "requester": "U1", "channel": "C1",
            "question": "how long is review", "action": "answer", "entry": "review-time",
            "score": 88.5, "reason": None, "feedback": "not_helpful", "picked": None,
        }
        assert rows[1]["feedback"] is None and rows[1]["at"].tzinfo is not None

    def test_picked_entry(self, store: TicketStore) -> None:
        """The entry picked from "Did you mean…" is kept with the question, feedback apart."""
        qid = store.record_question(
            question="review slow?", action="clarify", entry=None, score=60.0, reason=None
        )
        store.set_picked(qid, "review-time")
        store.set_feedback(qid, "helpful")
        (row,) = store.questions()
        assert (row["picked"], row["feedback"]) == ("review-time", "helpful")
        with pytest.raises(LookupError):
            store.set_picked(qid + 1, "review-time")

    def test_since_and_purge(self, store: TicketStore) -> None:
        """questions(since) filters by time; purge_questions deletes older ones and counts."""
        base = datetime(2024, 3, 1, tzinfo=UTC)
        for day in range(5):
            store.record_question(
                question=f"q{day}", action="ticket", entry=None, score=None, reason="no_match",
                at=base + timedelta(days=day),
            )
        since = store.questions(since=base + timedelta(days=3))
        assert [q["question"] for q in since] == ["q3", "q4"]
        assert store.purge_questions(base + timedelta(days=2)) == 2
        assert [q["question"] for q in store.questions()] == ["q2", "q3", "q4"]
        naive = datetime(2024, 3, 4)  # taken as UTC
        assert [q["question"] for q in store.questions(since=naive)] == ["q3", "q4"]

    def test_feedback_unknown(self, store: TicketStore) -> None:
        """Feedback for an unknown question is a LookupError."""
        with pytest.raises(LookupError):
            store.set_feedback(12345, "helpful")


def _schema_versions(url: str) -> list[int]:
    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version FROM schema_version ORDER BY 1"))
                        .scalars())
    finally:
        engine.dispose()


def _terminate_connections(pg_url: str) -> None:
    """Kill every server connection of the store at ``pg_url`` (its schema's application);
    returns once their server processes have exited (their sockets are closed)."""
    schema = sa.make_url(pg_url).query["application_name"]
    engine = _admin_engine(os.environ[PG_ENV])
    mine = f"FROM pg_stat_activity WHERE application_name = '{schema}'"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) {mine}")
            deadline = time.monotonic() + 10
            while conn.exec_driver_sql(f"SELECT count(*) {mine}").scalar():
                assert time.monotonic() < deadline, "the connections were not closed"
                time.sleep(0.01)
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


class TestDurability:
    """Tickets survive a restart; the schema is created once and upgraded in order."""

    def test_restart_keeps_tickets(self, durable_url: str) -> None:
        """A new store object on the same database sees everything and keeps counting."""
        store = open_store(durable_url)
        ticket, _ = store.open_ticket(new(channel="C1", thread_ts="1.0", dedupe_key="Ev1"))
        store.set_status(ticket.number, "in_progress", actor="S1", assignee="S1")
        store.claim_event("Ev1")
        store.close()

        again = open_store(durable_url)
        try:
            reloaded = again.get(ticket.number)
            assert reloaded is not None and reloaded.status == "in_progress"
            history = [(e.kind, e.actor) for e in reloaded.history]
            assert history == [("opened", "U1"), ("taken", "S1")]
            assert not again.claim_event("Ev1")
            assert not again.open_ticket(new(dedupe_key="Ev1"))[1]
            assert again.open_ticket(new("next"))[0].id == "FAQ-2"
        finally:
            again.close()

    def test_schema_created_once(self, durable_url: str) -> None:
        """Opening twice applies each migration once."""
        open_store(durable_url).close()
        open_store(durable_url).close()
        assert _schema_versions(durable_url) == list(range(1, SCHEMA_VERSION + 1))

    def test_upgrade_from_version_1(self, durable_url: str) -> None:
        """A version-1 database (no question log) is upgraded and keeps its tickets."""
        store = open_store(durable_url)
        store.open_ticket(new())
        store.close()
        _execute(
            durable_url, "DROP TABLE questions", "DELETE FROM schema_version WHERE version > 1"
        )
        upgraded = open_store(durable_url)
        try:
            assert upgraded.get(1) is not None
            qid = upgraded.record_question(
                question="q", action="ticket", entry=None, score=None, reason="no_match"
            )
            assert upgraded.questions()[0]["id"] == qid
        finally:
            upgraded.close()
        assert _schema_versions(durable_url) == list(range(1, SCHEMA_VERSION + 1))

    def test_upgrade_from_version_2(self, durable_url: str) -> None:
        """A version-2 question log (no ``picked`` column) gains it and keeps its rows."""
        store = open_store(durable_url)
        qid = store.record_question(
            question="q", action="clarify", entry=None, score=50.0, reason=None
        )
        store.close()
        _execute(
            durable_url,
            "ALTER TABLE questions DROP COLUMN picked",
            "DELETE FROM schema_version WHERE version > 2",
        )
        upgraded = open_store(durable_url)
        try:
            upgraded.set_picked(qid, "review-time")
            (row,) = upgraded.questions()
            assert (row["id"], row["question"], row["picked"]) == (qid, "q", "review-time")
        finally:
            upgraded.close()
        assert _schema_versions(durable_url) == list(range(1, SCHEMA_VERSION + 1))

    def test_newer_schema_is_refused(self, durable_url: str) -> None:
        """A database from a newer faqbot is not touched."""
        open_store(durable_url).close()
        _execute(
            durable_url,
            "INSERT INTO schema_version (version, applied_at) VALUES (999, CURRENT_TIMESTAMP)",
        )
        with pytest.raises(StoreError, match="newer"):
            open_store(durable_url)


class TestStoreErrors:
    """Database failures are one-line StoreErrors that never show a password."""

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A SQLite file in a directory that does not exist cannot be opened."""
        with pytest.raises(StoreError, match="unable to open") as info:
            SqlTicketStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.sqlite3'}")
        assert "\n" not in str(info.value)

    def test_read_only_database(self, tmp_path: Path) -> None:
        """A read-only SQLite database can be read, and writing to it is a StoreError."""
        path = tmp_path / "ro.sqlite3"
        writable = SqlTicketStore(f"sqlite:///{path}")
        writable.open_ticket(new())
        writable.close()
        store = SqlTicketStore(f"sqlite:///file:{path}?mode=ro&uri=true")
        try:
            assert store.get(1) is not None
            with pytest.raises(StoreError, match="readonly"):
                store.open_ticket(new("another"))
            with pytest.raises(StoreError):
                store.claim_event("Ev1")
        finally:
            store.close()

    def test_closed_port_hides_password(self) -> None:
        """Nothing listening on the port: a StoreError naming the host, not the password."""
        with pytest.raises(StoreError) as info:
            SqlTicketStore("postgresql://faqbot:hunter2@127.0.0.1:1/test")
        message = str(info.value)
        assert "hunter2" not in message and "hunter2" not in repr(info.value)
        assert "127.0.0.1" in message and "***" in message
        assert "\n" not in message

    @pytest.mark.parametrize(
        "url", ["mysql://u:hunter2@localhost/db", "not a url", "postgresql+nosuch://u:hunter2@h/d"]
    )
    def test_unusable_url(self, url: str) -> None:
        """Unsupported or malformed URLs are StoreErrors too, without the password."""
        with pytest.raises(StoreError) as info:
            open_store(url)
        assert "hunter2" not in str(info.value)

    @pytest.mark.postgres
    def test_recovers_after_disconnect(self, pg_url: str) -> None:
        """After its connections are killed, the same store object works again."""
        store = open_store(pg_url)
        try:
            store.open_ticket(new())
            _terminate_connections(pg_url)
            assert store.get(1) is not None
            assert store.open_ticket(new("after"))[1]
        finally:
            store.close()

    @pytest.mark.postgres
    def test_lost_connection_is_retried_once_before_commit(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A pooled connection that died unseen (its socket looks idle at checkout) fails the
        first statement; the delivery is taken again on a new connection, exactly once."""
        store = open_store(pg_url)
        try:
            store.open_ticket(new())
            _terminate_connections(pg_url)
            monkeypatch.setattr("bot.tickets.engine.select.select", lambda r, w, x, t: ([], [], []))
            question = LoggedQuestion(question="q", action="ticket", entry=None, score=None,
                                      reason="no_match")
            intake = store.take_delivery(["event:EvLost"], question=question,
                                         ticket=new("lost", dedupe_key="EvLost"))
            assert intake.claimed and intake.ticket_created
            assert store.claim_event("event:EvLost") is False
            assert [q["question"] for q in store.questions()] == ["q"]
            assert [t.question for t in store.list()] == ["lost", new().question]
        finally:
            store.close()

    @pytest.mark.postgres
    def test_lost_connection_claim_and_mark_posted(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """claim_posting and mark_posted on pooled connections that died unseen are run again
        on new ones."""
        store = open_store(pg_url)

        def kill_the_pooled_connection() -> None:
            store.get(ticket.number)  # the pool's one connection has been used
            _terminate_connections(pg_url)

        try:
            ticket, _ = store.open_ticket(new())
            monkeypatch.setattr("bot.tickets.engine.select.select", lambda r, w, x, t: ([], [], []))
            kill_the_pooled_connection()
            assert store.claim_posting(ticket.number, "w1")
            kill_the_pooled_connection()
            assert store.mark_posted(ticket.number, "CT", "1.0")
            posted = store.get(ticket.number)
            assert posted is not None and posted.triage_ts == "1.0"
            assert [e.kind for e in posted.history] == ["opened", "posted"]
        finally:
            store.close()


    @pytest.mark.postgres
    def test_mark_posted_committed_then_lost(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """mark_posted committed but its connection was lost before the answer: run again,
        it finds its own message recorded and says so (True, one history line); another
        message is still refused."""
        from bot.tickets import store as store_module

        store = open_store(pg_url)
        try:
            ticket, _ = store.open_ticket(new())
            real = store._transaction  # type: ignore[attr-defined]
            calls = []

            def lost_after_commit(*args: Any, **kwargs: Any) -> Any:
                calls.append(kwargs)
                result = real(*args, **kwargs)
                if len(calls) == 1:
                    raise store_module._StaleConnection
                return result

            monkeypatch.setattr(store, "_transaction", lost_after_commit)
            assert store.mark_posted(ticket.number, "CT", "1.0")
            assert len(calls) == 2
            posted = store.get(ticket.number)
            assert posted is not None and posted.triage_ts == "1.0"
            assert [e.kind for e in posted.history] == ["opened", "posted"]
            monkeypatch.setattr(store, "_transaction", real)
            assert not store.mark_posted(ticket.number, "CT", "1.0")  # not a rerun: refused
            assert not store.mark_posted(ticket.number, "CT", "2.0")
        finally:
            store.close()


def _process_worker(url: str, barrier: Any, results: Any) -> None:
    """One process of TestProcesses: start a store, then open, claim and post at once."""
    try:
        barrier.wait(timeout=60)
        store = open_store(url)  # the schema is created by whichever process gets there first
        try:
            ticket, created = store.open_ticket(new(dedupe_key="Ev1"))
            results.put(
                (
                    ticket.number,
                    created,
                    store.claim_event("Ev1"),
                    store.claim_posting(ticket.number, f"worker-{os.getpid()}"),
                )
            )
        finally:
            store.close()
    except BaseException as exc:  # reported to the test through the queue
        results.put(repr(exc))


class TestProcesses:
    """Processes sharing one database still open one ticket, claim once and post once."""

    @pytest.mark.slow
    def test_processes_racing(self, durable_url: str) -> None:
        """Four processes starting together on an empty database: one ticket, one of each."""
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(4)
        results = context.Queue()
        processes = [
            context.Process(target=_process_worker, args=(durable_url, barrier, results))
            for _ in range(4)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        assert {number for number, *_ in outcomes} == {1}
        assert sum(created for _, created, _, _ in outcomes) == 1
        assert sum(claimed for _, _, claimed, _ in outcomes) == 1
        assert sum(posting for *_, posting in outcomes) == 1
        store = open_store(durable_url)
        try:
            assert len(store.list()) == 1
        finally:
            store.close()


class TestClaimEvents:
    """Several dedupe keys of one delivery are claimed together."""

    def test_all_or_nothing(self, store) -> None:
        """A delivery whose keys are all new is claimed; one old key claims none of them."""
        assert store.claim_events(["event:Ev1", "msg:C1:1.0"]) is True
        assert store.claim_events(["event:Ev2", "msg:C1:1.0"]) is False  # same message, new id
        assert store.claim_event("event:Ev2") is True  # nothing was recorded by the refusal
        assert store.claim_events(["event:Ev1"]) is False
        assert store.claim_events([]) is True


class TestOpenedTicketIsWhatIsStored:
    """The ticket open_ticket returns equals the one read back from the store."""

    def test_round_trip(self, store) -> None:
        """Every field of a new ticket, history included, matches a fresh read."""
        made, created = store.open_ticket(NewTicket(
            requester="U1", question="q <!here>", reason="cap_increase", team="T1",
            channel="C1", thread_ts="1.1", message_ts="1.2", entry="cap", source="slack",
            candidates=({"entry": "cap", "question": "Can I?", "score": 88.5},),
            dedupe_key="Ev9"))
        assert created
        assert store.get(made.number) == made


class TestPurgeEvents:
    """Old delivery keys are forgotten; recent ones still deduplicate."""

    def test_purge_events(self, store) -> None:
        """Keys claimed before the cut-off are deleted and can be claimed again; newer ones stay."""
        from datetime import UTC, datetime, timedelta

        assert store.claim_events(["event:Old1", "msg:C1:1.0"])
        deleted = store.purge_events(datetime.now(UTC) + timedelta(seconds=1))
        assert deleted == 2
        assert store.claim_event("event:Old1") is True  # forgotten: claimable again
        assert store.purge_events(datetime.now(UTC) - timedelta(days=1)) == 0
        assert store.claim_event("event:Old1") is False  # recent: still deduplicated


def logged(question: str = "Why was my app rejected?", action: str = "ticket") -> LoggedQuestion:
    return LoggedQuestion(question=question, action=action, entry=None, score=12.0,
                          reason="no_match", requester="U1", channel="C1")


class TestTakeDelivery:
    """One Slack delivery in one transaction: the claim, the question log and the ticket, all or
    nothing, with the same semantics as claim_events + record_question + open_ticket."""

    KEYS = ("event:Ev1", "msg:C1:1.0")

    def test_answer_claims_and_logs(self, store: TicketStore) -> None:
        """A new delivery is claimed and its question logged; nothing else is stored."""
        intake = store.take_delivery(self.KEYS, question=logged("how long?", "answer"))
        assert intake.claimed and intake.ticket is None and not intake.ticket_created
        (row,) = store.questions()
        assert row["id"] == intake.question_id
        assert (row["question"], row["action"], row["requester"], row["channel"]) == (
            "how long?", "answer", "U1", "C1")
        assert store.list() == []
        assert store.claim_events(self.KEYS) is False  # the keys are taken

    def test_ticket_opened_with_the_claim(self, store: TicketStore) -> None:
        """A ticket delivery opens the ticket (as open_ticket would) and logs the question."""
        ask = new(channel="C1", thread_ts="1.0", message_ts="1.0", dedupe_key="msg:C1:1.0")
        intake = store.take_delivery(self.KEYS, question=logged(), ticket=ask)
        assert intake.claimed and intake.ticket_created and intake.ticket is not None
        assert store.get(intake.ticket.number) == intake.ticket
        assert [t.number for t in store.list()] == [intake.ticket.number]
        assert [q["id"] for q in store.questions()] == [intake.question_id]

    @pytest.mark.parametrize("again", [("event:Ev1", "msg:C1:1.0"), ("event:Ev2", "msg:C1:1.0"),
                                       ("event:Ev1",)])
    def test_duplicate_delivery_records_nothing(self, store: TicketStore, again) -> None:
        """The same event again (same event_id, or the same message under a new one) is not
        claimed, and records no question, no ticket, no follow-up."""
        ask = new(channel="C1", thread_ts="1.0", message_ts="1.0", dedupe_key="msg:C1:1.0")
        first = store.take_delivery(self.KEYS, question=logged(), ticket=ask)
        assert store.take_delivery(again, question=logged(), ticket=ask) == Intake(claimed=False)
        assert len(store.questions()) == 1
        (ticket,) = store.list()
        assert ticket == first.ticket and len(ticket.history) == 1
        if "event:Ev2" in again:
            assert store.claim_event("event:Ev2") is True  # the refusal recorded none of its keys

    def test_second_question_in_thread_is_a_follow_up(self, store: TicketStore) -> None:
        """A new delivery in a thread with an unresolved ticket adds a follow-up to it."""
        first = store.take_delivery(self.KEYS, question=logged(), ticket=new(
            channel="C1", thread_ts="1.0", message_ts="1.0", dedupe_key="msg:C1:1.0"))
        second = store.take_delivery(["event:Ev2", "msg:C1:2.0"], question=logged("more?"),
                                     ticket=new("more?", channel="C1", thread_ts="1.0",
                                                message_ts="2.0", dedupe_key="msg:C1:2.0"))
        assert second.claimed and not second.ticket_created
        assert second.ticket is not None and first.ticket is not None
        assert second.ticket.number == first.ticket.number
        assert [e.kind for e in second.ticket.history] == ["opened", "follow_up"]
        assert len(store.questions()) == 2

    def test_ticket_key_already_used(self, store: TicketStore) -> None:
        """Fresh delivery keys but a ticket dedupe key already taken (its delivery key was
        forgotten): claimed, and the existing ticket is returned, not a second one."""
        made, _ = store.open_ticket(new(dedupe_key="msg:C1:1.0"))
        intake = store.take_delivery(self.KEYS, question=logged(),
                                     ticket=new(dedupe_key="msg:C1:1.0"))
        assert intake.claimed and not intake.ticket_created
        assert intake.ticket == made and len(store.list()) == 1

    def test_follow_ups_key_already_used(self, store: TicketStore) -> None:
        """Fresh delivery keys but a dedupe key a follow-up already took (its thread's ticket
        since resolved): claimed, logged, and the follow-up's ticket is returned, neither a
        new ticket nor a second follow-up."""
        first, _ = store.open_ticket(new(channel="C1", thread_ts="1.0", dedupe_key="Ev1"))
        store.open_ticket(new("more", channel="C1", thread_ts="1.0", dedupe_key="msg:C1:2.0"))
        store.set_status(first.number, "resolved", actor="U9")
        intake = store.take_delivery(self.KEYS, question=logged("more"), ticket=new(
            "more", channel="C1", thread_ts="1.0", message_ts="2.0", dedupe_key="msg:C1:2.0"))
        assert intake.claimed and not intake.ticket_created
        assert intake.ticket is not None and intake.ticket.number == first.number
        assert [e.kind for e in intake.ticket.history].count("follow_up") == 1
        assert len(store.list()) == 1
        assert [q["id"] for q in store.questions()] == [intake.question_id]

    def test_follow_up_logs_its_question(self, store: TicketStore) -> None:
        """A follow-up delivery's question is logged and its id returned, without a ticket
        dedupe key and without a question too."""
        first = store.take_delivery(["event:Ev1"], ticket=new(channel="C1", thread_ts="1.0"))
        assert first.question_id is None and first.ticket_created
        second = store.take_delivery(["event:Ev2"], question=logged("more?"),
                                     ticket=new("more?", channel="C1", thread_ts="1.0"))
        assert second.claimed and not second.ticket_created
        assert second.ticket is not None and first.ticket is not None
        assert second.ticket.number == first.ticket.number
        assert [q["id"] for q in store.questions()] == [second.question_id]
        assert second.question_id is not None

    def test_resolved_thread_gets_a_new_ticket(self, store: TicketStore) -> None:
        """Only an unresolved ticket takes a thread's next question: after it is resolved,
        the next delivery in the thread opens a new ticket."""
        first = store.take_delivery(["event:Ev1"], question=logged(),
                                    ticket=new(channel="C1", thread_ts="1.0"))
        assert first.ticket is not None
        store.set_status(first.ticket.number, "resolved", actor="U9")
        second = store.take_delivery(["event:Ev2"], question=logged("again"),
                                     ticket=new("again", channel="C1", thread_ts="1.0"))
        assert second.ticket_created and second.ticket is not None
        assert second.ticket.number != first.ticket.number
        assert store.get(second.ticket.number) == second.ticket

    def test_no_keys_and_nothing_else(self, store: TicketStore) -> None:
        """No keys is a claim like claim_events([]); with nothing to record, nothing is."""
        assert store.take_delivery([]) == Intake(claimed=True)
        assert store.questions() == [] and store.list() == []

    def test_threads_racing(self, store: TicketStore) -> None:
        """Eight threads deliver the same event at once: one claims it; one ticket, one
        question."""
        ask = new(channel="C1", thread_ts="1.0", message_ts="1.0", dedupe_key="msg:C1:1.0")
        outcomes = race(8, lambda i: store.take_delivery(
            [f"event:Ev{i}", "msg:C1:1.0"], question=logged(), ticket=ask))
        assert sum(o.claimed for o in outcomes) == 1
        assert len(store.list()) == 1 and len(store.questions()) == 1

    def test_failure_records_nothing(self, durable_url: str) -> None:
        """When the ticket cannot be stored, the claim and the question are rolled back with
        it, so that Slack's retry of the delivery is processed in full."""
        store = open_store(durable_url)
        broken = NewTicket(requester="U1", question="q", reason=None)  # type: ignore[arg-type]
        try:
            with pytest.raises(StoreError):
                store.take_delivery(self.KEYS, question=logged(), ticket=broken)
            assert store.questions() == [] and store.list() == []
            assert store.claim_events(self.KEYS) is True
        finally:
            store.close()


class TestSqliteWriterQueue:
    """faqbot's processes writing one SQLite file queue on an flock beside it (instead of
    SQLite's sleeping busy handler); a lock holder that never lets go delays a write by at
    most the busy timeout."""

    def test_waits_for_the_holder_then_writes(self, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        fcntl = pytest.importorskip("fcntl")
        monkeypatch.setattr("bot.tickets.engine._BUSY_TIMEOUT_SECONDS", 0.5)
        store = SqlTicketStore(f"sqlite:///{tmp_path / 't.sqlite3'}")
        fd = os.open(tmp_path / "t.sqlite3-writers.lock", os.O_RDWR)  # made by the store
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer holds it
            threading.Timer(0.2, fcntl.flock, (fd, fcntl.LOCK_UN)).start()
            started = time.monotonic()
            assert store.claim_event("Ev1")
            assert 0.15 <= time.monotonic() - started < 0.45  # waited for the release only
            fcntl.flock(fd, fcntl.LOCK_EX)  # held and never released (a stopped process)
            started = time.monotonic()
            assert store.claim_event("Ev2")
            assert 0.45 <= time.monotonic() - started < 3
        finally:
            os.close(fd)
            store.close()
