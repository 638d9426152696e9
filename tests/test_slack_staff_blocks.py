"""Pure pieces of the staff side: the relay predicate over real payloads, relay text, the
triage post's blocks, button values, the staff directory's cache, and the FAQ draft fallback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config import Settings
from bot.knowledge import parse_knowledge
from bot.slack import staff_blocks as sb
from bot.slack.app import make_client
from bot.slack.relay import is_relay_candidate, relay_text
from bot.slack.staff import StaffDirectory
from bot.tickets import Ticket, TicketEvent
from tests import slack_helpers as h
from tests.staff_harness import StaffFakeSlack, elements, options

KB = parse_knowledge(h.SLACK_KB, "slack.yaml")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def ticket(**changes: Any) -> Ticket:
    fields: dict[str, Any] = dict(
        number=7, requester="W222", question="help <!channel> & <@U1>", reason="no_match",
        status="open", created_at=NOW, updated_at=NOW, channel="C111", thread_ts="1.0",
        message_ts="1.0", candidates=({"entry": "cap", "question": "Cap?", "score": 55.0},),
    )
    fields.update(changes)
    return Ticket(**fields)


def mrkdwn(message: dict[str, Any]) -> list[str]:
    found = [message["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks", []))
    return found


class TestRelayCandidate:
    @pytest.mark.parametrize(("name", "expected"), [
        ("event_message_thread_broadcast", True),
        ("event_message_im_thread", True),
        ("event_message_im_basic", False),  # top-level: a question, not a reply
        ("event_message_changed", False),
        ("event_message_deleted", False),
        ("event_message_bot_message", False),
        ("event_message_from_app_bot", False),
        ("event_message_im_from_bot", False),
        ("event_message_channel_join", False),
        ("event_message_me_message", False),
        ("event_app_mention_thread", False),  # the app_mention event itself
    ])
    def test_real_payloads(self, name: str, expected: bool) -> None:
        """Only a person's reply inside a thread is a relay candidate."""
        assert is_relay_candidate(h.payload(name)["event"], "UBOT") is expected

    def test_own_messages_and_edits(self) -> None:
        """Our own user's messages and edited ones are never candidates."""
        event = h.payload("event_message_thread_broadcast")["event"]
        assert not is_relay_candidate({**event, "user": "UBOT"}, "UBOT")
        assert not is_relay_candidate({**event, "edited": {"user": "U1", "ts": "1"}}, "UBOT")
        assert not is_relay_candidate({**event, "thread_ts": event["ts"]}, "UBOT")  # a parent

    def test_relay_text(self) -> None:
        """Slack markup is undone (escaped again when posted); line breaks stay."""
        event = {"text": "see <https://x.example/a?b=1&amp;c=2|the docs>\n<!here> &lt;b&gt; "
                         "<#C1|general> <https://y.example>"}
        assert relay_text(event) == ("see the docs (https://x.example/a?b=1&c=2)\n@here <b> "
                                     "#general https://y.example")


class TestValues:
    @pytest.mark.parametrize(("value", "number"), [
        ("12", 12), (" 12 ", 12), ("", None), (None, None), ("FAQ-12", None), ("-1", None),
        ('{"ticket": 12}', None), ("1" * 12, None),
    ])
    def test_ticket_value(self, value: str | None, number: int | None) -> None:
        assert sb.parse_ticket_value(value) == number

    def test_answer_value(self) -> None:
        assert sb.parse_answer_value("12:review-time") == (12, "review-time")
        assert sb.parse_answer_value("x:review-time") == (None, "review-time")
        assert sb.parse_answer_value(None) == (None, "")


