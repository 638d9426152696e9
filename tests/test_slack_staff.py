"""The support-staff side over real HTTP: triage buttons (and who may press them), the
requester kept informed, relays both ways, /faq reload, and feedback on logged questions.

One in-process faqbot per module (tests/staff_harness.py) against the fake Web API; requests
are signed like Slack's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack import staff_blocks as sb
from tests import slack_helpers as h
from tests.staff_harness import (
    LEAD,
    OUTSIDER,
    REQUESTER,
    STAFF,
    SUPPORT,
    StaffServer,
    elements,
    options,
    texts,
    thread_reply,
    triage_click,
)

NASTY = " <!channel> &lt;!here&gt; <@U123> & co"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffServer]:
    srv = StaffServer(tmp_path_factory.mktemp("staff"))
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def srv(server: StaffServer) -> StaffServer:
    server.fresh().fake.members = ["UBOT", STAFF]
    return server


def _click(srv: StaffServer, ticket, action_id: str, user: str, post=None) -> None:
    element = elements(post.blocks)[action_id] if post is not None else {
        "action_id": action_id, "value": str(ticket.number),
        "text": {"type": "plain_text", "text": action_id}}
    assert srv.action(triage_click(element, ticket, user=user, post=post)).status == 200


def _update(srv: StaffServer, ticket):
    (update,) = srv.fake.wait_for("chat.update", 1)
    assert update.params["channel"] == SUPPORT and update.params["ts"] == ticket.triage_ts
    return update


def test_a_mention_is_matched_against_one_listener(
        srv: StaffServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt tries its listeners in order and runs the first that matches: mentions, the most
    frequent requests, are registered first, not behind the relay, App Home, every button and
    command. Counted on a real mention, which is answered all the same; Bolt builds the
    arguments of a function it calls only twice (the listener's matcher and the listener
    itself), never for faqbot's middleware."""
    import slack_bolt.listener.custom_listener as listener_module
    import slack_bolt.listener_matcher.builtins as matcher_module
    import slack_bolt.listener_matcher.custom_listener_matcher as custom_matcher_module
    import slack_bolt.middleware.custom_middleware as middleware_module
    from slack_bolt.listener.listener import Listener

    tried: list[Listener] = []
    matches = Listener.matches
    monkeypatch.setattr(Listener, "matches",
                        lambda self, **kw: tried.append(self) or matches(self, **kw))
    built: list[str] = []
    for module in (listener_module, matcher_module, custom_matcher_module, middleware_module):
        build = module.build_required_kwargs
        monkeypatch.setattr(module, "build_required_kwargs", lambda build=build, name=module.__name__,
                            **kw: built.append(name) or build(**kw))
    assert srv.event(h.mention(h.ANSWERABLE)).status == 200
    srv.fake.wait_for("chat.postMessage", 1, timeout=10)
    assert len(tried) == 1
    assert sorted(built) == [listener_module.__name__, matcher_module.__name__]


class TestTriagePost:
    def test_carries_everything_and_buttons(self, srv: StaffServer) -> None:
        """The triage post keeps id, requester, escaped question, reason and permalink, and
        adds the status, Take / Resolve and the Answer-with-FAQ-entry select."""
        ticket, told, post = srv.open_ticket(h.UNANSWERABLE + NASTY)
        text = post.params["text"]
        assert ticket.id in text and f"<@{REQUESTER}>" in text and "no_match" in text
        assert "status: Open" in text
        assert "https://fake.slack.com/archives/C111/p" in json.dumps(post.blocks)
        for raw in ("<!channel>", "<!here>", "<@U123>"):
            assert raw not in texts(post)
        assert "&amp; co" in text
        found = elements(post.blocks)
        assert {sb.ACTION_TAKE, sb.ACTION_RESOLVE, sb.ACTION_ANSWER} <= set(found)
        assert sb.ACTION_REOPEN not in found and sb.ACTION_ADD_TO_FAQ not in found
        values = [o["value"] for o in options(found[sb.ACTION_ANSWER])]
        assert values == [f"{ticket.number}:{e}" for e in ("review-time", "not-approved", "cap")]

    def test_requester_gets_close_button(self, srv: StaffServer) -> None:
        """The "ticket opened" reply in the requester's thread carries *Close ticket*."""
        ticket, told, _ = srv.open_ticket()
        close = elements(told.blocks)[sb.ACTION_CLOSE]
        assert close["value"] == str(ticket.number)
        assert sb.ACTION_DETAILS not in elements(told.blocks)  # only for cap increases


