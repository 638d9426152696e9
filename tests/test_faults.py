"""Faults: the Web API misbehaving, the store going away, the process killed or stopped.

Whatever happens, a Slack event is answered at most once, a ticket is stored once and posted to
triage once, the user is told plainly when something could not be done, and the service
recovers by itself.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.slack.formatting import store_failed_message
from bot.slack.triage import Triage
from bot.tickets import NewTicket, SqlTicketStore, open_store
from tests import slack_helpers as h
from tests.fault_harness import (
    Bot,
    RecordingFake,
    SwitchableStore,
    TcpProxy,
    kill_group,
    run_server,
    wait_until,
)
from tests.staff_harness import SUPPORT

PG_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    b = Bot(tmp_path)
    try:
        yield b
    finally:
        b.close()


def _ticket_flow(bot: Bot, question: str = h.UNANSWERABLE) -> dict:
    body = h.mention(question)
    assert bot.event(body).status == 200
    return body


def _posted_once(bot: Bot, timeout: float = 15.0) -> None:
    """Every stored ticket ends up posted, each by exactly one delivered triage post."""
    wait_until(lambda: bot.tickets() and all(t.posted for t in bot.tickets()), timeout,
               "every ticket posted")
    bot.fake.wait_quiet(0.3)
    for ticket in bot.tickets():
        posts = [c for c in bot.triaged() if ticket.id in c.params.get("text", "")]
        assert len(posts) == 1, (ticket.id, [c.params.get("text") for c in bot.triaged()])


class TestWebApiFaults:
    """A misbehaving Web API costs at most a bounded number of retries: no crash, no duplicate,
    and every ticket is kept and posted once the API answers again."""

    def test_429_with_retry_after(self, bot: Bot) -> None:
        """429s with Retry-After are waited out; the reply and the triage post arrive once."""
        bot.fake.fail("429", times=2, methods={"chat.postMessage"}, retry_after=1)
        _ticket_flow(bot)
        wait_until(lambda: bot.replies(), 10, "the reply")
        _posted_once(bot)
        assert len(bot.replies()) == 1
        # Retry-After honoured between the reply's attempts (the triage post may go out in
        # between, from the listener or the retry sweep, and take one of the 429s itself)
        attempts = [c for c in bot.fake.calls("chat.postMessage")
                    if c.params.get("channel") == "C111"]
        assert len(attempts) >= 2 and attempts[1].at - attempts[0].at >= 0.9

    def test_500s_bounded_then_ticket_posted_after_recovery(self, bot: Bot) -> None:
        """While every post gets 500, the reply is tried 3 times (not forever) and the ticket
        stays pending; after recovery it is posted exactly once, and the reply is not sent
        twice."""
        bot.fake.go_down("500", methods={"chat.postMessage"})
        body = _ticket_flow(bot)
        wait_until(lambda: len(bot.fake.calls("chat.postMessage")) >= 6, 15, "attempts")
        replies = [c for c in bot.fake.calls("chat.postMessage")
                   if c.params.get("channel") == "C111"]
        assert len(replies) == 3  # one try plus two retries, then given up
        (ticket,) = bot.tickets()
        assert not ticket.posted and ticket.thread_ts == body["event"]["ts"]
        assert h.get(bot.base + "/healthz").status == 200
        bot.fake.recover()
        _posted_once(bot)
        assert bot.replies() == []  # the lost reply is not replayed later

    def test_connection_refused_then_back(self, tmp_path: Path) -> None:
        """With the Web API refusing connections the ticket is kept; once it listens again
        the ticket is posted once, and new questions are answered."""
        fake = RecordingFake().start()
        proxy = TcpProxy(fake.port)
        bot = Bot(tmp_path, fake=fake, api_url=f"http://127.0.0.1:{proxy.port}/api/")
        try:
            proxy.cut()
            _ticket_flow(bot)
            wait_until(lambda: bot.tickets(), 10, "the ticket stored")
            time.sleep(1.0)  # a window for a post to slip through (none may; nothing to wait on)
            assert fake.calls("chat.postMessage") == [] and not bot.tickets()[0].posted
            proxy.restore()
            _posted_once(bot, timeout=20)
            bot.event(h.mention(h.ANSWERABLE))
            wait_until(lambda: bot.replies(), 10, "an answer after recovery")
        finally:
            bot.close()
            proxy.close()

    def test_timeout_on_reply_is_not_retried(self, bot: Bot) -> None:
        """A reply whose response never comes is not sent again (it may have landed); the
        ticket is still posted once."""
        bot.fake.fail_channel("C111", "delay", 1, delay=3.0)
        _ticket_flow(bot)
        _posted_once(bot)
        bot.fake.wait_quiet(0.5)
        assert len([c for c in bot.fake.calls("chat.postMessage")
                    if c.params.get("channel") == "C111"]) == 1

    @pytest.mark.parametrize("kind", ["delay", "malformed", "close"])
    def test_lost_triage_response_then_posted(self, bot: Bot, kind: str) -> None:
        """A triage post whose response is lost (timeout, malformed JSON, dropped connection)
        leaves the ticket pending; it is posted again and recorded once. This is at least
        once: the lost post may have landed in Slack."""
        bot.fake.fail_channel(SUPPORT, kind, 1, delay=3.0)
        _ticket_flow(bot)
        _posted_once(bot)
        attempts = [c for c in bot.fake.calls("chat.postMessage")
                    if c.params.get("channel") == SUPPORT]
        assert [c.faulted for c in attempts][0] == kind
        assert len(attempts) == 2
        (ticket,) = bot.tickets()
        assert [e.kind for e in ticket.history].count("posted") == 1

    def test_malformed_reply_no_crash(self, bot: Bot) -> None:
        """Malformed JSON from the Web API loses that call only; serving goes on."""
        bot.fake.fail("malformed", times=3, methods={"chat.postMessage"})
        bot.event(h.mention(h.ANSWERABLE))
        wait_until(lambda: bot.fake.calls("chat.postMessage"), 5, "the attempt")
        bot.event(h.mention(h.ANSWERABLE))
        bot.event(h.direct_message(h.ANSWERABLE))
        wait_until(lambda: len(bot.fake.calls("chat.postMessage")) >= 3, 5, "attempts")
        bot.event(h.mention(h.ANSWERABLE))
        wait_until(lambda: bot.replies(), 5, "an answer")
        assert h.get(bot.base + "/healthz").status == 200


class TestTriageLease:
    """A triage post that Slack refused gives its lease back, so a restarted process (a new
    worker) posts the ticket at once instead of waiting for the lease to run out."""

    def test_refused_post_is_retried_by_a_new_worker_at_once(self, tmp_path: Path) -> None:
        """After a 500 on the triage post, a fresh Triage posts the ticket immediately."""
        from bot.config import Settings
        from bot.slack.app import make_client

        with RecordingFake() as fake:
            store = open_store(f"sqlite:///{tmp_path / 't.sqlite3'}")
            client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=fake.api_url,
                                          slack_api_timeout=1.0))
            ticket, _ = store.open_ticket(NewTicket(requester="W1", question="q?",
                                                    reason="no_match"))
            fake.go_down("500", methods={"chat.postMessage"})
            assert Triage(client, store, SUPPORT).post(ticket) is False
            fake.recover()
            assert Triage(client, store, SUPPORT).post(store.get(ticket.number)) is True
            assert len(fake.delivered("chat.postMessage", SUPPORT)) == 1
            store.close()

    def test_lost_response_keeps_the_lease(self, tmp_path: Path) -> None:
        """After a timeout (the post may have landed) another worker does not post the
        ticket while the lease runs."""
        from bot.config import Settings
        from bot.slack.app import make_client

        with RecordingFake() as fake:
            store = open_store(f"sqlite:///{tmp_path / 't.sqlite3'}")
            client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=fake.api_url,
                                          slack_api_timeout=0.5))
            ticket, _ = store.open_ticket(NewTicket(requester="W1", question="q?",
                                                    reason="no_match"))
            fake.fail("delay", times=1, methods={"chat.postMessage"}, delay=1.5)
            assert Triage(client, store, SUPPORT).post(ticket) is False
            assert Triage(client, store, SUPPORT).post(store.get(ticket.number)) is False
            store.close()


    def test_a_reply_that_fails_to_build_still_posts_the_ticket(self, bot: Bot,
                                                                monkeypatch) -> None:
        """The listener opened the ticket holding its process's lease, then failed before
        replying: the ticket is posted at once (not when the lease runs out, 120 s), and the
        asker gets an apology."""
        from bot.slack import formatting

        def broken(*_a, **_k):
            raise RuntimeError("a message that cannot be built")

        monkeypatch.setattr(formatting, "ticket_message", broken)
        _ticket_flow(bot)
        wait_until(lambda: any("Sorry" in r.params.get("text", "") for r in bot.replies()), 10,
                   "the apology")
        _posted_once(bot, timeout=5.0)


    def test_a_faq_reply_that_fails_to_build_still_posts_and_names_the_ticket(
        self, bot: Bot, monkeypatch
    ) -> None:
        """/faq: the ticket is stored holding the lease, then its message fails to build: the
        asker is told the ticket's id (not that the store failed) and it is posted at once."""
        from bot.slack import formatting

        def broken(*_a, **_k):
            raise RuntimeError("a message that cannot be built")

        monkeypatch.setattr(formatting, "ticket_message", broken)
        assert bot.command(h.slash(h.UNANSWERABLE)).status == 200
        _posted_once(bot, timeout=5.0)
        (ticket,) = bot.tickets()
        told = wait_until(lambda: bot.fake.delivered("chat.postEphemeral"), 10, "the asker told")
        assert told[0].params["text"] == f"I've opened ticket {ticket.id}; support will follow up."


