"""Live reload in the running app: `faqbot run` (gunicorn, two workers) picks up edits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests import slack_helpers as h
from tests.fake_slack import FakeSlack

NEW_ENTRY = """\
  - id: webhooks
    question: Do you support webhooks for review results?
    phrasings: [review webhook, webhook when approved]
    answer: Webhooks for review results are not available; check the app page.
    tags: [review]
"""


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("reload")
    fake = FakeSlack().start()
    env = h.server_env(fake.api_url, tmp, KNOWLEDGE_RELOAD_INTERVAL="0.2")
    proc, base = h.start_server(env, tmp)
    try:
        yield fake, base, Path(env["KNOWLEDGE_PATH"]), tmp
    finally:
        h.stop_server(proc)
        fake.stop()


def ask(base: str, fake: FakeSlack, text: str) -> str:
    """Mention the bot; the text of its reply in the thread."""
    body = h.mention(text)
    seen = len(fake.calls("chat.postMessage"))
    assert h.post(base + "/slack/events", *h.event_request(body)).status == 200
    deadline = time.monotonic() + 10
    while True:  # other posts (a triage notice of a broken edit) may come first
        calls = fake.wait_for("chat.postMessage", seen + 1, timeout=max(deadline - time.monotonic(), 0.1))
        replies = [c for c in calls if c.params.get("thread_ts") == body["event"]["ts"]]
        if replies:
            return " ".join(replies[-1].texts())
        seen = len(calls)
        assert time.monotonic() < deadline, "no reply in the thread"


@pytest.mark.slow
class TestLiveReload:
    def test_edit_broken_then_fixed(self, running):
        """An edit is served within seconds; a broken edit keeps the old knowledge and is
        announced once in triage (not once per worker or per check); the fix is served."""
        fake, base, path, _ = running
        original = path.read_text(encoding="utf-8")

        write_atomically(path, original + NEW_ENTRY)
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = ask(base, fake, "is there a review webhook")
            if "Webhooks for review results" in text:
                break
            time.sleep(0.3)
        assert "Webhooks for review results" in text
        time.sleep(1.0)  # one worker answered; let the other poll the good version too

        write_atomically(path, original + NEW_ENTRY + "  - id: broken\n    question: [\n")

        def notices() -> list:
            return [c for c in fake.calls("chat.postMessage")
                    if c.params.get("channel") == "CSUPPORT" and "knowledge file" in str(c.params)]

        deadline = time.monotonic() + 10
        while not notices() and time.monotonic() < deadline:
            time.sleep(0.05)
        fake.wait_quiet(1.5)  # both workers check the broken file again several times
        notices = notices()
        assert len(notices) == 1, [c.params for c in notices]
        assert "not valid YAML" in notices[0].params["text"]
        assert "Webhooks for review results" in ask(base, fake, "is there a review webhook")

        write_atomically(path, original)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Webhooks for review results" not in ask(base, fake, "is there a review webhook"):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the fixed file was not served")
        assert "several days" in ask(base, fake, h.ANSWERABLE)


class TestDeliveryKeyRetention:
    def test_worker_start_forgets_week_old_delivery_keys(self, small_kb):
        """At worker start, delivery keys older than a week are purged; recent ones stay."""
        from datetime import UTC, datetime, timedelta

        from bot.config import Settings
        from bot.slack.server import DELIVERY_KEYS_KEPT_DAYS, WorkerSetup
        from bot.tickets import SqlTicketStore

        setup = WorkerSetup(Settings(), small_kb, None)
        now = [datetime.now(UTC) - timedelta(days=DELIVERY_KEYS_KEPT_DAYS + 1)]
        store = SqlTicketStore("sqlite://", clock=lambda: now[0])
        store.claim_events(["event:Old"])
        now[0] = datetime.now(UTC)
        store.claim_events(["event:New"])
        setup.store = store
        setup._forget_old_deliveries()
        assert store.claim_event("event:Old") is True
        assert store.claim_event("event:New") is False
