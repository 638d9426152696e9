"""Triage posting: exactly once across workers, retried after failures, in process against the
fake Web API and the in-memory store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.knowledge import parse_knowledge
from bot.service import answer_delivery
from bot.slack.app import make_client
from bot.slack.triage import Triage
from bot.tickets import NewTicket, Origin, SqlTicketStore
from tests import slack_helpers as h
from tests.fake_slack import FakeSlack

KB = parse_knowledge(h.SLACK_KB)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def slack(fake: FakeSlack) -> FakeSlack:
    fake.settle()
    fake.reset()
    fake.permalinks = True
    return fake


class Clock:
    """The store's clock: the real time, moved ahead by ``advance`` (leases run out without
    sleeping)."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite-memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path, clock: Clock):
    """In memory and on disk: the posting lease must hold in each."""
    def make():
        if request.param == "sqlite-memory":
            return SqlTicketStore("sqlite://", clock=clock)
        return SqlTicketStore(f"sqlite:///{tmp_path / 'triage.sqlite3'}", clock=clock)
    return make


def _client(fake: FakeSlack):
    return make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=fake.api_url))


def _ticket(store, question: str = "why <!channel>?", thread: int = 1):
    ts = f"{thread}.0"
    ticket, _ = store.open_ticket(NewTicket(requester="W1", question=question,
                                            reason="no_match", channel="C1", thread_ts=ts,
                                            message_ts=ts))
    return ticket