class TestTake:
    def test_staff_takes(self, srv: StaffServer) -> None:
        """*Take* by a triage-channel member: in progress, assigned, triage message updated,
        and the requester told in their thread."""
        ticket, _, post = srv.open_ticket()
        _click(srv, ticket, sb.ACTION_TAKE, STAFF, post)
        update = _update(srv, ticket)
        assert "In progress" in texts(update) and f"<@{STAFF}>" in update.params["text"]
        assert "Take over" in json.dumps(update.blocks)
        told = srv.wait(lambda: srv.posts("C111", ticket.thread_ts))[0]
        assert told.params["text"] == f"<@{STAFF}> is looking at *{ticket.id}*."
        now = srv.ticket(ticket.number)
        assert (now.status, now.assignee) == ("in_progress", STAFF)

    def test_support_user_ids_count_as_staff(self, srv: StaffServer) -> None:
        """A user in SUPPORT_USER_IDS who is not in the triage channel may act too."""
        ticket, _, post = srv.open_ticket()
        _click(srv, ticket, sb.ACTION_TAKE, LEAD, post)
        _update(srv, ticket)
        assert srv.ticket(ticket.number).assignee == LEAD

    def test_membership_cached(self, srv: StaffServer) -> None:
        """conversations.members is asked at most once for several clicks within a minute."""
        ticket, _, post = srv.open_ticket()
        _click(srv, ticket, sb.ACTION_TAKE, STAFF, post)
        _click(srv, ticket, sb.ACTION_RESOLVE, STAFF, post)
        srv.fake.wait_for("chat.update", 2)
        assert len(srv.fake.calls("conversations.members")) <= 1


