"""The running app (`faqbot run`, HTTP mode) with the optional semantic model: the bundled
knowledge's `semantic:` settings apply, and the model is loaded once, before the fork."""

from __future__ import annotations

import shutil
import time

import pytest

from tests import slack_helpers as h
from tests.conftest import BUNDLED_KNOWLEDGE
from tests.fake_slack import FakeSlack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("semantic")
    fake = FakeSlack().start()
    env = h.server_env(fake.api_url, tmp, FAQBOT_SEMANTIC="auto")
    shutil.copyfile(BUNDLED_KNOWLEDGE, env["KNOWLEDGE_PATH"])
    proc, base = h.start_server(env, tmp)
    try:
        yield fake, base
    finally:
        h.stop_server(proc)
        fake.stop()


def mention_and_wait(fake: FakeSlack, base: str, text: str) -> tuple[str, list]:
    """Mention the bot with ``text``; its reply in the thread, and every post so far."""
    fake.settle()
    body = h.mention(text)
    assert h.post(base + "/slack/events", *h.event_request(body)).status == 200
    deadline = time.monotonic() + 15
    while True:
        posts = fake.calls("chat.postMessage")
        replies = [c for c in posts if c.params.get("thread_ts") == body["event"]["ts"]]
        if replies:
            return " ".join(replies[0].texts()), posts
        assert time.monotonic() < deadline, "no reply in the thread"
        time.sleep(0.05)


@pytest.mark.slow
class TestSemanticInTheApp:
    def test_a_question_worded_unlike_any_phrasing_is_answered(self, running):
        """Lexically a ticket (confidence 52.5 < 57); with the model, the React Native answer."""
        fake, base = running
        reply, _ = mention_and_wait(fake, base, "react native ok?")
        assert "React Native" in reply and "Login Kit" in reply

    def test_a_lexical_near_miss_about_something_else_becomes_a_ticket(self, running):
        """Lexically answered with review-time (66.5); the model holds it back: a ticket."""
        fake, base = running
        question = "lol this build is taking forever"
        reply, _ = mention_and_wait(fake, base, question)
        assert "several days to two weeks" not in reply
        assert "FAQ-" in reply
        deadline = time.monotonic() + 10
        while not any(c.params.get("channel") == "CSUPPORT" and question in " ".join(c.texts())
                      for c in fake.calls("chat.postMessage")):
            assert time.monotonic() < deadline, "the ticket was not posted for triage"
            time.sleep(0.05)

    def test_a_question_the_faq_leaves_out_becomes_a_ticket(self, running):
        """Lexically answered with review-time (58.6), and the model alone would answer too
        (65.8): the question is nearer a `not_covered` question (another store's review)."""
        fake, base = running
        question = "how long does the google play review take"
        reply, _ = mention_and_wait(fake, base, question)
        assert "several days to two weeks" not in reply
        assert "FAQ-" in reply
