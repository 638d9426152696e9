"""`faqbot run` in HTTP mode, as in production (gunicorn in a subprocess), driven by signed
requests over real HTTP on 127.0.0.1, against the fake Slack Web API in tests/fake_slack.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.knowledge import parse_knowledge
from bot.matching import decide
from bot.tickets import open_store
from tests import slack_helpers as h
from tests.fake_slack import Call, FakeSlack

FAQ_CHANNEL = "CFAQ"
KB = parse_knowledge(h.SLACK_KB)


class Server:
    def __init__(self, fake: FakeSlack, base: str, database_url: str = "") -> None:
        self.fake = fake
        self.base = base
        self.url = base + "/slack/events"
        self.database_url = database_url  # the server's ticket store (read it, never write)

    def event(self, body: dict, **kwargs: object) -> h.Response:
        raw, headers = h.event_request(body)
        return h.post(self.url, raw, headers, **kwargs)  # type: ignore[arg-type]

    def command(self, fields: dict) -> h.Response:
        raw, headers = h.command_request(fields)
        return h.post(self.url, raw, headers)

    def action(self, body: dict) -> h.Response:
        raw, headers = h.action_request(body)
        return h.post(self.url, raw, headers)

    def replies(self, channel: str | None = None) -> list:
        return [c for c in self.fake.calls("chat.postMessage")
                if channel is None or c.params.get("channel") == channel]

    def quiet(self, seconds: float = 0.5) -> None:
        """Wait until the background listeners have gone quiet (FakeSlack.wait_quiet)."""
        self.fake.wait_quiet(seconds)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("slack-server")
    with FakeSlack() as fake:
        env = h.server_env(fake.api_url, tmp, FAQ_CHANNELS=FAQ_CHANNEL)
        proc, base = h.start_server(env, tmp)
        try:
            yield Server(fake, base, env["DATABASE_URL"])
        finally:
            h.stop_server(proc)


@pytest.fixture
def slack(server: Server) -> Server:
    server.fake.settle()
    server.fake.reset()
    return server


def _precondition(question: str, action: str) -> None:
    assert decide(question, KB).action == action, f"test KB: {question!r} should {action}"


class TestServing:
    def test_healthz(self, slack: Server) -> None:
        """GET /healthz answers 200 with the status and the number of knowledge entries."""
        response = h.get(slack.base + "/healthz")
        assert response.status == 200
        assert response.json() == {"status": "ok", "entries": 3, "mode": "http"}

    def test_other_paths_404(self, slack: Server) -> None:
        """Only /slack/events and /healthz are served."""
        assert h.get(slack.base + "/nope").status == 404

    def test_url_verification(self, slack: Server) -> None:
        """The url_verification handshake echoes the challenge."""
        body = h.payload("event_url_verification")
        response = slack.event(body)
        assert response.status == 200
        assert response.json() == {"challenge": body["challenge"]}

    def test_bad_signature_401(self, slack: Server) -> None:
        """A request signed with the wrong secret gets 401 and has no effect."""
        response = slack.event(h.mention(h.ANSWERABLE), secret="wrong-secret")
        assert response.status == 401
        slack.quiet()
        assert slack.fake.calls() == []

    def test_unsigned_401(self, slack: Server) -> None:
        """A request without signature headers gets 401."""
        raw, headers = h.event_request(h.mention(h.ANSWERABLE))
        assert h.post(slack.url, raw, headers, signed=False).status == 401

    def test_stale_timestamp_401(self, slack: Server) -> None:
        """A correctly signed request from 6 minutes ago gets 401 and has no effect."""
        old = int(time.time()) - 6 * 60
        raw, headers = h.command_request(h.slash(h.ANSWERABLE))
        assert h.post(slack.url, raw, headers, timestamp=old).status == 401
        assert slack.event(h.mention(h.UNANSWERABLE), timestamp=old).status == 401
        slack.quiet()
        assert slack.fake.calls() == []


class TestMentions:
    def test_answer_in_thread(self, slack: Server) -> None:
        """A mention with an answerable question gets the answer in a thread on it."""
        _precondition(h.ANSWERABLE, "answer")
        body = h.mention(h.ANSWERABLE)
        response = slack.event(body)
        assert response.status == 200 and response.seconds < 3
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.params["channel"] == "C111"
        assert reply.params["thread_ts"] == body["event"]["ts"]
        assert reply.blocks[0]["text"]["text"] == KB.entry("review-time").question
        assert "several days" in reply.params["text"]
        assert {"faq_solved", "faq_not_helpful"} <= set(h.buttons(reply.blocks))

    def test_replies_go_over_kept_alive_connections(self, slack: Server) -> None:
        """The reply is sent by the app's own Web API client, which keeps its connections
        open (bot/slack/webclient.py), not by a client opened for the request, whose urllib
        asks the server to close the connection after each call."""
        slack.event(h.mention(h.ANSWERABLE))
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.headers.get("connection", "").lower() != "close", reply.headers
        assert reply.headers["authorization"] == f"Bearer {h.BOT_TOKEN}"

    def test_mention_inside_thread_replies_in_that_thread(self, slack: Server) -> None:
        """A mention in an existing thread is answered in that thread."""
        slack.event(h.mention(h.ANSWERABLE, thread_ts="1500000000.000100"))
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.params["thread_ts"] == "1500000000.000100"

    def test_empty_mention_gets_help(self, slack: Server) -> None:
        """A bare mention (the real payload has no text) gets the help message."""
        body = h.payload("event_app_mention_thread")
        body["event_id"] = "EvEmptyMention1"
        body["event"]["ts"] = "1234.5678"
        slack.event(body)
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert "Topics" in reply.params["text"] and "#help" in reply.params["text"]

    def test_ticket_opened_and_triaged(self, slack: Server) -> None:
        """An unanswerable question opens a ticket: the requester is told its id in the
        thread, and triage gets a top-level post with id, requester, escaped question,
        reason and permalink."""
        _precondition(h.UNANSWERABLE, "ticket")
        question = h.UNANSWERABLE + " <!channel> &lt;!here&gt; <@U123> & co"
        body = h.mention(question, user="W777")
        slack.event(body)
        triage = None
        deadline = time.monotonic() + 10
        while triage is None and time.monotonic() < deadline:
            triage = next(iter(slack.replies("CSUPPORT")), None)
            time.sleep(0.05)
        assert triage is not None, "no triage post"
        slack.quiet()  # then count: a second reply or triage post would be seen
        (told,) = slack.replies("C111")
        ticket_id = told.params["text"].split("ticket *")[1].split("*")[0]
        assert told.params["thread_ts"] == body["event"]["ts"]
        assert told.params["text"] == (
            f"I couldn't find this in the FAQ — I've opened ticket *{ticket_id}*; "
            "support will reply here.")
        assert "thread_ts" not in triage.params or not triage.params["thread_ts"]
        text = triage.params["text"]
        assert ticket_id in text and "<@W777>" in text and "no_match" in text
        assert "what is the weather like on mars today" in text
        assert "&lt;@U123&gt;" in text and "&lt;!here&gt;" in text and "&amp; co" in text
        # built from auth.test's url (Slack's documented format): no chat.getPermalink call
        permalink = "https://fake.slack.com/archives/C111/p" + body["event"]["ts"].replace(".", "")
        assert permalink in json.dumps(triage.params)
        assert slack.fake.calls("chat.getPermalink") == []

    def test_cap_entry_answers_and_opens_ticket(self, slack: Server) -> None:
        """A cap-increase question gets the answer and the ticket id together."""
        _precondition(h.CAP, "ticket")
        slack.event(h.mention(h.CAP))
        slack.fake.wait_for("chat.postMessage", 2)
        slack.quiet()
        (told,) = slack.replies("C111")
        assert "Support form" in told.params["text"] and "FAQ-" in told.params["text"]
        (triage,) = slack.replies("CSUPPORT")
        assert "cap_increase" in triage.params["text"]


class TestDirectMessages:
    def test_dm_answered_in_conversation(self, slack: Server) -> None:
        """A top-level DM is answered in the DM, not in a thread."""
        slack.event(h.direct_message(h.ANSWERABLE))
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.params["channel"] == "D111"
        assert not reply.params.get("thread_ts")

    def test_dm_thread_answered_in_thread(self, slack: Server) -> None:
        """A DM sent inside a thread is answered in that thread."""
        body = h.payload("event_message_im_thread")
        body["event_id"] = "EvDmThread1"
        body["event"]["text"] = h.ANSWERABLE
        slack.event(body)
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.params["thread_ts"] == "1726133698.626339"

    @pytest.mark.parametrize(("text", "expected"), [
        ("thanks, that fixed it!", "You're welcome"),
        ("hi 👋", "/faq"),
        ("?", "/faq"),
        ("2", "/faq"),
        ("👍", "You're welcome"),
    ])
    def test_small_talk_gets_a_short_reply_and_no_ticket(
        self, slack: Server, text: str, expected: str
    ) -> None:
        """Greetings, thanks and messages with no words ("?", "2") in a DM get a short reply:
        no FAQ answer, no ticket."""
        slack.event(h.direct_message(text))
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert expected in str(reply.params)
        slack.quiet(0.3)
        assert [c.params["channel"] for c in slack.fake.calls("chat.postMessage")] == ["D111"]


class TestIgnored:
    @pytest.mark.parametrize("name", [
        "event_app_mention_edited",
        "event_app_mention_from_bot",
        "event_message_im_from_bot",
        "event_message_bot_message",
        "event_message_from_app_bot",
        "event_message_changed",
        "event_message_changed_im_tombstone",
        "event_message_deleted",
        "event_message_channel_join",
        "event_message_me_message",
        "event_app_home_opened_messages",
    ])
    def test_never_answered(self, slack: Server, name: str) -> None:
        """Bots (ours included), edits, deletions, joins and other subtypes get no reply."""
        body = h.payload(name)
        body["event_id"] = f"EvIgnored-{name}"  # fresh: a dedupe hit must not hide a bug
        event = body["event"]
        if "text" in event:
            event["text"] = f"<@UBOT> {h.ANSWERABLE}"
        assert slack.event(body).status == 200
        sentinel = h.direct_message(h.ANSWERABLE)
        slack.event(sentinel)
        slack.fake.wait_for("chat.postMessage", 1)
        slack.quiet(0.3)
        assert [c.params["channel"] for c in slack.fake.calls("chat.postMessage")] == ["D111"]

    def test_own_dm_echo_ignored(self, slack: Server) -> None:
        """Our own message in a DM (user = the bot) is not answered."""
        body = h.direct_message(h.ANSWERABLE, user="UBOT")
        slack.event(body)
        slack.quiet()
        assert slack.fake.calls("chat.postMessage") == []


class TestDedupe:
    def test_retry_with_same_event_id(self, slack: Server) -> None:
        """The same event delivered twice (X-Slack-Retry-Num) produces one reply."""
        body = h.mention(h.UNANSWERABLE)
        slack.event(body)
        slack.event(body, extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
        slack.event(body, extra={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "timeout"})
        slack.fake.wait_for("chat.postMessage", 2)  # reply + triage
        slack.quiet()
        assert len(slack.replies("C111")) == 1
        assert len(slack.replies("CSUPPORT")) == 1

    def test_concurrent_redeliveries_record_once(self, slack: Server) -> None:
        """A ticket-opening mention delivered four times at once (two event ids for the same
        message, each retried) gets one reply and one triage post, and the store has one
        ticket and one logged question for it."""
        question = f"{h.UNANSWERABLE} concurrently {time.time_ns()}"
        body = h.mention(question)
        other = json.loads(json.dumps(body))
        other["event_id"] = body["event_id"] + "X"
        sends = [(body, {}), (body, {"X-Slack-Retry-Num": "1"}), (other, {}),
                 (other, {"X-Slack-Retry-Num": "1"})]
        threads = [threading.Thread(target=slack.event, args=(b,), kwargs={"extra": extra})
                   for b, extra in sends]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        slack.fake.wait_for("chat.postMessage", 2)  # reply + triage
        slack.quiet()
        assert len(slack.replies("C111")) == 1
        assert len(slack.replies("CSUPPORT")) == 1
        store = open_store(slack.database_url)
        try:
            assert [t.question for t in store.list(limit=1000)].count(question) == 1
            assert [q["question"] for q in store.questions()].count(question) == 1
        finally:
            store.close()

    def test_same_message_new_event_id(self, slack: Server) -> None:
        """The same message redelivered under a new event_id produces one reply."""
        body = h.mention(h.ANSWERABLE)
        slack.event(body)
        again = json.loads(json.dumps(body))
        again["event_id"] = body["event_id"] + "X"
        slack.event(again)
        slack.fake.wait_for("chat.postMessage", 1)
        slack.quiet()
        assert len(slack.replies()) == 1


class TestFaqChannels:
    def test_confident_answer_posted(self, slack: Server) -> None:
        """A top-level message in FAQ_CHANNELS with a confident match is answered."""
        body = h.channel_message(h.ANSWERABLE, channel=FAQ_CHANNEL)
        slack.event(body)
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        assert reply.params["channel"] == FAQ_CHANNEL
        assert reply.params["thread_ts"] == body["event"]["ts"]

    @pytest.mark.parametrize("question", [h.UNANSWERABLE, h.CLARIFY, h.CAP])
    def test_unsure_or_ticket_stays_silent(self, slack: Server, question: str) -> None:
        """Anything but a confident answer gets no reply and opens no ticket there."""
        slack.event(h.channel_message(question, channel=FAQ_CHANNEL))
        slack.quiet(0.8)
        assert slack.fake.calls("chat.postMessage") == []

    def test_other_channels_ignored(self, slack: Server) -> None:
        """Channel messages outside FAQ_CHANNELS are not answered."""
        slack.event(h.channel_message(h.ANSWERABLE, channel="COTHER"))
        slack.quiet()
        assert slack.fake.calls("chat.postMessage") == []


class TestSlashCommand:
    def test_answer_is_ephemeral_in_ack(self, slack: Server) -> None:
        """/faq QUESTION acks with an ephemeral answer; no Web API call, no response_url."""
        response = slack.command(h.slash(h.ANSWERABLE + " &lt;!channel&gt; <@U123>"))
        assert response.status == 200 and response.seconds < 3
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert "several days" in body["text"]
        assert "faq_post" in h.buttons(body["blocks"])
        asked = body["blocks"][0]["elements"][0]["text"]  # the echoed question, escaped
        assert asked == "You asked:\n&gt; how long is the review &lt;!channel&gt; &lt;@U123&gt;"
        slack.quiet(0.3)
        assert slack.fake.calls() == []

    @pytest.mark.parametrize("text", ["", "help", "  HELP ", "?", "2", "hi"])
    def test_help(self, slack: Server, text: str) -> None:
        """/faq alone, /faq help, or with no words to ask about (or only a greeting) lists
        the topics and how to reach support, and opens no ticket."""
        body = slack.command(h.slash(text)).json()
        assert body["response_type"] == "ephemeral"
        assert "review, limits" in body["text"] and "#help" in body["text"]
        slack.quiet(0.3)
        assert slack.fake.calls() == []

    def test_post_to_channel(self, slack: Server) -> None:
        """*Post to channel* posts the answer with who asked (escaped) via chat.postMessage."""
        body = slack.command(h.slash(h.ANSWERABLE + " <@U123>", user="W111")).json()
        button = h.buttons(body["blocks"])["faq_post"]
        assert slack.action(h.click(button, user="W111", ephemeral=True)).status == 200
        (post,) = slack.fake.wait_for("chat.postMessage", 1)
        assert post.params["channel"] == "C111"
        assert post.params["text"].startswith("<@W111> asked: how long is the review &lt;@U123&gt;")
        assert "several days" in post.params["text"]

    def test_ticket_from_command(self, slack: Server) -> None:
        """/faq with an unanswerable question is acked at once ("Opening a ticket…"), then
        the asker alone is told the ticket id (chat.postEphemeral) and triage gets it."""
        response = slack.command(h.slash(h.UNANSWERABLE, user="W123"))
        assert response.status == 200 and response.seconds < 3
        body = response.json()
        assert body["response_type"] == "ephemeral" and "ticket" in body["text"]
        (told,) = slack.fake.wait_for("chat.postEphemeral", 1)
        assert told.params["user"] == "W123" and told.params["channel"] == "C111"
        ticket_id = told.params["text"].split("ticket *")[1].split("*")[0]
        assert ticket_id.startswith("FAQ-")
        (triage,) = slack.fake.wait_for("chat.postMessage", 1)
        assert triage.params["channel"] == "CSUPPORT" and ticket_id in triage.params["text"]
        slack.quiet()
        assert len(slack.fake.calls("chat.postEphemeral")) == 1

    def test_cap_from_command(self, slack: Server) -> None:
        """/faq with a cap-increase question: acked at once, then one ephemeral message with
        the answer and the ticket id."""
        _precondition(h.CAP, "ticket")
        response = slack.command(h.slash(h.CAP, user="W124"))
        assert response.status == 200 and "ticket" in response.json()["text"]
        (told,) = slack.fake.wait_for("chat.postEphemeral", 1)
        assert "Support form" in told.params["text"] and "FAQ-" in told.params["text"]
        ticket_id = "FAQ-" + told.params["text"].split("FAQ-")[1].split("*")[0]
        (triage,) = slack.fake.wait_for("chat.postMessage", 1)
        assert triage.params["channel"] == "CSUPPORT" and ticket_id in triage.params["text"]


class TestButtons:
    def _answer(self, slack: Server, question: str = h.ANSWERABLE) -> tuple[dict, object]:
        body = h.mention(question)
        slack.event(body)
        (reply,) = slack.fake.wait_for("chat.postMessage", 1)
        slack.fake.reset()
        return body, reply

    def test_solved_updates_message(self, slack: Server) -> None:
        """*Solved* thanks the user by updating the answer (its buttons go away)."""
        body, reply = self._answer(slack)
        message = {"type": "message", "ts": "1700000001.000001", "text": reply.params["text"],
                   "blocks": reply.blocks}
        button = h.buttons(reply.blocks)["faq_solved"]
        slack.action(h.click(button, message=message, message_ts="1700000001.000001",
                             thread_ts=body["event"]["ts"]))
        (update,) = slack.fake.wait_for("chat.update", 1)
        assert update.params["ts"] == "1700000001.000001"
        assert "Marked solved by <@W222>" in json.dumps(update.blocks)
        assert not h.buttons(update.blocks)

    def test_solved_on_ephemeral(self, slack: Server) -> None:
        """*Solved* on an ephemeral /faq answer replies ephemerally."""
        body = slack.command(h.slash(h.ANSWERABLE)).json()
        slack.action(h.click(h.buttons(body["blocks"])["faq_solved"], user="W111",
                             ephemeral=True))
        (thanks,) = slack.fake.wait_for("chat.postEphemeral", 1)
        assert thanks.params["user"] == "W111" and "Thanks" in thanks.params["text"]

    def test_not_helpful_opens_ticket(self, slack: Server) -> None:
        """*Not helpful* opens a not_helpful ticket with the question and tells its id."""
        body, reply = self._answer(slack)
        message = {"type": "message", "ts": "1700000002.000002", "text": reply.params["text"],
                   "blocks": reply.blocks}
        slack.action(h.click(h.buttons(reply.blocks)["faq_not_helpful"], message=message,
                             message_ts="1700000002.000002", thread_ts=body["event"]["ts"]))
        slack.fake.wait_for("chat.postMessage", 2)
        slack.quiet()
        (told,) = slack.replies("C111")
        (triage,) = slack.replies("CSUPPORT")
        assert told.params["thread_ts"] == body["event"]["ts"]
        ticket_id = told.params["text"].split("ticket *")[1].split("*")[0]
        assert ticket_id in triage.params["text"]
        assert "not_helpful" in triage.params["text"]
        assert h.ANSWERABLE in triage.params["text"]

    def test_clarify_pick_answers_in_thread(self, slack: Server) -> None:
        """"Did you mean…" offers candidates; clicking one answers in the same thread."""
        _precondition(h.CLARIFY, "clarify")
        body, reply = self._answer(slack, h.CLARIFY)
        picks = {k: v for k, v in h.buttons(reply.blocks).items() if k.startswith("faq_pick_")}
        assert len(picks) >= 1
        button = picks["faq_pick_0"]
        message = {"type": "message", "ts": "1700000003.000003", "text": reply.params["text"],
                   "blocks": reply.blocks}
        slack.action(h.click(button, message=message, message_ts="1700000003.000003",
                             thread_ts=body["event"]["ts"]))
        (answer,) = slack.fake.wait_for("chat.postMessage", 1)
        assert answer.params["thread_ts"] == body["event"]["ts"]
        entry = KB.entry(json.loads(button["value"])["entry"])
        assert answer.blocks[0]["text"]["text"] == entry.question
        slack.fake.wait_for("chat.update", 1)

    def test_none_of_these_opens_a_ticket(self, slack: Server) -> None:
        """*None of these* under "Did you mean…" opens a none_of_these ticket with the question
        and the entries offered, tells its id in the thread, takes the buttons away, and is
        posted to triage once (pressed twice: still one ticket)."""
        _precondition(h.CLARIFY, "clarify")
        body, reply = self._answer(slack, h.CLARIFY)
        none = h.buttons(reply.blocks)["faq_none"]
        message = {"type": "message", "ts": "1700000007.000007", "text": reply.params["text"],
                   "blocks": reply.blocks}
        for _ in range(2):
            slack.action(h.click(none, message=message, message_ts="1700000007.000007",
                                 thread_ts=body["event"]["ts"]))
        slack.fake.wait_for("chat.postMessage", 3)
        slack.quiet()
        told = slack.replies("C111")
        (triage,) = slack.replies("CSUPPORT")
        assert all(t.params["thread_ts"] == body["event"]["ts"] for t in told)
        ticket_id = told[0].params["text"].split("ticket *")[1].split("*")[0]
        assert ticket_id.startswith("FAQ-") and ticket_id in triage.params["text"]
        assert "none_of_these" in triage.params["text"]
        offered = [json.loads(b["value"])["entry"] for k, b in h.buttons(reply.blocks).items()
                   if k.startswith("faq_pick_")]
        assert all(KB.entry(e).question in json.dumps(triage.blocks) for e in offered)
        update = slack.fake.calls("chat.update")[0]
        assert not h.buttons(update.blocks)

    def test_picking_the_cap_entry_opens_its_ticket(self, slack: Server) -> None:
        """Picking the cap entry from "Did you mean…" answers and opens the cap_increase
        ticket, as asking for it directly does: the id in the thread, the ticket in triage."""
        question = "users allowed review eta"
        _precondition(question, "clarify")
        body, reply = self._answer(slack, question)
        cap = next(b for k, b in h.buttons(reply.blocks).items()
                   if k.startswith("faq_pick_") and json.loads(b["value"])["entry"] == "cap")
        message = {"type": "message", "ts": "1700000004.000004", "text": reply.params["text"],
                   "blocks": reply.blocks}
        slack.action(h.click(cap, message=message, message_ts="1700000004.000004",
                             thread_ts=body["event"]["ts"]))
        posts = slack.fake.wait_for("chat.postMessage", 2)
        told = next(c for c in posts if c.params["channel"] != "CSUPPORT")
        triage = next(c for c in posts if c.params["channel"] == "CSUPPORT")
        assert told.params["thread_ts"] == body["event"]["ts"]
        assert "Support form" in told.params["text"]
        ticket_id = told.params["text"].split("ticket *")[1].split("*")[0]
        assert ticket_id.startswith("FAQ-") and ticket_id in triage.params["text"]
        assert "cap increase" in triage.params["text"] or "cap_increase" in triage.params["text"]
        # pressed twice (a retry, a double click): still one ticket
        slack.action(h.click(cap, message=message, message_ts="1700000004.000004",
                             thread_ts=body["event"]["ts"]))
        slack.quiet()
        triage_posts = [c for c in slack.fake.calls("chat.postMessage")
                        if c.params["channel"] == "CSUPPORT"]
        assert len(triage_posts) == 1

    def test_picking_the_cap_entry_from_faq_tells_the_ticket_privately(self, slack: Server
                                                                      ) -> None:
        """/faq's "Did you mean…" is ephemeral: the cap pick's answer and ticket id go to the
        asker alone (chat.postEphemeral) and the ticket to triage."""
        body = slack.command(h.slash("users allowed review eta", user="W131")).json()
        cap = next(b for k, b in h.buttons(body["blocks"]).items()
                   if k.startswith("faq_pick_") and json.loads(b["value"])["entry"] == "cap")
        slack.action(h.click(cap, user="W131", ephemeral=True))
        (told,) = slack.fake.wait_for("chat.postEphemeral", 1)
        assert told.params["user"] == "W131" and "FAQ-" in told.params["text"]
        assert "direct message" in told.params["text"]
        (triage,) = slack.fake.wait_for("chat.postMessage", 1)
        assert triage.params["channel"] == "CSUPPORT"

    def test_none_of_these_from_faq_tells_the_ticket_privately(self, slack: Server) -> None:
        """*None of these* under /faq's ephemeral "Did you mean…": the ticket id goes to the
        asker alone (chat.postEphemeral), the ticket to triage, nothing else is posted."""
        _precondition(h.CLARIFY, "clarify")
        body = slack.command(h.slash(h.CLARIFY, user="W132")).json()
        slack.action(h.click(h.buttons(body["blocks"])["faq_none"], user="W132",
                             ephemeral=True))
        (told,) = slack.fake.wait_for("chat.postEphemeral", 1)
        assert told.params["user"] == "W132" and "ticket *FAQ-" in told.params["text"]
        (triage,) = slack.fake.wait_for("chat.postMessage", 1)
        assert triage.params["channel"] == "CSUPPORT" and "none_of_these" in triage.params["text"]
        slack.quiet()
        assert sorted(c.method for c in slack.fake.calls()) == [
            "chat.postEphemeral", "chat.postMessage"]


MARKUP_ENTRY = """\
  - id: upgrade
    question: How do I upgrade a <formula>?
    phrasings: [brew upgrade formula, upgrade homebrew formula]
    answer: "Run `brew upgrade <formula>` && wait; see [the guide](https://example.com/up). <!channel>"