class TestRefused:
    @pytest.mark.parametrize("action_id", [sb.ACTION_TAKE, sb.ACTION_RESOLVE, sb.ACTION_REOPEN,
                                           sb.ACTION_ADD_TO_FAQ, sb.ACTION_ANSWER])
    @pytest.mark.parametrize("user", [OUTSIDER, REQUESTER])
    def test_non_staff_refused(self, srv: StaffServer, caplog: pytest.LogCaptureFixture,
                               action_id: str, user: str) -> None:
        """Anyone not support staff (the requester included) gets an ephemeral refusal; a
        warning names user, action and ticket; nothing changes and nothing is updated."""
        ticket, _, post = srv.open_ticket()
        before = srv.ticket(ticket.number)
        element = {"action_id": action_id, "value": str(ticket.number),
                   "text": {"type": "plain_text", "text": "x"}}
        selected = None
        if action_id == sb.ACTION_ANSWER:
            selected = {"text": {"type": "plain_text", "text": "x"},
                        "value": f"{ticket.number}:review-time"}
        with caplog.at_level(logging.WARNING, logger="bot.slack.staff"):
            srv.action(triage_click(element, ticket, user=user, post=post, selected=selected))
            (refusal,) = srv.fake.wait_for("chat.postEphemeral", 1)
        assert refusal.params["user"] == user and refusal.params["channel"] == SUPPORT
        assert "Only support staff" in refusal.params["text"]
        srv.quiet(0.3)
        assert srv.fake.calls("chat.update") == [] and srv.posts() == []
        assert srv.ticket(ticket.number) == before
        warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(user in m and action_id in m and ticket.id in m for m in warning), warning

    def test_forged_close_on_someone_elses_ticket(self, srv: StaffServer) -> None:
        """A forged *Close ticket* naming another user's ticket is refused like any other."""
        ticket, told, _ = srv.open_ticket()
        button = elements(told.blocks)[sb.ACTION_CLOSE]
        body = h.click(button, user=OUTSIDER, channel="C111", message_ts="1.2")
        body["container"]["is_ephemeral"] = False
        srv.action(body)
        (refusal,) = srv.fake.wait_for("chat.postEphemeral", 1)
        assert refusal.params["user"] == OUTSIDER
        assert "Only the person who opened this ticket" in refusal.params["text"]
        srv.quiet(0.3)
        assert srv.ticket(ticket.number).status == "open"
        assert srv.fake.calls("chat.update") == []

    def test_forged_value_does_not_grant_anything(self, srv: StaffServer) -> None:
        """The actor is the request's user: a value naming a staff member (or garbage) does
        not make an outsider staff."""
        ticket, _, post = srv.open_ticket()
        for value in (json.dumps({"user": STAFF, "ticket": ticket.number}), f"{ticket.number}"):
            element = {"action_id": sb.ACTION_RESOLVE, "value": value,
                       "text": {"type": "plain_text", "text": "Resolve"}}
            body = triage_click(element, ticket, user=OUTSIDER, post=post)
            body["user"]["name"] = STAFF  # names mean nothing either
            srv.action(body)
        srv.fake.wait_for("chat.postEphemeral", 2)
        srv.quiet(0.3)
        assert srv.ticket(ticket.number).status == "open"
        assert srv.fake.calls("chat.update") == []


class TestResolveReopen:
    def test_resolve_then_reopen(self, srv: StaffServer) -> None:
        """*Resolve* updates the triage message (Reopen and Add to FAQ appear) and tells the
        requester; *Reopen* brings the ticket back to open."""
        ticket, _, post = srv.open_ticket()
        _click(srv, ticket, sb.ACTION_RESOLVE, STAFF, post)
        update = _update(srv, ticket)
        assert f"Resolved* by <@{STAFF}>" in texts(update)
        assert {sb.ACTION_REOPEN, sb.ACTION_ADD_TO_FAQ} <= set(elements(update.blocks))
        assert sb.ACTION_TAKE not in elements(update.blocks)
        told = srv.wait(lambda: srv.posts("C111", ticket.thread_ts))[0]
        assert told.params["text"].startswith(f"<@{STAFF}> resolved *{ticket.id}*")
        assert srv.ticket(ticket.number).status == "resolved"
        srv.fake.reset()
        _click(srv, ticket, sb.ACTION_REOPEN, STAFF)
        update = _update(srv, ticket)
        assert "*Open*" in texts(update) and sb.ACTION_TAKE in elements(update.blocks)
        assert srv.ticket(ticket.number).status == "open"

    def test_requester_closes_own_ticket(self, srv: StaffServer) -> None:
        """The requester's *Close ticket* resolves it, updates the triage message and removes
        the button from their reply."""
        ticket, told, _ = srv.open_ticket()
        message = {"type": "message", "ts": "1700009999.000001", "text": told.params["text"],
                   "blocks": told.blocks}
        body = h.click(elements(told.blocks)[sb.ACTION_CLOSE], user=REQUESTER, channel="C111",
                       message=message, message_ts="1700009999.000001",
                       thread_ts=ticket.thread_ts)
        body["container"]["is_ephemeral"] = False
        srv.action(body)
        updates = srv.fake.wait_for("chat.update", 2)
        by_channel = {u.params["channel"]: u for u in updates}
        assert f"Resolved* by <@{REQUESTER}>" in texts(by_channel[SUPPORT])
        assert not elements(by_channel["C111"].blocks)
        assert srv.ticket(ticket.number).status == "resolved"


