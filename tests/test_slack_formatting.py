"""Pure message builders: escaping, Block Kit shapes, text fallbacks, button references."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.knowledge import parse_knowledge
from bot.matching import Candidate, Decision
from bot.slack import formatting as fmt
from bot.tickets import Ticket
from tests.slack_helpers import SLACK_KB

KB = parse_knowledge(SLACK_KB, "slack.yaml")
NASTY = "ping <!channel> & <@U123> <!here> <https://evil.example|click>"


def mrkdwn_texts(message: dict) -> list[str]:
    found = [message["text"]]

    def walk(node: object) -> None:
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


def ticket(**changes: object) -> Ticket:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    fields: dict = dict(number=7, requester="W222", question=NASTY, reason="no_match",
                        status="open", created_at=now, updated_at=now, channel="C111",
                        thread_ts="1.0", message_ts="1.0",
                        candidates=({"entry": "cap", "question": "Cap <x>?", "score": 41.2},))
    fields.update(changes)
    return Ticket(**fields)


class TestEscape:
    @pytest.mark.parametrize(
        ("raw", "escaped"),
        [
            ("a & b", "a &amp; b"),
            ("<!channel>", "&lt;!channel&gt;"),
            ("<@U123>", "&lt;@U123&gt;"),
            ("&lt;", "&amp;lt;"),
            ("plain", "plain"),
        ],
    )
    def test_table(self, raw: str, escaped: str) -> None:
        """&, < and > become entities (and & first, so entities are not double-read)."""
        assert fmt.escape(raw) == escaped


class TestKnowledgeMrkdwn:
    @pytest.mark.parametrize(
        ("raw", "shown"),
        [
            ("Run `brew upgrade <formula>` && wait", "Run `brew upgrade &lt;formula&gt;` &amp;&amp; wait"),
            ("if a < b > c", "if a &lt; b &gt; c"),
            ("<!channel> <!here> <@U123> <!subteam^S1>",
             "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;!subteam^S1&gt;"),
            ("see <https://x.example/review|Review> or <mailto:a@b.example>",
             "see <https://x.example/review|Review> or <mailto:a@b.example>"),
            ("ask in <#C123|help>", "ask in <#C123|help>"),
            ("see [the guide](https://example.com/up) & [mail](mailto:a@b.example)",
             "see <https://example.com/up|the guide> &amp; <mailto:a@b.example|mail>"),
            ("[a <b>](https://e.example)", "<https://e.example|a &lt;b&gt;>"),
            ("[relative](docs/x.md)", "[relative](docs/x.md)"),
            ("already &amp; &lt;escaped&gt;", "already &amp; &lt;escaped&gt;"),
            ("<https://evil.example|x> <!channel>|y>", "<https://evil.example|x> &lt;!channel&gt;|y&gt;"),
        ],
    )
    def test_table(self, raw: str, shown: str) -> None:
        """Knowledge text keeps Slack links, channel links and entities; a Markdown link
        becomes a Slack link; every other &, < and > is escaped (no ping, no broken markup)."""
        assert fmt.knowledge_mrkdwn(raw) == shown

    def test_answers_questions_and_support_go_through_it(self) -> None:
        """An answer, its question in mrkdwn and the support line are rendered, the header
        (plain text) is left as written."""
        kb = parse_knowledge(SLACK_KB.replace(
            'support: "Ask in #help or use https://example.com/support"',
            'support: "Ask <@U0LEAD> in <#C123|help>"').replace(
            "Apps are not approved for various reasons.",
            '"Apps are not approved for reasons <like this> & that."'), "slack.yaml")
        entry = kb.entry("not-approved")
        message = fmt.answer_message(entry, fmt.Ref(entry.id, "q", "C1", "1.0", "1.0"))
        assert message["blocks"][1]["text"]["text"] == (
            "Apps are not approved for reasons &lt;like this&gt; &amp; that.")
        assert "&lt;like this&gt;" in message["text"]
        assert fmt.solved_message(entry)["text"].startswith("*Why was my app not approved?*")
        help_text = fmt.help_message(kb)["text"]
        assert "Ask &lt;@U0LEAD&gt; in <#C123|help>" in help_text
        assert "&lt;@U0LEAD&gt;" in fmt.store_failed_message(kb.support)["text"]


def _messages() -> dict[str, dict]:
    entry = KB.entry("review-time")
    ref = fmt.Ref("review-time", NASTY, "C111", "1.0", "1.0")
    decision = Decision(NASTY, "clarify", None, 45.0, (
        Candidate("review-time", entry.question, 45.0),
        Candidate("not-approved", "Why was my app not approved?", 43.0)))
    return {
        "answer": fmt.answer_message(entry, ref),
        "answer_ephemeral": fmt.answer_message(entry, ref, ephemeral=True),
        "answer_with_ticket": fmt.answer_message(KB.entry("cap"), ref, ticket=ticket()),
        "posted": fmt.posted_answer_message(entry, ref, "W111"),
        "clarify": fmt.clarify_message(decision, ref),
        "ticket": fmt.ticket_message(ticket()),
        "ticket_existing": fmt.ticket_message(ticket(), created=False),
        "store_failed": fmt.store_failed_message(KB.support),
        "help": fmt.help_message(KB),
        "solved": fmt.solved_message(entry),
        "not_helpful": fmt.escalated_message(ticket()),
        "triage": fmt.triage_message(ticket(), "https://x.slack.com/archives/C111/p10"),
        "triage_cli": fmt.triage_message(ticket(requester="cli:<!here>", channel=None), None),
    }


MESSAGES = _messages()


class TestMessages:
    @pytest.mark.parametrize("name", sorted(MESSAGES))
    def test_text_fallback_and_blocks(self, name: str) -> None:
        """Every message has a non-empty plain ``text`` fallback and valid-looking blocks."""
        message = MESSAGES[name]
        assert message["text"].strip()
        assert message["blocks"] and all("type" in b for b in message["blocks"])
        json.dumps(message)

    @pytest.mark.parametrize("name", sorted(MESSAGES))
    def test_user_text_never_pings(self, name: str) -> None:
        """User text is escaped in ``text`` and every mrkdwn field: no raw <!…> or <@U123>."""
        for text in mrkdwn_texts(MESSAGES[name]):
            for raw in ("<!channel>", "<!here>", "<@U123>", "<https://evil"):
                assert raw not in text, (name, text)

    def test_answer_has_header_answer_links_and_buttons(self) -> None:
        """An answer: the entry's question as header, its mrkdwn, links, Solved/Not helpful."""
        blocks = MESSAGES["answer"]["blocks"]
        assert blocks[0]["type"] == "header"
        assert "*several days*" in blocks[1]["text"]["text"]  # knowledge mrkdwn kept as is
        assert "<https://example.com/review|Review guidelines>" in json.dumps(blocks)
        actions = [e["action_id"] for e in blocks[-1]["elements"]]
        assert actions == [fmt.ACTION_SOLVED, fmt.ACTION_NOT_HELPFUL]

    def test_ephemeral_answer_can_be_posted(self) -> None:
        """/faq's answer adds a *Post to channel* button."""
        actions = [e["action_id"] for e in MESSAGES["answer_ephemeral"]["blocks"][-1]["elements"]]
        assert fmt.ACTION_POST in actions

    def test_cap_answer_carries_ticket_id(self) -> None:
        """An entry that opens a ticket shows both the answer and the ticket id."""
        message = MESSAGES["answer_with_ticket"]
        assert "FAQ-7" in message["text"] and "Support form" in message["text"]

    def test_ticket_message_wording(self) -> None:
        """The requester is told the ticket id and that support replies in the thread."""
        assert MESSAGES["ticket"]["text"] == (
            "I couldn't find this in the FAQ — I've opened ticket *FAQ-7*; support will reply here."
        )

    def test_triage_contents(self) -> None:
        """Triage: id, requester mention, escaped question, reason, candidates, permalink."""
        message = MESSAGES["triage"]
        everything = json.dumps(message)
        assert "FAQ-7" in message["text"] and "<@W222>" in message["text"]
        assert "no_match" in message["text"]
        assert "&lt;!channel&gt;" in message["text"]
        assert "https://x.slack.com/archives/C111/p10" in everything
        assert "Cap &lt;x&gt;? (41)" in everything

    def test_clarify_buttons_carry_candidates(self) -> None:
        """"Did you mean…" has one button per candidate, with that entry in its value."""
        elements = MESSAGES["clarify"]["blocks"][-1]["elements"]
        assert [fmt.Ref.decode(e["value"]).entry for e in elements] == [
            "review-time", "not-approved", None]
        assert [e["action_id"] for e in elements] == ["faq_pick_0", "faq_pick_1", "faq_none"]
        none = elements[-1]
        assert none["text"]["text"] == "None of these"
        assert fmt.Ref.decode(none["value"]).question == fmt.Ref.decode(elements[0]["value"]).question
        assert "which of these" in MESSAGES["clarify"]["blocks"][0]["text"]["text"]

    def test_a_single_candidate_is_asked_about_alone(self) -> None:
        """One entry clearly ahead (the calibrated blend's "did you mean") is one button."""
        decision = Decision("review?", "clarify", None, 60.0,
                            (Candidate("review-time", "How long does review take?", 60.0),))
        message = fmt.clarify_message(decision, fmt.Ref("", "review?", "C1", "1.0", "1.0"))
        assert message["blocks"][0]["text"]["text"] == "I'm not sure I found it. Did you mean…"
        assert [e["action_id"] for e in message["blocks"][-1]["elements"]] == [
            "faq_pick_0", "faq_none"]
        assert message["text"] == "Did you mean: How long does review take?"


class TestRef:
    def test_round_trip(self) -> None:
        """A button value decodes to the same reference."""
        ref = fmt.Ref("cap", "how? <!channel>", "C1", "1.0", "2.0")
        assert fmt.Ref.decode(ref.encode()) == ref

    @pytest.mark.parametrize("question", ["x" * 5000, '"' * 3000, "é" * 4000])
    def test_long_question_fits_a_button(self, question: str) -> None:
        """A long question is shortened so the value stays within Slack's 2,000 characters."""
        value = fmt.Ref("cap", question, "C1", "1.0", "2.0").encode()
        assert len(value) <= fmt.MAX_VALUE
        assert fmt.Ref.decode(value).entry == "cap"

    @pytest.mark.parametrize("value", [None, "", "not json", "[1]", '{"entry": 5}'])
    def test_garbage_decodes_safely(self, value: str | None) -> None:
        """A tampered or foreign value never raises."""
        fmt.Ref.decode(value)