class TestTriagePost:
    def test_escaped_everywhere(self) -> None:
        """The question and cap details are escaped in text and every mrkdwn field."""
        t = ticket(details={"app": "<!here> app & co", "current_users": "4800",
                            "cap_wanted": "20000", "in_production": "yes"})
        message = sb.triage_post(t, "https://fake.slack.com/x", KB)
        for text in mrkdwn(message):
            assert "<!channel>" not in text and "<!here>" not in text and "<@U1>" not in text
        details = [b for b in message["blocks"]
                   if "Cap increase details" in json.dumps(b)]
        assert len(details) == 1
        assert "&lt;!here&gt; app &amp; co" in details[0]["text"]["text"]
        assert "20,000" in details[0]["text"]["text"]
        assert "Cap increase details" in message["text"]

    def test_open_buttons_and_select(self) -> None:
        """Open: Take, Resolve and a select with the candidates first, then every entry."""
        found = elements(sb.triage_post(ticket(), None, KB)["blocks"])
        assert list(found) == [sb.ACTION_TAKE, sb.ACTION_RESOLVE, sb.ACTION_ANSWER]
        groups = found[sb.ACTION_ANSWER]["option_groups"]
        assert [o["value"] for o in groups[0]["options"]] == ["7:cap"]
        assert [o["value"] for o in groups[1]["options"]] == ["7:review-time", "7:not-approved"]

    def test_resolved_buttons_and_status(self) -> None:
        """Resolved: Reopen and Add to FAQ; the status names who resolved it."""
        t = ticket(status="resolved", history=(TicketEvent("resolved", "WSTAFF", None, NOW),))
        message = sb.triage_post(t, None, KB)
        assert list(elements(message["blocks"])) == [sb.ACTION_REOPEN, sb.ACTION_ADD_TO_FAQ]
        assert "*Resolved* by <@WSTAFF>" in json.dumps(message["blocks"])
        assert "status: Resolved" in message["text"]

    def test_select_within_slack_limits(self) -> None:
        """At most 100 options, each value within 150 characters and text within 75."""
        entries = "\n".join(
            f"  - id: e{n}\n    question: Entry number {n} " + "x" * 80 + "?\n"
            f"    answer: A{n}." for n in range(130))
        kb = parse_knowledge(f"version: 1\nentries:\n{entries}\n", "big.yaml")
        select = elements(sb.triage_post(ticket(candidates=()), None, kb)["blocks"])[
            sb.ACTION_ANSWER]
        found = options(select)
        assert len(found) == 100
        assert all(len(o["value"]) <= 150 and len(o["text"]["text"]) <= 75 for o in found)

    def test_requester_actions(self) -> None:
        """Close ticket always (while unresolved); Add details only for cap increases."""
        message = {"text": "t", "blocks": []}
        plain = sb.with_requester_actions(message, ticket())
        assert list(elements(plain["blocks"])) == [sb.ACTION_CLOSE]
        cap = sb.with_requester_actions(message, ticket(reason="cap_increase"))
        assert list(elements(cap["blocks"])) == [sb.ACTION_DETAILS, sb.ACTION_CLOSE]
        assert sb.with_requester_actions(message, ticket(status="resolved")) == message
        assert sb.with_requester_actions(message, None) == message

    def test_relays_escaped(self) -> None:
        """Relayed text never carries live markup."""
        out = sb.relay_to_requester("WSTAFF", "hi <!channel> & <@U1>")
        assert out["text"] == "<@WSTAFF> (support): hi &lt;!channel&gt; &amp; &lt;@U1&gt;"
        back = sb.relay_to_triage(ticket(), "W222", "<!here>\nline 2")
        for text in mrkdwn(back):
            assert "<!here>" not in text
        assert "(requester)" in back["text"]


class TestStaffDirectory:
    def test_members_extra_cache_and_failure(self) -> None:
        """Channel members and SUPPORT_USER_IDS are staff; the list is cached; when Slack
        fails the last known list is kept, and with none only SUPPORT_USER_IDS count."""
        with StaffFakeSlack() as fake:
            client = make_client(Settings(slack_bot_token="xoxb-t", slack_api_url=fake.api_url))
            directory = StaffDirectory(client, "CSUP", frozenset({"WLEAD"}), ttl=60)
            assert directory.is_staff("WSTAFF") and directory.is_staff("WLEAD")
            assert not directory.is_staff("W999") and not directory.is_staff("")
            assert len(fake.calls("conversations.members")) == 1
            directory._fetched -= 120  # the cache expires
            fake.go_down("malformed")  # not retried: fails at once
            assert directory.is_staff("WSTAFF")  # last known list
            fresh = StaffDirectory(client, "CSUP", frozenset({"WLEAD"}), ttl=60)
            assert not fresh.is_staff("WSTAFF") and fresh.is_staff("WLEAD")
            fake.recover()


class TestStatusLine:
    def test_status_line_assignee(self) -> None:
        assert sb.status_line(replace(ticket(), status="in_progress", assignee="WSTAFF")) == (
            "*In progress* · assignee <@WSTAFF>")