"""


@pytest.fixture(scope="module")
def markup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app serving the test knowledge plus MARKUP_ENTRY."""
    tmp = tmp_path_factory.mktemp("slack-markup")
    knowledge = tmp / "markup.yaml"
    knowledge.write_text(h.SLACK_KB + MARKUP_ENTRY, encoding="utf-8")
    with FakeSlack() as fake:
        env = h.server_env(fake.api_url, tmp, KNOWLEDGE_PATH=str(knowledge))
        proc, base = h.start_server(env, tmp)
        try:
            yield Server(fake, base, env["DATABASE_URL"])
        finally:
            h.stop_server(proc)


class TestKnowledgeText:
    """What an imported FAQ holds (``<``, ``>``, ``&``, Markdown links) as Slack shows it."""

    def test_shown_as_written_and_pings_no_one(self, markup: Server) -> None:
        """The answer is escaped in every mrkdwn field, its Markdown link becomes a Slack link,
        its ``<!channel>`` stays text; the header (plain text) shows the question as written."""
        markup.event(h.mention("brew upgrade formula"))
        (reply,) = markup.fake.wait_for("chat.postMessage", 1)
        header, section = reply.blocks[0], reply.blocks[1]
        assert header["text"] == {"type": "plain_text", "text": "How do I upgrade a <formula>?"}
        assert section["text"]["text"] == (
            "Run `brew upgrade &lt;formula&gt;` &amp;&amp; wait; see "
            "<https://example.com/up|the guide>. &lt;!channel&gt;")
        assert "*How do I upgrade a &lt;formula&gt;?*" in reply.params["text"]
        assert "<!channel>" not in json.dumps(reply.params)


