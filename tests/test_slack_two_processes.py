"""Two `faqbot run` processes on one PostgreSQL: a retried event delivered to both at once
gives one ticket, one reply and one triage post."""

from __future__ import annotations

import threading

import pytest

from bot.tickets import open_store
from tests import slack_helpers as h
from tests.fake_slack import FakeSlack
from tests.test_tickets import pg_url  # noqa: F401 - the fixture: a fresh schema per test


@pytest.mark.postgres
@pytest.mark.slow
class TestTwoProcessesOnePostgres:
    def test_same_retried_event_to_both(self, pg_url, tmp_path):  # noqa: F811
        """Deliveries of one event to two app processes, concurrently: exactly one of each."""
        fake = FakeSlack().start()
        servers = []
        try:
            for n in (1, 2):
                folder = tmp_path / f"app{n}"
                folder.mkdir()
                env = h.server_env(fake.api_url, folder, DATABASE_URL=pg_url)
                servers.append(h.start_server(env, folder))
            for round_no in range(3):  # a few events, each delivered four times at once
                body = h.mention(f"{h.UNANSWERABLE} round {round_no}")
                raw, headers = h.event_request(body)
                barrier = threading.Barrier(4)
                statuses: list[int] = []

                def deliver(base: str, retry: int, raw=raw, headers=headers, barrier=barrier,
                            statuses=statuses):
                    barrier.wait()
                    extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"}
                    statuses.append(h.post(base + "/slack/events", raw, headers,
                                           extra=extra if retry else None).status)

                threads = [threading.Thread(target=deliver, args=(base, retry))
                           for (_, base) in servers for retry in (0, 1)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert statuses == [200] * 4
                thread_ts = body["event"]["ts"]
                fake.wait_for("chat.postMessage", 2 * (round_no + 1), timeout=15)
            fake.wait_quiet(1.0)  # anything duplicated arrives before the count
            posts = fake.calls("chat.postMessage")
            replies = [c for c in posts if c.params.get("channel") == "C111"]
            triage = [c for c in posts if c.params.get("channel") == "CSUPPORT"]
            assert len(replies) == 3, [c.params.get("text") for c in replies]
            assert len(triage) == 3
            assert thread_ts in {c.params.get("thread_ts") for c in replies}
            store = open_store(pg_url)
            try:
                tickets = store.list()
                assert len(tickets) == 3
                assert all(t.posted for t in tickets)
            finally:
                store.close()
        finally:
            for proc, _ in servers:
                h.stop_server(proc)
            fake.stop()