class TestAnswerWithEntry:
    def test_answers_and_resolves(self, srv: StaffServer) -> None:
        """Choosing an entry posts its answer to the requester's thread and resolves."""
        ticket, _, post = srv.open_ticket()
        select = elements(post.blocks)[sb.ACTION_ANSWER]
        option = next(o for o in options(select) if o["value"].endswith(":review-time"))
        srv.action(triage_click(select, ticket, user=STAFF, post=post, selected=option))
        answer = srv.wait(lambda: srv.posts("C111", ticket.thread_ts))[0]
        assert "several days" in answer.params["text"]
        assert f"<@{STAFF}> (support) answered *{ticket.id}*" in answer.params["text"]
        update = _update(srv, ticket)
        assert "`review-time`" in texts(update)
        now = srv.ticket(ticket.number)
        assert now.status == "resolved"
        assert [e.text for e in now.history if e.kind == "answered"] == ["review-time"]


class TestAddToFaq:
    def test_draft_posted_in_triage_thread(self, srv: StaffServer) -> None:
        """*Add to FAQ* on a resolved ticket drafts YAML from the question and the staff reply,
        posts it (escaped) in the triage thread, records it, and updates the message."""
        ticket, _, post = srv.open_ticket("what is the mars weather api <b> & more")
        srv.event(thread_reply("Use the <https://mars.example|Mars API> & retry",
                               channel=SUPPORT, thread_ts=ticket.triage_ts, user=STAFF))
        srv.wait(lambda: srv.posts("C111", ticket.thread_ts))
        _click(srv, ticket, sb.ACTION_RESOLVE, STAFF, post)
        _update(srv, ticket)
        srv.fake.reset()
        _click(srv, ticket, sb.ACTION_ADD_TO_FAQ, STAFF)
        draft = srv.wait(lambda: srv.posts(SUPPORT, ticket.triage_ts))[0]
        body = texts(draft)
        assert "question:" in body
        assert "what is the mars weather api &lt;b&gt; &amp; more" in body.lower()
        assert "Mars API (https://mars.example) &amp; retry" in body
        assert "<b>" not in body
        update = _update(srv, ticket)
        assert f"FAQ draft posted by <@{STAFF}>" in texts(update)
        kinds = [e.kind for e in srv.ticket(ticket.number).history]
        assert "faq_draft" in kinds

    def test_not_before_resolved(self, srv: StaffServer) -> None:
        """On an open ticket *Add to FAQ* explains what to do first and drafts nothing."""
        ticket, _, _ = srv.open_ticket()
        _click(srv, ticket, sb.ACTION_ADD_TO_FAQ, STAFF)
        (note,) = srv.fake.wait_for("chat.postEphemeral", 1)
        assert "Resolve" in note.params["text"]
        assert srv.posts() == []


