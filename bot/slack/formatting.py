"""Pure builders for every message faqbot posts in Slack (Block Kit plus a plain ``text``).

User text is always passed through :func:`escape` before it lands in ``text`` or a ``mrkdwn``
field, so ``<!channel>`` or ``<@U123>`` typed by a user can never ping anyone. Knowledge answers
are written by the FAQ's maintainers in mrkdwn and are posted as they are.

Buttons carry a :class:`Ref` (entry id, the question, where it was asked) in their ``value``::

    message = answer_message(entry, Ref(entry="review-time", question="how long?", channel="C1"))
    client.chat_postMessage(channel="C1", **message)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from bot.knowledge import Entry
from bot.matching import Decision, Matcher
from bot.tickets import Ticket

__all__ = [
    "ACTION_NONE",
    "ACTION_NOT_HELPFUL",
    "ACTION_PICK",
    "ACTION_POST",
    "ACTION_SOLVED",
    "Ref",
    "answer_message",
    "clarify_message",
    "escape",
    "help_message",
    "knowledge_mrkdwn",
    "escalated_message",
    "posted_answer_message",
    "solved_message",
    "store_failed_message",
    "ticket_message",
    "triage_message",
]

Message = dict[str, Any]  # {"text": ..., "blocks": [...]} — splat into chat.postMessage

ACTION_SOLVED = "faq_solved"
ACTION_NOT_HELPFUL = "faq_not_helpful"
ACTION_PICK = "faq_pick"  # a "Did you mean…" candidate; action ids faq_pick_0, faq_pick_1, …
ACTION_NONE = "faq_none"  # "Did you mean…": none of these (a ticket)
ACTION_POST = "faq_post"  # /faq: post the ephemeral answer to the channel

MAX_VALUE = 2000  # Slack's limit on a button value
MAX_SECTION = 3000  # … on a section's text
MAX_HEADER = 150  # … on a header's plain_text
MAX_BUTTON_TEXT = 75
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack's own markup a knowledge file may use: links (<https://…|label>, <mailto:…>) and channel
# links (<#C123|help>); an entity already escaped (&amp; &lt; &gt;). A Markdown link is what
# `faqbot kb import` writes for one.
_SLACK_MARKUP = re.compile(
    r"<(?:https?://|mailto:|#[CG][A-Z0-9]+)[^<>\s]*(?:\|[^<>]*)?>|&(?:amp|lt|gt);"
    r"|\[([^\]\n]+)\]\(((?:https?://|mailto:)[^()\s<>]+)\)"
)


def knowledge_mrkdwn(text: str) -> str:
    """Text from the knowledge (an answer, a question, the support line) as Slack mrkdwn: its
    Slack links and channel links kept, Markdown links made Slack links, every other ``&``,
    ``<`` and ``>`` escaped, so ``brew upgrade <formula>`` shows as written and nothing in an
    FAQ pings anyone (``<!channel>``, ``<@U…>``)."""
    out, at = [], 0
    for m in _SLACK_MARKUP.finditer(text):
        out.append(escape(text[at:m.start()]))
        if m.group(1) is not None:  # [label](url)
            out.append(f"<{m.group(2)}|{escape(m.group(1))}>")
        else:
            out.append(m.group(0))
        at = m.end()
    out.append(escape(text[at:]))
    return "".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str, limit: int = 500) -> str:
    """User text as a mrkdwn quote, escaped (every line prefixed, so it cannot break out)."""
    return "\n".join("&gt; " + line for line in escape(_clip(text, limit)).splitlines() or [""])


@dataclass(frozen=True)
class Ref:
    """What a button needs to act later: the entry, the question and where it was asked."""

    entry: str | None = None
    question: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    qid: str | None = None  # the logged question (store.record_question), for its feedback

    def encode(self) -> str:
        """Compact JSON that fits a button value (the question is shortened when needed)."""
        data = {k: v for k, v in asdict(self).items() if v not in (None, "")}
        question = self.question
        while True:
            value = json.dumps({**data, "question": question}, ensure_ascii=False,
                               separators=(",", ":"))
            if len(value) <= MAX_VALUE or not question:
                return value
            question = question[: max(0, len(question) - (len(value) - MAX_VALUE) - 8)]

    @classmethod
    def decode(cls, value: str | None) -> Ref:
        try:
            data = json.loads(value or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        fields = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in data.items() if k in fields and v is not None})


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _sections(text: str) -> list[dict[str, Any]]:
    """Long mrkdwn split over several sections at line breaks (Slack caps one at 3,000)."""
    blocks, chunk = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > MAX_SECTION:
            if chunk:
                blocks.append(_section(chunk))
                chunk = ""
            blocks.append(_section(line[:MAX_SECTION]))
            line = line[MAX_SECTION:]
        if len(chunk) + len(line) > MAX_SECTION:
            blocks.append(_section(chunk))
            chunk = ""
        chunk += line
    if chunk.strip():
        blocks.append(_section(chunk))
    return blocks


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _links_text(entry: Entry) -> str:
    return " · ".join(f"<{link.url}|{escape(link.title)}>" for link in entry.links)


def _entry_blocks(entry: Entry) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(entry.question, MAX_HEADER)}}
    ]
    blocks += _sections(knowledge_mrkdwn(entry.answer))
    if entry.links:
        blocks.append(_context(":link: " + _links_text(entry)))
    return blocks


def _entry_text(entry: Entry) -> str:
    text = f"*{knowledge_mrkdwn(entry.question)}*\n{knowledge_mrkdwn(entry.answer)}"
    if entry.links:
        text += "\n" + "\n".join(f"{link.title}: {link.url}" for link in entry.links)
    return text


# Where support's replies to a ticket reach its requester (bot.slack.relay.requester_destination)
_SUPPORT_REPLIES = {
    "here": "support will reply here.",  # in the thread this message is in
    "thread": "support will reply in a thread on your message.",  # a top-level DM
    "dm": "support will reply in a direct message.",  # /faq: only the asker saw it
}


def answer_message(entry: Entry, ref: Ref, *, ticket: Ticket | None = None,
                   ephemeral: bool = False, replies: str = "here") -> Message:
    """An FAQ answer with *Solved* / *Not helpful* (and, for ``/faq``, *Post to channel*).

    With ``ticket`` (an entry that also opens one, e.g. a cap increase) the ticket id follows,
    and where support will reply (``replies``: a key of ``_SUPPORT_REPLIES``).
    """
    blocks = _entry_blocks(entry)
    text = _entry_text(entry)
    if ticket is not None:
        note = f"I've also opened ticket *{ticket.id}*; {_SUPPORT_REPLIES[replies]}"
        blocks.append(_section(note))
        text += "\n" + note
    if ephemeral and ref.question:
        blocks.insert(0, _context("You asked:\n" + _quote(ref.question)))
    value = ref.encode()
    buttons = [
        _button("Solved", ACTION_SOLVED, value, "primary"),
        _button("Not helpful", ACTION_NOT_HELPFUL, value),
    ]
    if ephemeral:
        buttons.append(_button("Post to channel", ACTION_POST, value))
    if ticket is None:
        blocks.append({"type": "actions", "block_id": "faq_feedback", "elements": buttons})
    elif ephemeral:
        blocks.append({"type": "actions", "block_id": "faq_feedback", "elements": buttons[2:]})
    return {"text": text, "blocks": blocks}


def posted_answer_message(entry: Entry, ref: Ref, user: str) -> Message:
    """The ``/faq`` answer as posted to the channel by *Post to channel*: who asked, what."""
    asked = f"<@{user}> asked:\n{_quote(ref.question)}" if ref.question else f"<@{user}> asked:"
    message = answer_message(entry, ref)
    message["blocks"].insert(0, _section(asked))
    message["text"] = f"<@{user}> asked: {escape(_clip(ref.question, 500))}\n" + message["text"]
    return message


def clarify_message(decision: Decision, ref: Ref) -> Message:
    """"Did you mean…" with one button per candidate, best first."""
    lead = ("I'm not sure I found it. Did you mean…" if len(decision.candidates) == 1
            else "I'm not sure which of these you mean. Did you mean…")
    blocks: list[dict[str, Any]] = [_section(lead)]
    buttons = []
    for i, candidate in enumerate(decision.candidates):
        # the logged question's id rides along: the pick and feedback on its answer are recorded
        value = Ref(candidate.entry_id, ref.question, ref.channel, ref.thread_ts,
                    ref.message_ts, qid=ref.qid).encode()
        buttons.append(_button(candidate.question, f"{ACTION_PICK}_{i}", value))
    if buttons:  # none fits: a person answers
        buttons.append(_button("None of these", ACTION_NONE, Ref(
            None, ref.question, ref.channel, ref.thread_ts, ref.message_ts, qid=ref.qid).encode()))
        blocks.append({"type": "actions", "block_id": "faq_clarify", "elements": buttons})
    text = "Did you mean: " + "; ".join(c.question.rstrip("?") for c in decision.candidates) + "?"
    return {"text": text, "blocks": blocks}


def ticket_message(ticket: Ticket, *, created: bool = True, replies: str = "here") -> Message:
    """The requester's reply when a question became a ticket (``replies``: where support's
    replies will reach them, a key of ``_SUPPORT_REPLIES``)."""
    where = _SUPPORT_REPLIES[replies]
    if created:
        text = f"I couldn't find this in the FAQ — I've opened ticket *{ticket.id}*; {where}"
    else:
        text = f"I've added this to ticket *{ticket.id}*; {where}"
    return {"text": text, "blocks": [_section(text)]}


def store_failed_message(support: str = "") -> Message:
    """The ticket store failed: say so plainly and name the way out."""
    way_out = (f"reach support directly: {knowledge_mrkdwn(support)}" if support
               else "use the support form")
    text = ("I couldn't find this in the FAQ, and I couldn't record a support ticket just now. "
            f"Please try again in a few minutes, or {way_out}.")
    return {"text": text, "blocks": [_section(text)]}


def help_message(kb: Matcher) -> Message:
    """``/faq`` or ``/faq help``: what the bot knows about and how to reach support."""
    lines = [f"*{escape(kb.title)}*: ask me a question with `/faq your question`, mention me "
             "in a channel, or send me a direct message."]
    if kb.topics:
        lines.append("*Topics:* " + ", ".join(escape(t) for t in kb.topics))
    else:
        lines.append(f"I know {len(kb)} answers.")
    lines.append("*Support:* " + (knowledge_mrkdwn(kb.support) if kb.support else
                                  "ask a question I can't answer and I'll open a ticket for you."))
    text = "\n".join(lines)
    return {"text": text, "blocks": _sections(text)}


def solved_message(entry: Entry | None) -> Message:
    title = f"*{knowledge_mrkdwn(entry.question)}*\n" if entry else ""
    text = f"{title}:white_check_mark: Thanks — glad that helped!"
    return {"text": text, "blocks": [_section(text)]}


_ESCALATED = {  # the reply's first words when a button opens a ticket, by its reason
    "not_helpful": "Sorry that didn't help.",
    "none_of_these": "Thanks for saying so.",
}


def escalated_message(ticket: Ticket | None, *, created: bool = True, support: str = "",
                      reason: str = "not_helpful") -> Message:
    """The reply when a button handed the question to a person (``reason``: *Not helpful*
    under an answer, *None of these* under "Did you mean…") and opened ``ticket``."""
    if ticket is None:
        return store_failed_message(support)
    lead = _ESCALATED.get(reason, _ESCALATED["not_helpful"])
    if created:
        text = f"{lead} I've opened ticket *{ticket.id}* with your question; support will follow up."
    else:
        text = f"{lead} Your question is on ticket *{ticket.id}*."
    return {"text": text, "blocks": [_section(text)]}


REASON_LABELS = {
    "no_match": "no FAQ entry matched",
    "cap_increase": "cap increase request",
    "requested": "asked for a person",
    "not_helpful": "the FAQ answer did not help",
    "none_of_these": "none of the FAQ entries offered fit",
}


def _person(user: str) -> str:
    """A Slack user id as a mention; anything else (``cli:alice``) as escaped text."""
    return f"<@{user}>" if _USER_ID_RE.match(user) else escape(user)


def triage_message(ticket: Ticket, permalink: str | None) -> Message:
    """The ticket as posted to the support channel: id, requester, question, reason, link."""
    reason = REASON_LABELS.get(ticket.reason, ticket.reason)
    where = f"<{permalink}|original message>" if permalink else (
        f"<#{ticket.channel}>" if ticket.channel and ticket.channel[:1] in "CG" else "a DM"
    )
    head = (f":ticket: *{ticket.id}* from {_person(ticket.requester)} · reason: `{ticket.reason}` "
            f"({reason}) · {where}")
    blocks = [_section(head), _section(_quote(ticket.question, 2500))]
    candidates = [
        f"{escape(str(c.get('question', c.get('entry', '?'))))} ({float(c.get('score', 0)):.0f})"
        for c in ticket.candidates[:3]
    ]
    if candidates:
        blocks.append(_context("Closest FAQ entries: " + " · ".join(candidates)))
    text = (f"{ticket.id} from {_person(ticket.requester)} ({ticket.reason}): "
            f"{escape(_clip(ticket.question, 500))}")
    if permalink:
        text += f" — {permalink}"
    return {"text": text, "blocks": blocks}
