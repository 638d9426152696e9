"""Triage posting: exactly once across workers, retried after failures, in process against the
fake Web API and the in-memory store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.slack.app import make_client
from bot.slack.triage import Triage
from bot.tickets import MemoryTicketStore, NewTicket, open_store
from tests.fake_slack import FakeSlack


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def slack(fake: FakeSlack) -> FakeSlack:
    fake.reset()
    fake.permalinks = True
    return fake


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path):
    """Both stores: the posting lease must hold in each."""
    def make():
        if request.param == "memory":
            return MemoryTicketStore()
        return open_store(f"sqlite:///{tmp_path / 'triage.sqlite3'}")
    return make


def _client(fake: FakeSlack):
    return make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=fake.api_url))


def _ticket(store, question: str = "why <!channel>?"):
    ticket, _ = store.open_ticket(NewTicket(requester="W1", question=question,
                                            reason="no_match", channel="C1", thread_ts="1.0",
                                            message_ts="1.0"))
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