def _hold_exclusive(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


class TestStoreFaults:
    """With the store locked, read-only or unreachable the user is told plainly, nothing is
    stored twice, and the service recovers by itself when the store is back."""

    def test_sqlite_locked_briefly_waits(self, bot: Bot, tmp_path: Path) -> None:
        """A lock held for a moment only delays the answer: one reply, one ticket, one post."""
        lock = _hold_exclusive(tmp_path / "tickets.sqlite3")
        body = _ticket_flow(bot)
        time.sleep(1.5)  # the lock is held this long: nothing may be answered meanwhile
        assert bot.replies() == []
        lock.execute("COMMIT")
        lock.close()
        wait_until(lambda: bot.replies(), 10, "the reply")
        _posted_once(bot)
        assert len(bot.replies()) == 1 and len(bot.tickets()) == 1
        bot.event(body, extra={"X-Slack-Retry-Num": "1"})  # Slack's retry: nothing new
        bot.fake.wait_quiet(0.5)
        assert len(bot.replies()) == 1 and len(bot.tickets()) == 1

    @pytest.mark.slow
    def test_sqlite_locked_too_long_then_recovers(self, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        """A lock held past the busy timeout: the user is told the ticket could not be
        recorded; nothing is stored; after the lock goes, the next question works."""
        monkeypatch.setattr("bot.tickets.engine._BUSY_TIMEOUT_SECONDS", 0.5)
        bot = Bot(tmp_path)
        try:
            lock = _hold_exclusive(tmp_path / "tickets.sqlite3")
            _ticket_flow(bot)
            wait_until(lambda: bot.replies(), 15, "the apology")
            bot.fake.wait_quiet()  # then count: a late duplicate would be seen
            (told,) = bot.replies()
            plain = store_failed_message(bot.holder.current.support)["text"]
            assert told.params["text"] == plain
            lock.execute("COMMIT")
            lock.close()
            assert bot.tickets() == []
            _ticket_flow(bot, h.UNANSWERABLE + " again")
            _posted_once(bot)
            assert len(bot.tickets()) == 1
        finally:
            bot.close()

    def test_sqlite_read_only_then_writable(self, tmp_path: Path) -> None:
        """A read-only database: the user is told plainly, nothing is stored; writable again,
        Slack's retry of the same event stores the ticket once and it is posted once."""
        path = tmp_path / "tickets.sqlite3"
        bot = Bot(tmp_path, store=SwitchableStore)
        read_only = SqlTicketStore(f"sqlite:///file:{path}?mode=ro&uri=true")
        try:
            writable = bot.store.current
            bot.store.current = read_only
            body = _ticket_flow(bot)
            wait_until(lambda: bot.replies(), 10, "the apology")
            bot.fake.wait_quiet()  # then count: a late duplicate would be seen
            (told,) = bot.replies()
            assert "couldn't" in told.params["text"].lower() or "could not" in \
                told.params["text"].lower()
            assert bot.tickets() == []
            bot.store.current = writable
            bot.event(body, extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
            _posted_once(bot)
            assert len(bot.tickets()) == 1
            bot.event(body, extra={"X-Slack-Retry-Num": "2"})
            bot.fake.wait_quiet(0.5)
            assert len(bot.tickets()) == 1 and len(bot.triaged()) == 1
        finally:
            bot.close()
            read_only.close()

    def test_slash_ticket_with_read_only_store(self, tmp_path: Path) -> None:
        """/faq whose ticket cannot be stored: acked at once all the same; the asker alone is
        then told plainly (chat.postEphemeral) that no ticket was recorded; nothing is stored
        or posted. An answerable /faq is still answered in the ack meanwhile."""
        path = tmp_path / "tickets.sqlite3"
        bot = Bot(tmp_path, store=SwitchableStore)
        read_only = SqlTicketStore(f"sqlite:///file:{path}?mode=ro&uri=true")
        try:
            bot.store.current = read_only
            ack = bot.command(h.slash(h.UNANSWERABLE, user="W321"))
            assert ack.status == 200 and ack.seconds < 1.0
            assert "ticket" in ack.json()["text"] and "FAQ-" not in ack.json()["text"]
            (told,) = wait_until(lambda: bot.fake.delivered("chat.postEphemeral"), 10,
                                 "the ephemeral apology")
            assert told.params["user"] == "W321"
            assert told.params["text"] == store_failed_message(
                bot.holder.current.support)["text"]
            answer = bot.command(h.slash(h.ANSWERABLE, user="W321"))
            assert answer.status == 200 and "several days" in answer.json()["text"]
            bot.fake.wait_quiet(0.3)
            assert bot.tickets() == [] and bot.triaged() == []
            assert len(bot.fake.delivered("chat.postEphemeral")) == 1
        finally:
            bot.close()
            read_only.close()

    def test_failed_delivery_transaction_still_answers_and_stores(self, tmp_path: Path) -> None:
        """The one transaction that claims a delivery and records it fails (a connection lost
        at that moment): the event is answered anyway, its ticket and its question are still
        stored by the separate writes, and the ticket is posted once."""

        class FailingIntake(SwitchableStore):
            def take_delivery(self, *args: object, **kwargs: object) -> object:
                raise StoreError("ticket store: connection lost")

        bot = Bot(tmp_path, store=FailingIntake)
        try:
            _ticket_flow(bot)
            wait_until(lambda: bot.replies(), 10, "the reply")
            _posted_once(bot)
            (ticket,) = bot.tickets()
            assert ticket.id in bot.replies()[0].params["text"]
            assert [q["question"] for q in bot.raw_store.questions()] == [ticket.question]
        finally:
            bot.close()

    @pytest.mark.postgres
    @pytest.mark.slow
    @pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (a PostgreSQL server)")
    def test_postgres_down_mid_run_and_back(self, tmp_path: Path) -> None:
        """PostgreSQL unreachable mid-run (its TCP path cut): questions are still answered,
        the user is told a ticket could not be recorded; once it is back, tickets are stored
        and posted once each, with no restart."""
        url = sa.make_url(PG_URL)
        proxy = TcpProxy(url.port or 5432)
        schema = f"faults_{os.getpid()}_{int(time.time())}"
        admin = sa.create_engine(url.set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        db = url.set(host="127.0.0.1", port=proxy.port,
                     query={"options": f"-csearch_path={schema}"})
        bot = Bot(tmp_path, database_url=db.render_as_string(hide_password=False))
        try:
            _ticket_flow(bot, h.UNANSWERABLE + " first")
            _posted_once(bot)
            proxy.cut()
            body = _ticket_flow(bot, h.UNANSWERABLE + " during")
            told = wait_until(lambda: bot.replies()[1:], 30, "the apology")[0]
            plain = store_failed_message(bot.holder.current.support)["text"]
            assert told.params["text"] == plain, told.params["text"]
            bot.event(h.mention(h.ANSWERABLE))
            wait_until(lambda: len(bot.replies()) == 3, 30, "an answer while the store is down")
            assert h.get(bot.base + "/healthz").status == 200
            proxy.restore()
            bot.event(body, extra={"X-Slack-Retry-Num": "1"})
            wait_until(lambda: len(bot.tickets()) == 2, 20, "the ticket stored after recovery")
            _posted_once(bot)
            bot.event(body, extra={"X-Slack-Retry-Num": "2"})
            bot.fake.wait_quiet(0.5)
            assert len(bot.tickets()) == 2
        finally:
            bot.close()
            proxy.close()
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def _db_tickets(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT number, triage_ts FROM tickets").fetchall()


class TestProcessDeath:
    """A process killed between storing a ticket and posting it posts it once on restart; a
    SIGTERM lets in-flight events finish before a clean exit."""

    @pytest.mark.slow
    def test_sigkill_between_store_and_post(self, tmp_path: Path) -> None:
        """SIGKILL while the ticket is stored but not yet posted: the restarted app posts it
        exactly once (its start-up sweep over pending tickets).

        The first run has no triage channel, so nothing can post the ticket before the kill
        (with one, a worker that boots late sweeps it up, or holds its posting lease when
        killed, depending on timing)."""
        db = tmp_path / "tickets.sqlite3"
        with RecordingFake() as fake:
            env = h.server_env(fake.api_url, tmp_path, SLACK_API_TIMEOUT="30")
            first = {k: v for k, v in env.items() if k != "SUPPORT_CHANNEL_ID"}
            proc, base, _log = run_server(first, tmp_path)
            try:
                # The requester's reply hangs, so the worker never reaches the triage post.
                fake.fail_channel("C111", "delay", 1, delay=60)
                raw, headers = h.event_request(h.mention(h.UNANSWERABLE))
                assert h.post(base + "/slack/events", raw, headers).status == 200
                wait_until(lambda: _db_tickets(db), 10, "the ticket stored")
                wait_until(lambda: fake.calls("chat.postMessage"), 10, "the (hanging) reply")
            finally:
                kill_group(proc)
            assert _db_tickets(db)[0][1] is None  # stored, not posted
            fake.reset()
            proc, base, _log = run_server(env, tmp_path)
            try:
                wait_until(lambda: fake.delivered("chat.postMessage", SUPPORT), 15,
                           "the triage post after restart")
                fake.wait_quiet(1.5)  # both workers swept; a second post would be counted
                assert len(fake.delivered("chat.postMessage", SUPPORT)) == 1
                assert _db_tickets(db)[0][1] is not None
            finally:
                kill_group(proc, signal.SIGTERM)
                proc.wait(15)

    @pytest.mark.slow
    def test_sigterm_finishes_in_flight_events(self, tmp_path: Path) -> None:
        """SIGTERM right after an event is acked: the reply and the triage post still reach
        the Web API (each call takes 1 s), the ticket is recorded as posted, and the exit is
        clean (code 0, no traceback)."""
        db = tmp_path / "tickets.sqlite3"
        with RecordingFake() as fake:
            env = h.server_env(fake.api_url, tmp_path)
            proc, base, log = run_server(env, tmp_path)
            fake.latency = 1.0
            raw, headers = h.event_request(h.mention(h.UNANSWERABLE))
            assert h.post(base + "/slack/events", raw, headers).status == 200
            time.sleep(0.2)  # the worker has begun the event's Web API calls (each takes 1 s)
            kill_group(proc, signal.SIGTERM)
            assert proc.wait(20) == 0
            output = log.read_text(errors="replace")
            assert "Traceback" not in output, output
            assert [c.params["channel"] for c in fake.calls("chat.postMessage")] == [
                "C111", SUPPORT]
            assert _db_tickets(db)[0][1] is not None, output