class TestWebApiTrouble:
    def test_rate_limited_then_success(self, slack: Server) -> None:
        """A 429 with Retry-After is retried after the wait, and the reply arrives once."""
        slack.fake.fail("429", times=1, methods={"chat.postMessage"}, retry_after=1)
        slack.event(h.mention(h.ANSWERABLE))
        first, second = slack.fake.wait_for("chat.postMessage", 2, timeout=10)
        assert second.at - first.at >= 1.0
        slack.quiet()
        assert len(slack.fake.calls("chat.postMessage")) == 2

    def test_slow_api_still_acked_fast(self, slack: Server) -> None:
        """With every Web API call taking 2 s, requests are acked well within 3 s and the
        answers still arrive."""
        slack.fake.latency = 2.0
        try:
            responses = [slack.event(h.mention(h.ANSWERABLE)) for _ in range(3)]
            responses.append(slack.command(h.slash(h.ANSWERABLE)))
            assert all(r.status == 200 and r.seconds < 1.0 for r in responses)
            slack.fake.wait_for("chat.postMessage", 3, timeout=10)
        finally:
            slack.fake.latency = 0.0

    def test_api_down_then_recovers(self, slack: Server) -> None:
        """While the Web API is down nothing crashes or duplicates; the ticket stays pending
        and is posted to triage, once, after the API recovers."""
        slack.fake.go_down("500")
        body = h.mention(h.UNANSWERABLE + " (outage)")
        assert slack.event(body).status == 200
        slack.fake.wait_for("chat.postMessage", 3, timeout=10)  # tried and retried
        slack.quiet(1.0)
        assert h.get(slack.base + "/healthz").status == 200
        recovered = time.monotonic()  # the fake's clock: it runs in this process
        slack.fake.recover()
        deadline = time.monotonic() + 20
        outage = lambda: [c for c in slack.replies("CSUPPORT")  # noqa: E731
                          if "(outage)" in c.params["text"] and c.at >= recovered]
        while not outage() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outage(), "the pending ticket was not posted after recovery"
        slack.quiet(1.5)
        # every attempt before recovery failed (500), so exactly one post succeeded after it
        assert len(outage()) == 1

    @pytest.mark.parametrize("kind", ["close", "malformed"])
    def test_broken_responses_do_not_crash(self, slack: Server, kind: str) -> None:
        """A dropped connection or malformed JSON loses at most that call; serving goes on."""
        slack.fake.fail(kind, times=1, methods={"chat.postMessage"})
        slack.event(h.mention(h.ANSWERABLE))
        slack.fake.wait_for("chat.postMessage", 1)
        slack.quiet()
        slack.event(h.mention(h.ANSWERABLE))
        slack.fake.wait_for("chat.postMessage", 2)
        assert h.get(slack.base + "/healthz").status == 200