class TestTriage:
    def test_exactly_once_across_workers(self, slack: FakeSlack, make_store) -> None:
        """Many threads in several workers posting the same ticket post it once."""
        store = make_store()
        ticket = _ticket(store)
        workers = [Triage(_client(slack), store, "CSUP") for _ in range(3)]
        threads = [threading.Thread(target=w.post, args=(ticket,)) for w in workers * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(slack.calls("chat.postMessage")) == 1
        assert store.get(ticket.number).posted
        assert store.pending() == []

    def test_failure_leaves_pending_and_loop_retries(self, slack: FakeSlack, make_store) -> None:
        """A failed post leaves the ticket pending; the retry loop posts it after recovery."""
        store = make_store()
        ticket = _ticket(store)
        triage = Triage(_client(slack), store, "CSUP", interval=30)
        slack.go_down("500", methods={"chat.postMessage"})
        assert triage.post(ticket) is False
        assert [t.number for t in store.pending()] == [ticket.number]
        slack.recover()
        triage.start()  # sweeps at once, then backs off after failures
        try:
            slack.wait_for("chat.postMessage", 4, timeout=10)  # 3 failed tries + 1 success
            deadline = time.monotonic() + 5
            while store.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.pending() == []
        finally:
            triage.stop()

    def test_opened_holding_the_lease_it_is_posted_without_a_claim(
        self, slack: FakeSlack, make_store
    ) -> None:
        """A ticket opened holding the poster's lease is posted by it without a second write
        to claim it, and no other worker posts it meanwhile."""
        store = make_store()
        claims: list[str] = []
        claim = store.claim_posting
        store.claim_posting = lambda number, worker, *a: claims.append(worker) or claim(
            number, worker, *a)
        poster, other = (Triage(_client(slack), store, "CSUP") for _ in range(2))
        reply = answer_delivery(["event:Ev1"], h.UNANSWERABLE, KB, store, Origin("W1"),
                                lease=poster.lease())
        assert reply is not None and reply.ticket is not None and reply.leased
        assert other.post(reply.ticket) is False  # the lease is the poster's
        assert other.retry_pending() == 0
        assert poster.retry_pending() == 0  # nor its own retry loop's, while it replies
        assert poster.post(reply.ticket, leased=reply.leased)
        assert claims == [other.worker, other.worker, poster.worker]
        assert len(slack.calls("chat.postMessage")) == 1 and store.pending() == []

    def test_the_openers_post_waits_out_its_retry_loops_attempt(
        self, slack: FakeSlack, make_store
    ) -> None:
        """The process's retry loop may try a ticket the listener has just opened holding the
        lease (it cannot claim it) at the moment the listener posts it: the listener's post
        waits that attempt out and posts, instead of leaving the ticket to the lease's end."""
        store = make_store()
        trying, go_on = threading.Event(), threading.Event()
        claim = store.claim_posting

        def slow_claim(number, worker, *a):
            trying.set()
            go_on.wait(5)
            return claim(number, worker, *a)

        store.claim_posting = slow_claim
        triage = Triage(_client(slack), store, "CSUP")
        reply = answer_delivery(["event:Ev1"], h.UNANSWERABLE, KB, store, Origin("W1"),
                                lease=triage.lease())
        assert reply is not None and reply.ticket is not None and reply.leased
        loop = threading.Thread(target=triage.retry_pending)
        loop.start()
        assert trying.wait(5)  # the retry loop's attempt is in flight, claiming
        posted: list[bool] = []
        listener = threading.Thread(
            target=lambda: posted.append(triage.post(reply.ticket, leased=True)))
        listener.start()
        listener.join(0.2)
        assert listener.is_alive()  # waiting for the attempt in flight, not given up
        go_on.set()
        loop.join(5)
        listener.join(5)
        assert posted == [True]
        assert len(slack.calls("chat.postMessage")) == 1 and store.pending() == []

    def test_a_poster_that_died_leaves_its_ticket_to_the_retry(
        self, slack: FakeSlack, make_store, clock: Clock
    ) -> None:
        """The lease a ticket was opened with runs out like a claimed one: a process that
        died before posting leaves the ticket to another's retry loop."""
        store = make_store()
        gone, other = (Triage(_client(slack), store, "CSUP", lease_seconds=30) for _ in range(2))
        reply = answer_delivery(["event:Ev2"], h.UNANSWERABLE, KB, store, Origin("W1"),
                                lease=gone.lease())
        assert reply is not None and reply.leased
        assert other.retry_pending() == 0
        clock.advance(31)
        assert other.retry_pending() == 1
        assert len(slack.calls("chat.postMessage")) == 1 and store.pending() == []
        assert Triage(_client(slack), store, None).lease() is None  # no channel: no lease

    def test_a_lease_past_half_its_time_is_claimed_again(
        self, slack: FakeSlack, make_store, clock: Clock
    ) -> None:
        """A reply slow enough that the opening lease may have run out: the opener claims
        the ticket again before posting, and does not post it if another worker did."""
        store = make_store()
        slow, other = (Triage(_client(slack), store, "CSUP", lease_seconds=120) for _ in range(2))
        clock.advance(-200)  # opened 200 s ago: its lease ran out 80 s ago
        reply = answer_delivery(["event:Ev3"], h.UNANSWERABLE, KB, store, Origin("W1"),
                                lease=slow.lease())
        clock.advance(200)
        assert reply is not None and reply.leased
        assert other.retry_pending() == 1
        assert slow.post(reply.ticket, leased=True) is False
        assert len(slack.calls("chat.postMessage")) == 1
        clock.advance(-200)
        late = answer_delivery(["event:Ev4"], h.UNANSWERABLE + " again", KB, store,
                               Origin("W2"), lease=slow.lease())
        # the store's time: 60 s into its lease, still the opener's; the real time, by which
        # the opener judges it: 200 s, so it claims the ticket again before posting
        clock.advance(60)
        assert late is not None and late.leased
        assert other.retry_pending() == 0
        assert slow.post(late.ticket, leased=True)
        assert len(slack.calls("chat.postMessage")) == 2 and store.pending() == []

    def test_without_support_channel_nothing_is_posted(self, slack: FakeSlack, make_store) -> None:
        """Without SUPPORT_CHANNEL_ID tickets stay pending and nothing is posted."""
        store = make_store()
        ticket = _ticket(store)
        triage = Triage(_client(slack), store, None)
        assert triage.post(ticket) is False and triage.retry_pending() == 0
        assert slack.calls() == [] and len(store.pending()) == 1

    def test_missing_permalink_still_posts(self, slack: FakeSlack, make_store) -> None:
        """When chat.getPermalink fails the ticket is posted without a link."""
        slack.permalinks = False
        store = make_store()
        triage = Triage(_client(slack), store, "CSUP")
        assert triage.post(_ticket(store))
        (post,) = slack.calls("chat.postMessage")
        assert "&lt;!channel&gt;" in post.params["text"] and "<#C1>" in str(post.params)


LOOKUP_CHANNEL = "CSUP"


def _lookup_triage(slack: FakeSlack, store) -> Triage:
    """A triage whose uncertain attempts' leases run out fast."""
    client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=slack.api_url,
                                  slack_api_timeout=2))
    return Triage(client, store, LOOKUP_CHANNEL, lease_seconds=0.3)


def _triage_posts(slack: FakeSlack, ticket_id: str) -> list[dict]:
    return [m for m in slack.messages(LOOKUP_CHANNEL)
            if str(m.get("text", "")).startswith(f"{ticket_id} from ")]


