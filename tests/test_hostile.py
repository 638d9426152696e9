"""Hostile and bad input: forged or broken requests, nasty text, poisoned knowledge files, and
staff actions forged by someone who is not staff. Nothing gets in, nothing crashes, nothing is
echoed unescaped, and the bot keeps serving."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.reload import KnowledgeHolder
from bot.slack import staff_blocks as sb
from bot.slack.guard import MAX_BODY
from tests import slack_helpers as h
from tests.fault_harness import Bot, wait_until
from tests.staff_harness import STAFF, SUPPORT, elements, triage_click

EVIL = "U0EVIL"  # an id the bot never uses itself: seeing <@U0EVIL> means user text got through


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    b = Bot(tmp_path_factory.mktemp("hostile"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def fresh(bot: Bot) -> Bot:
    wait_until(lambda: all(t.posted for t in bot.tickets()), 10, "earlier tickets posted")
    bot.fake.reset()
    return bot


def _wsgi(bot: Bot, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """Call the production WSGI stack (guard, Bolt) directly, without a socket."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http", "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": headers.get("Content-Type", ""),
    }
    for key, value in headers.items():
        if key.lower() != "content-type":
            environ["HTTP_" + key.upper().replace("-", "_")] = value
    status: list[str] = []
    body = b"".join(bot.wsgi(environ, lambda s, _h, *_a: status.append(s)))
    return int(status[0].split()[0]), body


