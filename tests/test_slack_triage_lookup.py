"""Triage posts survive a lost response without a second post: before re-posting a pending
ticket, the retry looks for it in the support channel's history (in process, against the fake
Web API and both in-process stores)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.slack.app import make_client
from bot.slack.triage import Triage
from bot.tickets import MemoryTicketStore, NewTicket, open_store
from tests.fake_slack import FakeSlack

CHANNEL = "CSUP"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def slack(fake: FakeSlack) -> FakeSlack:
    fake.reset()
    return fake


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path):
    if request.param == "memory":
        return MemoryTicketStore()
    return open_store(f"sqlite:///{tmp_path / 'triage.sqlite3'}")


def _triage(slack: FakeSlack, store) -> Triage:
    client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=slack.api_url,
                                  slack_api_timeout=2))
    return Triage(client, store, CHANNEL, lease_seconds=0.3)


def _ticket(store, question: str = "why was my app <!here> rejected?", thread: int = 1):
    ts = f"{thread}.0"
    ticket, created = store.open_ticket(NewTicket(requester="W1", question=question,
                                                  reason="no_match", channel="C1",
                                                  thread_ts=ts, message_ts=ts))
    assert created
    return ticket


def _triage_posts(slack: FakeSlack, ticket_id: str) -> list[dict]:
    return [m for m in slack.messages(CHANNEL)
            if str(m.get("text", "")).startswith(f"{ticket_id} from ")]


class TestLostResponse:
    def test_a_post_whose_response_was_lost_is_recorded_not_repeated(self, slack, store):
        """The post landed but its response never came: the retry finds it in the channel's
        history and records it; the ticket is in triage once."""
        ticket = _ticket(store)
        triage = _triage(slack, store)
        slack.fail("lost", times=1, methods={"chat.postMessage"})
        assert triage.post(ticket) is False
        assert len(_triage_posts(slack, ticket.id)) == 1  # it did land
        assert [t.number for t in store.pending()] == [ticket.number]

        time.sleep(0.4)  # the uncertain attempt's lease runs out
        assert triage.retry_pending() == 1
        posts = _triage_posts(slack, ticket.id)
        assert len(posts) == 1, posts
        stored = store.get(ticket.number)
        assert stored.posted and (stored.triage_channel, stored.triage_ts) == (CHANNEL,
                                                                             posts[0]["ts"])
        assert len(slack.calls("chat.postMessage")) == 1  # no second post, not even a retry
        assert store.pending() == []

    def test_a_post_that_never_landed_is_posted_by_the_retry(self, slack, store):
        """The connection dropped before Slack took the post: the history has nothing, so the
        retry posts it, once."""
        ticket = _ticket(store)
        triage = _triage(slack, store)
        slack.fail("close", times=1, methods={"chat.postMessage"})
        assert triage.post(ticket) is False
        assert _triage_posts(slack, ticket.id) == []
        time.sleep(0.4)
        assert triage.retry_pending() == 1
        assert len(_triage_posts(slack, ticket.id)) == 1
        assert store.get(ticket.number).posted

    def test_found_among_many_later_messages(self, slack, store):
        """The lookup pages through the history: 250 later posts do not hide the ticket's."""
        ticket = _ticket(store)
        triage = _triage(slack, store)
        slack.fail("lost", times=1, methods={"chat.postMessage"})
        triage.post(ticket)
        others = [_ticket(store, f"other question {i}", thread=i + 2) for i in range(250)]
        client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=slack.api_url))
        for other in others:  # someone else's posts, e.g. another worker's tickets
            client.chat_postMessage(channel=CHANNEL, text=f"{other.id} from <@W1>: ...")
        time.sleep(0.4)
        before = len(slack.calls("chat.postMessage"))
        triage._post(store.get(ticket.number), look_first=True)
        assert len(slack.calls("chat.postMessage")) == before
        assert len(_triage_posts(slack, ticket.id)) == 1 and store.get(ticket.number).posted

    def test_a_similar_id_is_not_taken_for_the_ticket(self, slack, store):
        """FAQ-1's lookup does not mistake FAQ-10's post for its own."""
        first = _ticket(store)
        for i in range(9):
            _ticket(store, f"question {i}", thread=i + 2)
        tenth = store.get(first.number + 9)
        assert tenth.id.endswith("10")
        triage = _triage(slack, store)
        assert triage.post(tenth) is True
        triage._post(store.get(first.number), look_first=True)
        assert len(_triage_posts(slack, first.id)) == 1
        assert store.get(first.number).triage_ts != store.get(tenth.number).triage_ts

    def test_history_unavailable_still_posts(self, slack, store):
        """When the history cannot be read (scope missing, Slack failing), the retry posts
        anyway: a ticket must reach triage; a rare double post beats a lost ticket."""
        ticket = _ticket(store)
        triage = _triage(slack, store)
        slack.go_down("500", methods={"conversations.history"})
        assert triage._post(ticket, look_first=True) is True
        assert len(_triage_posts(slack, ticket.id)) == 1