class TestLostResponse:
    """A post whose response was lost is not posted again: before re-posting a pending ticket,
    the retry looks for it in the support channel's history."""

    def test_a_post_whose_response_was_lost_is_recorded_not_repeated(self, slack, make_store,
                                                                      clock):
        store = make_store()
        """The post landed but its response never came: the retry finds it in the channel's
        history and records it; the ticket is in triage once."""
        ticket = _ticket(store)
        triage = _lookup_triage(slack, store)
        slack.fail("lost", times=1, methods={"chat.postMessage"})
        assert triage.post(ticket) is False
        assert len(_triage_posts(slack, ticket.id)) == 1  # it did land
        assert [t.number for t in store.pending()] == [ticket.number]

        clock.advance(1)  # the uncertain attempt's lease runs out
        assert triage.retry_pending() == 1
        posts = _triage_posts(slack, ticket.id)
        assert len(posts) == 1, posts
        stored = store.get(ticket.number)
        assert stored.posted and (stored.triage_channel, stored.triage_ts) == (LOOKUP_CHANNEL,
                                                                             posts[0]["ts"])
        assert len(slack.calls("chat.postMessage")) == 1  # no second post, not even a retry
        assert store.pending() == []

    def test_a_lost_response_under_the_opening_lease_is_retried_by_its_process(
        self, slack, make_store
    ) -> None:
        """A ticket opened holding the lease, whose post's response was lost: this process's
        retry loop looks for it under that lease (no wait for the lease to run out) and
        records it; another worker's loop keeps out until it does."""
        store = make_store()
        triage, other = _lookup_triage(slack, store), _lookup_triage(slack, store)
        triage.lease_seconds = other.lease_seconds = 120
        reply = answer_delivery(["event:Ev5"], h.UNANSWERABLE, KB, store, Origin("W1"),
                                lease=triage.lease())
        assert reply is not None and reply.leased
        slack.fail("lost", times=1, methods={"chat.postMessage"})
        assert triage.post(reply.ticket, leased=True) is False
        assert other.retry_pending() == 0  # the opener's lease still holds it
        assert triage.retry_pending() == 1
        assert len(_triage_posts(slack, reply.ticket.id)) == 1
        assert len(slack.calls("chat.postMessage")) == 1 and store.pending() == []

    def test_a_post_that_never_landed_is_posted_by_the_retry(self, slack, make_store, clock):
        store = make_store()
        """The connection dropped before Slack took the post: the history has nothing, so the
        retry posts it, once."""
        ticket = _ticket(store)
        triage = _lookup_triage(slack, store)
        slack.fail("close", times=1, methods={"chat.postMessage"})
        assert triage.post(ticket) is False
        assert _triage_posts(slack, ticket.id) == []
        clock.advance(1)
        assert triage.retry_pending() == 1
        assert len(_triage_posts(slack, ticket.id)) == 1
        assert store.get(ticket.number).posted

    def test_found_among_many_later_messages(self, slack, make_store, clock):
        store = make_store()
        """The lookup pages through the history: 250 later posts do not hide the ticket's."""
        ticket = _ticket(store)
        triage = _lookup_triage(slack, store)
        slack.fail("lost", times=1, methods={"chat.postMessage"})
        triage.post(ticket)
        others = [_ticket(store, f"other question {i}", thread=i + 2) for i in range(250)]
        client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=slack.api_url))
        for other in others:  # someone else's posts, e.g. another worker's tickets
            client.chat_postMessage(channel=LOOKUP_CHANNEL, text=f"{other.id} from <@W1>: ...")
        clock.advance(1)
        before = len(slack.calls("chat.postMessage"))
        triage._post(store.get(ticket.number), look_first=True)
        assert len(slack.calls("chat.postMessage")) == before
        assert len(_triage_posts(slack, ticket.id)) == 1 and store.get(ticket.number).posted

    def test_a_similar_id_is_not_taken_for_the_ticket(self, slack, make_store):
        store = make_store()
        """FAQ-1's lookup does not mistake FAQ-10's post for its own."""
        first = _ticket(store)
        for i in range(9):
            _ticket(store, f"question {i}", thread=i + 2)
        tenth = store.get(first.number + 9)
        assert tenth.id.endswith("10")
        triage = _lookup_triage(slack, store)
        assert triage.post(tenth) is True
        triage._post(store.get(first.number), look_first=True)
        assert len(_triage_posts(slack, first.id)) == 1
        assert store.get(first.number).triage_ts != store.get(tenth.number).triage_ts

    def test_history_unavailable_still_posts(self, slack, make_store):
        store = make_store()
        """When the history cannot be read (scope missing, Slack failing), the retry posts
        anyway: a ticket must reach triage; a rare double post beats a lost ticket."""
        ticket = _ticket(store)
        triage = _lookup_triage(slack, store)
        slack.go_down("500", methods={"conversations.history"})
        assert triage._post(ticket, look_first=True) is True
        assert len(_triage_posts(slack, ticket.id)) == 1