class TestRelay:
    def test_staff_reply_relayed_escaped(self, srv: StaffServer) -> None:
        """A staff reply in the triage thread reaches the requester's thread, escaped."""
        ticket, _, _ = srv.open_ticket()
        srv.event(thread_reply("Try again <!channel> &lt;@U123&gt; <@U123> & see",
                               channel=SUPPORT, thread_ts=ticket.triage_ts, user=STAFF))
        relay = srv.only(lambda: srv.posts("C111", ticket.thread_ts))
        assert relay.params["text"] == (
            f"<@{STAFF}> (support): Try again @channel &lt;@U123&gt; &lt;@U123&gt; &amp; see")
        for raw in ("<!channel>", "<@U123>"):
            assert raw not in texts(relay)
        history = srv.ticket(ticket.number).history
        assert [(e.kind, e.actor) for e in history if e.kind == "staff_reply"] == [
            ("staff_reply", STAFF)]

    def test_requester_reply_relayed_back_not_answered(self, srv: StaffServer) -> None:
        """The requester's reply in their thread goes to the triage thread and is not
        answered as a new question (even when the FAQ could answer it)."""
        ticket, _, _ = srv.open_ticket()
        srv.event(thread_reply(h.ANSWERABLE + " <@U123>", channel="C111",
                               thread_ts=ticket.thread_ts, user=REQUESTER))
        relay = srv.only(lambda: srv.posts(SUPPORT, ticket.triage_ts))
        assert f"<@{REQUESTER}> (requester)" in relay.params["text"]
        assert "how long is the review &lt;@U123&gt;" in relay.params["text"]
        srv.quiet()
        assert srv.posts("C111") == []

    def test_question_itself_not_relayed(self, srv: StaffServer) -> None:
        """A ticket asked by a mention inside a thread: the ``message`` event of that same
        mention is not relayed as a reply; a later reply in the thread is."""
        thread = "1500000000.000200"
        mention = h.mention(h.UNANSWERABLE + " asked in a thread", thread_ts=thread)
        srv.event(mention)
        ticket = srv.wait(lambda: srv._posted("C111", thread))
        srv.fake.reset()
        same = thread_reply(mention["event"]["text"], channel="C111", thread_ts=thread,
                            user=REQUESTER)
        same["event"].update(ts=mention["event"]["ts"], event_ts=mention["event"]["ts"])
        srv.event(same)
        srv.event(thread_reply("any news?", channel="C111", thread_ts=thread, user=REQUESTER))
        relay = srv.only(lambda: srv.posts(SUPPORT, ticket.triage_ts))
        srv.quiet(0.3)
        assert "any news?" in relay.params["text"] and len(srv.posts()) == 1

    def test_internal_note_stays(self, srv: StaffServer) -> None:
        """A triage-thread reply starting with // is not relayed."""
        ticket, _, _ = srv.open_ticket()
        srv.event(thread_reply("// checking with the API team", channel=SUPPORT,
                               thread_ts=ticket.triage_ts, user=STAFF))
        srv.quiet()
        assert srv.posts() == []

    def test_redelivery_relayed_once(self, srv: StaffServer) -> None:
        """The same reply delivered twice (a Slack retry) is relayed once."""
        ticket, _, _ = srv.open_ticket()
        body = thread_reply("once only", channel=SUPPORT, thread_ts=ticket.triage_ts,
                            user=STAFF)
        srv.event(body)
        srv.event(body, extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
        srv.wait(lambda: srv.posts("C111"))
        srv.quiet()
        assert len(srv.posts("C111")) == 1

    @pytest.mark.parametrize("kind", ["other_bot", "own_relay", "own_user", "edit", "deletion",
                                      "bot_subtype"])
    def test_never_relayed(self, srv: StaffServer, kind: str) -> None:
        """Bots' messages (our own relays included), edits and deletions are never relayed,
        in either direction."""
        ticket, _, _ = srv.open_ticket()
        for channel, thread in ((SUPPORT, ticket.triage_ts), ("C111", ticket.thread_ts)):
            body = thread_reply("hello", channel=channel, thread_ts=thread, user=STAFF)
            event = body["event"]
            if kind == "other_bot":
                event.update(bot_id="B888", bot_profile={"id": "B888", "name": "other"})
            elif kind == "own_relay":
                event.update(user="UBOT", bot_id="BBOT")
            elif kind == "own_user":
                event.update(user="UBOT")
            elif kind == "edit":
                event["edited"] = {"user": STAFF, "ts": event["ts"]}
            elif kind == "deletion":
                deleted = h.payload("event_message_deleted")
                deleted["event"].update(channel=channel, previous_message={
                    "type": "message", "user": STAFF, "text": "hello", "thread_ts": thread,
                    "ts": event["ts"]})
                deleted["event_id"] = body["event_id"]
                body = deleted
            elif kind == "bot_subtype":
                event.update(subtype="bot_message", bot_id="B888")
                event.pop("user")
            srv.event(body)
        changed = h.payload("event_message_changed")
        changed["event"].update(channel=SUPPORT)
        changed["event"]["message"]["thread_ts"] = ticket.triage_ts
        changed["event_id"] = "EvChanged" + kind
        srv.event(changed)
        srv.quiet()
        assert srv.posts() == []

    def test_dm_ticket_conversation_runs_in_a_thread_on_the_question(self, srv: StaffServer
                                                                     ) -> None:
        """A top-level DM that becomes a ticket: the notice (in place) says where support
        will reply; staff replies arrive in a thread on the question, and the requester's
        replies there reach the triage thread instead of opening new tickets."""
        body = h.direct_message(h.UNANSWERABLE, user=REQUESTER)
        dm, ts = body["event"]["channel"], body["event"]["ts"]
        srv.event(body)
        notice = srv.only(lambda: srv.posts(dm))
        assert notice.params.get("thread_ts") is None  # a DM is answered in place
        assert "support will reply in a thread on your message" in notice.params["text"]
        ticket = srv.wait(lambda: srv._posted(dm, ts))
        assert ticket.thread_ts == ts
        srv.fake.reset()

        srv.event(thread_reply("Which app id is it?", channel=SUPPORT,
                               thread_ts=ticket.triage_ts, user=STAFF))
        relay = srv.only(lambda: srv.posts(dm, ts))
        assert "Which app id is it?" in relay.params["text"]

        srv.event(thread_reply("it is app 42", channel=dm, thread_ts=ts, user=REQUESTER,
                               channel_type="im"))
        back = srv.only(lambda: srv.posts(SUPPORT, ticket.triage_ts))
        assert "it is app 42" in back.params["text"]
        srv.quiet()
        assert len(srv.store.list()) == len({t.number for t in srv.store.list()})
        assert [t.number for t in srv.store.list() if t.channel == dm] == [ticket.number]

    def test_slash_command_ticket_is_followed_up_in_a_dm(self, srv: StaffServer) -> None:
        """/faq is private: its ticket's notice says support replies in a DM, and staff
        replies and the resolved notice go to the asker's DM, never to the channel where
        the command was typed."""
        fields = h.slash(h.UNANSWERABLE + " via slash", user=REQUESTER, channel="C777")
        assert srv.command(fields).status == 200
        (told,) = srv.fake.wait_for("chat.postEphemeral", 1)
        assert "support will reply in a direct message" in told.params["text"]
        ticket = srv.wait(lambda: next((t for t in srv.store.list()
                                        if t.channel == "C777" and t.posted), None))
        srv.fake.reset()
        srv.event(thread_reply("Looking into it", channel=SUPPORT,
                               thread_ts=ticket.triage_ts, user=STAFF))
        relay = srv.only(lambda: srv.posts(REQUESTER))
        assert relay.params.get("thread_ts") is None and "Looking into it" in relay.params["text"]
        _click(srv, ticket, sb.ACTION_RESOLVE, STAFF)
        srv.wait(lambda: len(srv.posts(REQUESTER)) == 2)
        assert "resolved" in srv.posts(REQUESTER)[1].params["text"]
        srv.quiet()
        assert srv.posts("C777") == []

    def test_dm_thread_without_ticket_still_answered(self, srv: StaffServer) -> None:
        """A DM thread reply with no ticket behind it is still answered as a question."""
        body = h.payload("event_message_im_thread")
        body["event_id"] = "EvStaffDmThread"
        body["event"]["text"] = h.ANSWERABLE
        srv.event(body)
        (reply,) = srv.fake.wait_for("chat.postMessage", 1)
        assert "several days" in reply.params["text"]


class TestReload:
    def test_staff_reload(self, srv: StaffServer) -> None:
        """/faq reload by staff reloads the knowledge now and says what happened."""
        srv.kb_path.write_text(h.SLACK_KB.replace("title: Test FAQ", "title: Test FAQ v2"),
                               encoding="utf-8")
        try:
            body = srv.command(h.slash("reload", user=STAFF)).json()
            assert body["response_type"] == "ephemeral"
            assert body["text"].startswith("Reloaded ") and "3 entries" in body["text"]
            assert srv.holder.current.title == "Test FAQ v2"
            body = srv.command(h.slash("reload", user=LEAD)).json()
            assert "has not changed" in body["text"]
        finally:
            srv.kb_path.write_text(h.SLACK_KB, encoding="utf-8")
            srv.holder.reload()

    def test_broken_file_reported(self, srv: StaffServer) -> None:
        """A broken file is reported with its problems; the old knowledge stays in service."""
        before = srv.holder.current
        srv.kb_path.write_text("version: 1\nentries: [<oops>\n", encoding="utf-8")
        try:
            body = srv.command(h.slash("reload", user=STAFF)).json()
            assert "still serving the previous version" in body["text"]
            assert "```" in body["text"] and "<oops>" not in body["text"]
            assert srv.holder.current is before
        finally:
            srv.kb_path.write_text(h.SLACK_KB, encoding="utf-8")
            srv.holder.reload()

    def test_refused_for_non_staff(self, srv: StaffServer, caplog: pytest.LogCaptureFixture
                                   ) -> None:
        """/faq reload by anyone else is refused (ephemeral) and reloads nothing."""
        checks = srv.holder.checks
        with caplog.at_level(logging.WARNING, logger="bot.slack.staff"):
            body = srv.command(h.slash("reload", user=OUTSIDER)).json()
        assert body["response_type"] == "ephemeral" and "Only support staff" in body["text"]
        assert srv.holder.checks == checks
        assert any(OUTSIDER in r.getMessage() and "reload" in r.getMessage()
                   for r in caplog.records)

    def test_other_faq_commands_unaffected(self, srv: StaffServer) -> None:
        """/faq QUESTION is still answered by the answering listener."""
        body = srv.command(h.slash(h.ANSWERABLE, user=OUTSIDER)).json()
        assert "several days" in body["text"]


class TestQuestionLog:
    def test_questions_recorded_with_feedback(self, srv: StaffServer) -> None:
        """Answered questions are logged; *Solved* on the answer sets the feedback."""
        body = h.mention(h.ANSWERABLE + " (logged)")
        srv.event(body)
        (reply,) = srv.fake.wait_for("chat.postMessage", 1)
        logged = [q for q in srv.store.questions() if q["question"].endswith("(logged)")]
        assert len(logged) == 1 and logged[0]["action"] == "answer"
        assert logged[0]["entry"] == "review-time" and logged[0]["requester"] == "W222"
        message = {"type": "message", "ts": "1700000001.000001", "text": reply.params["text"],
                   "blocks": reply.blocks}
        solved = h.buttons(reply.blocks)["faq_solved"]
        srv.action(h.click(solved, message=message, message_ts="1700000001.000001",
                           thread_ts=body["event"]["ts"]))
        srv.fake.wait_for("chat.update", 1)
        srv.wait(lambda: [q for q in srv.store.questions()
                          if q["id"] == logged[0]["id"] and q["feedback"] == "helpful"])

    def test_feedback_on_an_answer_picked_from_a_clarification(self, srv: StaffServer) -> None:
        """"Did you mean…" → a pick → *Solved*: the feedback lands on the logged question."""
        body = h.mention(h.CLARIFY)
        srv.event(body)
        (clarify,) = srv.fake.wait_for("chat.postMessage", 1)
        logged = [q for q in srv.store.questions() if q["action"] == "clarify"]
        assert logged, "the clarified question is logged"
        pick = next(b for a, b in h.buttons(clarify.blocks).items() if a.startswith("faq_pick"))
        message = {"type": "message", "ts": "1700000004.000004",
                   "text": clarify.params["text"], "blocks": clarify.blocks}
        srv.action(h.click(pick, message=message, message_ts="1700000004.000004",
                           thread_ts=body["event"]["ts"]))
        answer = srv.wait(lambda: [c for c in srv.fake.calls("chat.postMessage")
                                   if "faq_solved" in h.buttons(c.blocks)])[0]
        message = {"type": "message", "ts": "1700000005.000005", "text": answer.params["text"],
                   "blocks": answer.blocks}
        srv.action(h.click(h.buttons(answer.blocks)["faq_solved"], message=message,
                           message_ts="1700000005.000005", thread_ts=body["event"]["ts"]))
        srv.wait(lambda: [q for q in srv.store.questions()
                          if q["id"] == logged[-1]["id"] and q["feedback"] == "helpful"])

    def test_the_entry_picked_from_a_clarification_is_recorded(self, srv: StaffServer) -> None:
        """"Did you mean…" → the second candidate picked: the logged question keeps that entry
        (for ``kb gaps``), and nothing else on the row changes."""
        body = h.mention(h.CLARIFY)
        srv.event(body)
        (clarify,) = srv.fake.wait_for("chat.postMessage", 1)
        logged = max((q for q in srv.store.questions() if q["action"] == "clarify"),
                     key=lambda q: q["id"])
        second = h.buttons(clarify.blocks)["faq_pick_1"]
        message = {"type": "message", "ts": "1700000006.000006",
                   "text": clarify.params["text"], "blocks": clarify.blocks}
        srv.action(h.click(second, message=message, message_ts="1700000006.000006",
                           thread_ts=body["event"]["ts"]))
        entry = json.loads(second["value"])["entry"]
        (row,) = srv.wait(lambda: [q for q in srv.store.questions()
                                   if q["id"] == logged["id"] and q["picked"]])
        assert row["picked"] == entry
        assert {k: v for k, v in row.items() if k != "picked"} == {
            k: v for k, v in logged.items() if k != "picked"}

    def test_none_of_these_marks_the_clarified_question_not_helpful(
            self, srv: StaffServer) -> None:
        """*None of these* under "Did you mean…": the logged question's feedback is
        not_helpful (``kb gaps`` lists it), and no entry is recorded as picked."""
        body = h.mention(h.CLARIFY)
        srv.event(body)
        (clarify,) = srv.fake.wait_for("chat.postMessage", 1)
        logged = max((q for q in srv.store.questions() if q["action"] == "clarify"),
                     key=lambda q: q["id"])
        message = {"type": "message", "ts": "1700000008.000008",
                   "text": clarify.params["text"], "blocks": clarify.blocks}
        srv.action(h.click(h.buttons(clarify.blocks)["faq_none"], message=message,
                           message_ts="1700000008.000008", thread_ts=body["event"]["ts"]))
        (row,) = srv.wait(lambda: [q for q in srv.store.questions()
                                   if q["id"] == logged["id"] and q["feedback"]])
        assert (row["feedback"], row["picked"]) == ("not_helpful", None)

    def test_ticket_questions_recorded(self, srv: StaffServer) -> None:
        """A question that becomes a ticket is logged with its reason."""
        srv.open_ticket(h.UNANSWERABLE + " (logged ticket)")
        logged = [q for q in srv.store.questions() if q["question"].endswith("(logged ticket)")]
        assert [(q["action"], q["reason"]) for q in logged] == [("ticket", "no_match")]


class TestWithoutHolder:
    def test_reload_unavailable(self, tmp_path: Path) -> None:
        """An app started without a KnowledgeHolder says reload is unavailable."""
        srv = StaffServer(tmp_path, holder=False)
        try:
            body = srv.command(h.slash("reload", user=STAFF)).json()
            assert "reload is unavailable" in body["text"]
        finally:
            srv.close()