def sign(raw: bytes, *, secret: str = h.SIGNING_SECRET, timestamp: int | None = None
         ) -> dict[str, str]:
    """Slack's v0 signature over raw bytes (slack_sdk's decodes them, so not for non-UTF-8)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def _signed(raw: bytes, content_type: str, **kwargs: Any) -> dict[str, str]:
    return {"Content-Type": content_type, **sign(raw, **kwargs)}


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _form_payload(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


BAD_REQUESTS: list[tuple[str, bytes, str, int]] = [
    ("invalid JSON", b"{not json", JSON, 400),
    ("non-UTF-8 bytes", b"\xff\xfe{\x00\x81", JSON, 400),
    ("JSON list", b"[1, 2, 3]", JSON, 400),
    ("JSON string", b'"hello"', JSON, 400),
    ("form with broken payload", b"payload=%7Bbroken", FORM, 400),
    ("form payload is a list", _form_payload([1, 2]), FORM, 400),
    ("event is a string", json.dumps({"type": "event_callback", "event": "x"}).encode(), JSON,
     400),
    ("event.text is a number", json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {
        "type": "app_mention", "text": 3, "user": "W1", "channel": "C1", "ts": "1.0"}}).encode(),
     JSON, 400),
    ("event.type is a number", json.dumps({"type": "event_callback", "event": {"type": 5}})
     .encode(), JSON, 400),
    ("actions is a string", _form_payload({"type": "block_actions", "user": {"id": "W1"},
                                           "actions": "x"}), FORM, 400),
    ("an action is not an object", _form_payload({"type": "block_actions",
                                                  "user": {"id": "W1"}, "actions": ["x"]}),
     FORM, 400),
    ("view is a string", _form_payload({"type": "view_submission", "user": {"id": "W1"},
                                        "view": "x"}), FORM, 400),
    ("unknown payload type", json.dumps({"type": "no_such_type"}).encode(), JSON, 404),
    ("unknown event type", json.dumps({"type": "event_callback", "event_id": "EvU",
                                       "event": {"type": "no_such_event"}}).encode(), JSON, 200),
    ("event without fields", json.dumps({"type": "event_callback", "event_id": "EvE",
                                         "event": {"type": "app_mention"}}).encode(), JSON, 200),
    ("block_actions without actions", _form_payload({"type": "block_actions",
                                                     "user": {"id": "W1"}}), FORM, 404),
    ("empty body", b"", JSON, 404),
]


class TestBadRequests:
    """Malformed signed requests get a 4xx (or are acknowledged and ignored), never a 500."""

    @pytest.mark.parametrize("name,raw,ctype,status", BAD_REQUESTS,
                             ids=[r[0] for r in BAD_REQUESTS])
    def test_bad_signed_request(self, fresh: Bot, name: str, raw: bytes, ctype: str,
                                status: int) -> None:
        """Each malformed body gets its 4xx/200 and has no effect on Slack."""
        response = h.post(fresh.url, raw, _signed(raw, ctype), signed=False)
        assert response.status == status, response.body
        fresh.event(h.direct_message(h.ANSWERABLE))  # still serving
        wait_until(lambda: fresh.replies("D111"), 5, "the sentinel answer")
        assert [c.params.get("channel") for c in fresh.fake.calls("chat.postMessage")] == [
            "D111"]

    def test_huge_body(self, fresh: Bot) -> None:
        """A signed body over 1 MiB gets 413 (unread); a 1,000,000-byte mention is handled."""
        big = json.dumps({"type": "event_callback", "event": {
            "type": "app_mention", "text": "a" * (MAX_BODY + 10)}}).encode()
        assert h.post(fresh.url, big, {"Content-Type": JSON}).status == 413
        body = h.mention("how long is the review " + "x" * 999_000)
        response = fresh.event(body)
        assert response.status == 200 and response.seconds < 3
        wait_until(lambda: fresh.replies(), 10, "the answer")

    def test_form_body_mentioning_payload(self, fresh: Bot) -> None:
        """/faq with the word "payload" in it is answered (Bolt alone answers 404)."""
        response = fresh.command(h.slash("what payload does the webhook send"))
        assert response.status == 200
        assert response.json()["response_type"] == "ephemeral"

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["type", "event", "text", "user", "channel", "ts",
                                           "actions", "view", "value", "action_id", "id",
                                           "container", "message", "event_id", "thread_ts"]),
                          children, max_size=5),
        max_leaves=12),
        kind=st.sampled_from(["event_callback", "block_actions", "view_submission", None]),
        as_form=st.booleans())
    def test_fuzzed_payloads_never_500(self, bot: Bot, payload: Any, kind: str | None,
                                       as_form: bool) -> None:
        """Random payload shapes, signed, never get a 5xx from the production WSGI stack."""
        if isinstance(payload, dict) and kind is not None:
            payload = {**payload, "type": kind}
        raw = _form_payload(payload) if as_form else json.dumps(payload).encode()
        status, body = _wsgi(bot, raw, _signed(raw, FORM if as_form else JSON))
        assert status < 500, (status, body)


class TestSignatures:
    """Any request without a valid, fresh signature gets 401 and has no effect, whatever its
    body (valid, broken, huge or not UTF-8)."""

    BODIES = [
        (b"{not json", JSON),
        (b"\xff\xfe\x00", JSON),
        (json.dumps(h.mention(h.UNANSWERABLE)).encode(), JSON),
        (urlencode(h.slash(h.UNANSWERABLE)).encode(), FORM),
        (b"payload=%7Bbroken", FORM),
    ]

    @pytest.mark.parametrize("how", ["unsigned", "wrong secret", "6 minutes old",
                                     "6 minutes ahead", "garbage timestamp",
                                     "garbage signature"])
    def test_401(self, fresh: Bot, how: str) -> None:
        """Unsigned, wrongly signed, replayed (6 min old) or future-dated: 401."""
        now = int(time.time())
        for raw, ctype in self.BODIES:
            headers = {"Content-Type": ctype}
            if how == "wrong secret":
                headers.update(sign(raw, secret="not-the-secret"))
            elif how == "6 minutes old":
                headers.update(sign(raw, timestamp=now - 360))
            elif how == "6 minutes ahead":
                headers.update(sign(raw, timestamp=now + 360))
            elif how == "garbage timestamp":
                headers.update({"X-Slack-Request-Timestamp": "soon",
                                "X-Slack-Signature": "v0=00"})
            elif how == "garbage signature":
                headers.update({**sign(raw), "X-Slack-Signature": "v0=" + "0" * 64})
            response = h.post(fresh.url, raw, headers, signed=False)
            assert response.status == 401, (how, raw[:30], response.body)
        fresh.fake.wait_quiet(0.3)
        assert fresh.fake.calls() == []
        assert h.get(fresh.base + "/healthz").status == 200

    def test_replayed_valid_request(self, fresh: Bot) -> None:
        """A real request captured and replayed 6 minutes later is refused."""
        raw, headers = h.event_request(h.mention(h.UNANSWERABLE))
        old = int(time.time()) - 361
        assert h.post(fresh.url, raw, headers, timestamp=old).status == 401
        assert fresh.tickets() == [] or all(
            t.question != h.UNANSWERABLE for t in fresh.tickets())


NASTY = {
    "40k characters": "why " + "x" * 39_990,
    "40k words": " ".join(["review", "approval", "scope", "<!channel>"] * 4_000)[:40_000],
    "only emoji": ":fire: :rocket: 🎉🎉🎉 " * 200,
    "only mentions": f"<@{EVIL}> <@{EVIL}|boss> <!here> <!channel> <!everyone> " * 100,
    "zero-width and RTL": "how\u200b long\u200d is\u202e the\u2066 review\u200f\u061c" * 300,
    "mrkdwn and links": (f"*bold* _it_ ~s~ `code` ```block``` <http://evil.example|trusted> "
                         f"<mailto:x@evil.example|support> <!subteam^S1|@team> <#C999|general> "
                         f"&lt;!channel&gt; <@{EVIL}> > quote"),
    "block kit injection": '"}]},{"type":"section","text":{"type":"mrkdwn","text":"<!channel>"}}',
}
RAW_MARKUP = ("<!channel", "<!here", "<!everyone", "<!subteam", f"<@{EVIL}", "<http://evil",
              "<mailto:", "<#C999")


def _assert_escaped(calls: list[Any]) -> None:
    for call in calls:
        for text in call.texts():
            for raw in RAW_MARKUP:
                assert raw not in text, (call.method, raw, text[:300])


class TestNastyText:
    """Hostile message text is answered in bounded time and never echoed unescaped: not in the
    thread reply, the triage post, the /faq ack, a relay, or the App Home."""

    @pytest.mark.parametrize("name", list(NASTY))
    def test_mention_dm_and_slash(self, fresh: Bot, name: str) -> None:
        """A mention, a DM and /faq with the text: answered within 5 s, nothing unescaped."""
        text = NASTY[name]
        start = time.monotonic()
        fresh.event(h.mention(text, user="W222"))
        fresh.event(h.direct_message(text, user="W222"))
        ack = fresh.command(h.slash(text, user="W222"))
        assert ack.status == 200 and ack.seconds < 3
        wait_until(lambda: len(fresh.replies("C111")) >= 1 and fresh.replies("D111"), 10,
                   "both replies")
        elapsed = time.monotonic() - start
        print(f"[hostile] {name}: answered in {elapsed:.3f}s")
        assert elapsed < 5, elapsed
        wait_until(lambda: all(t.posted for t in fresh.tickets()), 10, "tickets posted")
        calls = fresh.fake.calls()
        from tests.fake_slack import Call

        _assert_escaped([*calls, Call("ack", ack.json(), {})])

    def test_relay_and_app_home(self, fresh: Bot) -> None:
        """Staff see the hostile question in the triage post, the App Home and relays, escaped;
        the requester sees a staff reply escaped too."""
        from tests.staff_harness import thread_reply

        text = NASTY["mrkdwn and links"]
        body = h.mention(h.UNANSWERABLE + " " + text, user="W222")
        fresh.event(body)
        ticket = wait_until(lambda: next((t for t in fresh.tickets()
                                          if t.thread_ts == body["event"]["ts"] and t.posted),
                                         None), 10, "the ticket posted")
        fresh.event(thread_reply(text, channel="C111", thread_ts=body["event"]["ts"],
                                 user="W222"))
        fresh.event(thread_reply(text, channel=SUPPORT, thread_ts=ticket.triage_ts,
                                 user=STAFF))
        home = h.payload("event_app_home_opened_home")
        home["event_id"] = "EvHomeHostile"
        home["event"]["user"] = STAFF
        fresh.event(home)
        wait_until(lambda: fresh.fake.calls("views.publish")
                   and len(fresh.fake.calls("chat.postMessage")) >= 4, 10, "relays and home")
        _assert_escaped(fresh.fake.calls())


class TestKnowledgeFiles:
    """A poisoned knowledge file is rejected with a clear message and the running bot keeps
    answering from the last good knowledge."""

    FILES = {
        "python object tag": ("title: !!python/object/apply:os.system ['echo pwned']\n"
                              "entries: []\n"),
        "python name tag": "x: !!python/name:os.system\nentries: []\n",
        "billion laughs": ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
                           + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                                     for p, c in zip("abcdefgh", "bcdefghi", strict=True))),
        "duplicate keys": h.SLACK_KB + "title: Again\n",
        "duplicate answer": h.SLACK_KB.replace("    tags: [limits]\n",
                                               "    tags: [limits]\n    answer: two\n"),
        "not UTF-8": b"version: 1\nentries: []\ntitle: \xff\xfe\n",
        "deep nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    }
    MESSAGES = {
        "python object tag": "not allowed", "python name tag": "not allowed",
        "billion laughs": "anchors and aliases", "duplicate keys": "duplicate key 'title'",
        "duplicate answer": "duplicate key 'answer'", "not UTF-8": "not UTF-8",
        "deep nesting": "nesting", "50 MB": "too large",
    }

    @pytest.mark.parametrize("name", [*FILES, "50 MB"])
    def test_rejected_and_last_good_kept(self, tmp_path: Path, name: str) -> None:
        """The holder refuses the file with PATH:LINE: message and serves the previous KB."""
        path = tmp_path / "faq.yaml"
        path.write_text(h.SLACK_KB, encoding="utf-8")
        holder = KnowledgeHolder(path, settle=0.0, confirm=0.0)
        good = holder.current
        if name == "50 MB":
            with open(path, "wb") as f:
                f.write(b"version: 1\nentries: []\n")
                f.write(b"# " + b"x" * (1024 * 1024 - 3) + b"\n")
                for _ in range(49):
                    f.write(b"# " + b"x" * (1024 * 1024 - 3) + b"\n")
        else:
            data = self.FILES[name]
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
        start = time.monotonic()
        result = holder.reload()
        assert time.monotonic() - start < 5
        assert result.status == "failed"
        assert holder.current is good
        lines = [str(p) for p in result.problems]
        assert lines and all(line.startswith(f"{path}:") for line in lines)
        assert self.MESSAGES[name] in "\n".join(lines), lines

    def test_running_bot_keeps_answering(self, tmp_path: Path) -> None:
        """/faq reload by staff with a poisoned file says what is wrong; answers continue."""
        bot = Bot(tmp_path)
        try:
            bot.kb_path.write_text(self.FILES["billion laughs"], encoding="utf-8")
            ack = bot.command(h.slash("reload", user=STAFF))
            assert ack.status == 200
            reply = json.dumps(ack.json())
            assert "anchors and aliases" in reply and "still serving" in reply
            bot.event(h.mention(h.ANSWERABLE))
            wait_until(lambda: bot.replies(), 10, "the answer")
            bot.fake.wait_quiet()  # then count: a late duplicate would be seen
            (answer,) = bot.replies()
            assert "several days" in answer.params["text"]
        finally:
            bot.close()


class TestForgedStaffActions:
    """A non-staff user replaying a staff button with someone else's ticket is refused,
    logged, and nothing changes."""

    def _ticket(self, bot: Bot) -> tuple[Any, dict[str, Any], Any]:
        bot.fake.reset()
        body = h.mention(h.UNANSWERABLE, user="W222")
        bot.event(body)
        ticket = wait_until(lambda: next((t for t in bot.tickets()
                                          if t.thread_ts == body["event"]["ts"] and t.posted),
                                         None), 10, "the ticket posted")
        post = wait_until(lambda: bot.triaged(), 10, "the triage post")[0]
        return ticket, elements(post.blocks), post

    @pytest.mark.parametrize("action", [sb.ACTION_TAKE, sb.ACTION_RESOLVE, sb.ACTION_ADD_TO_FAQ,
                                        sb.ACTION_CLOSE, sb.ACTION_DETAILS, sb.ACTION_ANSWER])
    def test_refused(self, bot: Bot, action: str, caplog: pytest.LogCaptureFixture) -> None:
        """An outsider's forged click changes nothing and is logged as refused."""
        ticket, els, post = self._ticket(bot)
        element = els.get(action) or {"action_id": action, "type": "button",
                                      "text": {"type": "plain_text", "text": "x"},
                                      "value": str(ticket.number)}
        selected = None
        if action == sb.ACTION_ANSWER:
            option = (element.get("option_groups") or [{}])[0].get("options", [{}])[0] or {
                "value": f"{ticket.number}:review-time"}
            selected = {"text": {"type": "plain_text", "text": "x"}, "value": option["value"]}
        click = triage_click(element, ticket, user="W999", post=post, selected=selected)
        bot.fake.reset()
        with caplog.at_level(logging.WARNING):
            assert bot.action(click).status == 200
            wait_until(lambda: bot.fake.calls("chat.postEphemeral"), 5, "the refusal")
            bot.fake.wait_quiet()  # then count: a second refusal would be seen
            (refusal,) = bot.fake.calls("chat.postEphemeral")
        assert refusal.params["user"] == "W999"
        assert any("refused" in r.getMessage() and "W999" in r.getMessage()
                   for r in caplog.records)
        bot.fake.wait_quiet(0.3)
        after = bot.raw_store.get(ticket.number)
        assert (after.status, after.assignee, after.details, len(after.history)) == (
            ticket.status, ticket.assignee, ticket.details, len(ticket.history))
        assert [c.method for c in bot.fake.calls()
                if c.method not in ("chat.postEphemeral", "conversations.members")] == []

    def test_forged_cap_form_submission(self, bot: Bot) -> None:
        """A view submission naming someone else's ticket is refused; details unchanged."""
        ticket, _els, _post = self._ticket(bot)
        body = h.payload("interactive_view_submission")
        body["user"]["id"] = "W999"
        from bot.slack import cap_form

        body["view"]["callback_id"] = cap_form.CALLBACK_ID
        body["view"]["private_metadata"] = json.dumps({"ticket": ticket.number})
        response = bot.action(body)
        assert response.status == 200
        assert bot.raw_store.get(ticket.number).details == {}