class TestEscapingEverywhere:
    def test_no_raw_pings_in_any_post(self, slack: Server) -> None:
        """Across a mention, a DM, a ticket and /faq, no posted text carries <!channel>,
        <!here> or <@U123> from user text."""
        nasty = " <!channel> <!here> <@U123> &lt;!channel&gt;"
        slack.event(h.mention(h.UNANSWERABLE + nasty))
        slack.event(h.direct_message(h.ANSWERABLE + nasty))
        slack.event(h.mention(h.CLARIFY + nasty))
        body = slack.command(h.slash(h.ANSWERABLE + nasty, user="W111")).json()
        slack.action(h.click(h.buttons(body["blocks"])["faq_post"], user="W111",
                             ephemeral=True))
        slack.fake.wait_for("chat.postMessage", 5)
        slack.quiet()
        texts = [t for c in slack.fake.calls() for t in c.texts()]
        texts += Call("ack", body, {}).texts()  # the ephemeral answer in the ack body
        for text in texts:
            for raw in ("<!channel>", "<!here>", "<@U123>"):
                assert raw not in text, text


class TestStartup:
    def test_missing_variables_named(self, tmp_path: Path) -> None:
        """`faqbot run` without tokens fails fast, naming each missing variable."""
        env = h.server_env("http://127.0.0.1:9/api/", tmp_path)
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
            env.pop(name)
        result = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert "SLACK_BOT_TOKEN" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr
        assert "xoxb-test" not in result.stderr


class TestListenerBacklog:
    def test_submit_waits_when_the_pool_and_its_backlog_are_full(self):
        """Bolt hands listener runs to a bounded pool: past its threads and backlog, the next
        request waits for a place (a burst slows acks down instead of piling up in memory)."""
        from bot.slack.app import BoundedExecutor

        pool = BoundedExecutor(1, 1)
        release = threading.Event()
        try:
            running = pool.submit(release.wait)
            queued = pool.submit(lambda: "queued")
            third: list[object] = []
            waiting = threading.Thread(target=lambda: third.append(pool.submit(lambda: "third")))
            waiting.start()
            waiting.join(0.3)
            assert waiting.is_alive() and not third  # no place: submit waits
            release.set()
            waiting.join(5)
            assert not waiting.is_alive()
            assert running.result(5) is True and queued.result(5) == "queued"
            assert third[0].result(5) == "third"  # type: ignore[attr-defined]
        finally:
            release.set()
            pool.shutdown(wait=True)
