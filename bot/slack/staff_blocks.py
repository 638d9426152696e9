"""Pure Block Kit builders for the support-staff side: the triage post with its buttons, what
the requester is told, relays, refusals, the App Home, and the FAQ draft.

Every piece of user text (questions, relayed replies, cap-increase details) goes through
:func:`bot.slack.formatting.escape` before it lands in ``text`` or a ``mrkdwn`` field. Buttons
carry only the ticket number: who may press them is decided from the request's user, never
from anything in the payload's ``value``::

    message = triage_post(ticket, permalink, kb)
    client.chat_update(channel=ticket.triage_channel, ts=ticket.triage_ts, **message)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.knowledge import Entry
from bot.matching import Matcher
from bot.slack import formatting as fmt
from bot.tickets import CLI_ACTOR, Ticket

__all__ = [
    "ACTION_ADD_TO_FAQ",
    "ACTION_ANSWER",
    "ACTION_CLOSE",
    "ACTION_DETAILS",
    "ACTION_REOPEN",
    "ACTION_RESOLVE",
    "ACTION_TAKE",
    "CLI_ACTOR",
    "DETAIL_LABELS",
    "INTERNAL_PREFIX",
    "REQUESTER_ACTIONS",
    "STAFF_ACTIONS",
    "answered_message",
    "closed_by_requester_message",
    "details_confirmation",
    "draft_message",
    "home_view",
    "parse_answer_value",
    "parse_ticket_value",
    "refusal",
    "reload_message",
    "relay_to_requester",
    "relay_to_triage",
    "resolved_notice",
    "status_line",
    "taken_notice",
    "triage_post",
    "with_requester_actions",
]

Message = dict[str, Any]
Block = dict[str, Any]

ACTION_TAKE = "faq_ticket_take"
ACTION_RESOLVE = "faq_ticket_resolve"
ACTION_REOPEN = "faq_ticket_reopen"
ACTION_ANSWER = "faq_ticket_answer"  # static_select; option value "NUMBER:ENTRY_ID"
ACTION_ADD_TO_FAQ = "faq_ticket_add_to_faq"
ACTION_CLOSE = "faq_ticket_close"  # the requester's own *Close ticket*
ACTION_DETAILS = "faq_ticket_details"  # the requester's *Add details* (cap increase modal)

#: Buttons only support staff may press.
STAFF_ACTIONS: frozenset[str] = frozenset(
    {ACTION_TAKE, ACTION_RESOLVE, ACTION_REOPEN, ACTION_ANSWER, ACTION_ADD_TO_FAQ}
)
#: Buttons the ticket's requester (or staff) may press.
REQUESTER_ACTIONS: frozenset[str] = frozenset({ACTION_CLOSE, ACTION_DETAILS})

#: A triage-thread reply starting with this stays in the triage thread (not relayed).
INTERNAL_PREFIX = "//"

ACTION_NAMES = {
    ACTION_TAKE: "Take",
    ACTION_RESOLVE: "Resolve",
    ACTION_REOPEN: "Reopen",
    ACTION_ANSWER: "Answer with FAQ entry",
    ACTION_ADD_TO_FAQ: "Add to FAQ",
    ACTION_CLOSE: "Close ticket",
    ACTION_DETAILS: "Add details",
    "reload": "/faq reload",
}

#: The cap-increase form's fields, in display order, with their labels.
DETAIL_LABELS: dict[str, str] = {
    "app": "App name or client key",
    "current_users": "Current active users",
    "cap_wanted": "Cap wanted",
    "in_production": "Live in production",
}

MAX_OPTIONS = 100  # Slack's limit on a static_select's options (over all groups)
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_HOME_TICKETS = 20
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


# ---------------------------------------------------------------------------- small pieces


def _person(user: str | None) -> str:
    """A Slack user id as a mention; anything else (``cli:alice``) as escaped text."""
    if not user:
        return "someone"
    return f"<@{user}>" if _USER_ID_RE.match(user) else fmt.escape(user)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _plain(text: str, limit: int = MAX_OPTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit), "emoji": True}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button", "text": _plain(text), "action_id": action_id, "value": value,
    }
    if style:
        button["style"] = style
    return button


def _quote(text: str, limit: int = 2500) -> str:
    """User text as an escaped mrkdwn quote (every line prefixed, so it cannot break out)."""
    lines = fmt.escape(_clip(text, limit)).splitlines() or [""]
    return "\n".join("&gt; " + line for line in lines)


def parse_ticket_value(value: str | None) -> int | None:
    """A button's ``value`` as a ticket number (``"12"`` → 12); None when it is not one."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def parse_answer_value(value: str | None) -> tuple[int | None, str]:
    """An *Answer with FAQ entry* option's value, ``"12:review-time"`` → ``(12, "review-time")``."""
    number, _, entry = (value or "").partition(":")
    return parse_ticket_value(number), entry


# ---------------------------------------------------------------------------- triage post

_STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "resolved": "Resolved"}
_STATUS_EMOJI = {"open": ":new:", "in_progress": ":eyes:", "resolved": ":white_check_mark:"}


def _last_actor(ticket: Ticket, kind: str) -> str | None:
    for event in reversed(ticket.history):
        if event.kind == kind:
            return event.actor
    return None


def status_line(ticket: Ticket) -> str:
    """``Open`` / ``In progress · @alice`` / ``Resolved by @bob`` (mrkdwn, mentions only ids)."""
    label = _STATUS_LABELS.get(ticket.status, fmt.escape(ticket.status))
    line = f"*{label}*"
    if ticket.status == "resolved":
        resolver = _last_actor(ticket, "resolved")
        if resolver == CLI_ACTOR:
            line += " by support (command line)"
        elif resolver:
            line += f" by {_person(resolver)}"
        answered = _last_event_text(ticket, "answered")
        if answered:
            line += f" with FAQ entry `{fmt.escape(answered)}`"
    elif ticket.assignee:
        line += f" · assignee {_person(ticket.assignee)}"
    return line


def _last_event_text(ticket: Ticket, kind: str) -> str | None:
    for event in reversed(ticket.history):
        if event.kind == kind:
            return event.text
    return None


def _details_lines(details: dict[str, str]) -> list[str]:
    lines = []
    for key, label in DETAIL_LABELS.items():
        if key in details:
            value = details[key]
            if key in ("current_users", "cap_wanted") and value.isdigit():
                value = f"{int(value):,}"
            lines.append(f"• {label}: {fmt.escape(value)}")
    return lines


def details_block(ticket: Ticket) -> Block | None:
    """The cap-increase form's answers under their own label (None before they are given)."""
    if not ticket.details:
        return None
    lines = ["*Cap increase details*", *_details_lines(ticket.details)]
    if ticket.details.get("in_production") == "no":
        lines.append(":warning: The app is not live in production; the FAQ requires that for "
                     "a cap increase.")
    return _section("\n".join(lines))


def _answer_options(ticket: Ticket, kb: Matcher | None) -> list[dict[str, Any]]:
    """Option groups for *Answer with FAQ entry*: the closest candidates, then every entry."""

    def option(entry_id: str, question: str, score: float | None = None) -> dict[str, Any] | None:
        value = f"{ticket.number}:{entry_id}"
        if len(value) > MAX_OPTION_VALUE:
            return None
        text = question if score is None else f"{question} ({score:.0f})"
        return {"text": _plain(text), "value": value}

    seen: set[str] = set()
    closest = []
    for candidate in ticket.candidates:
        entry_id = str(candidate.get("entry") or "")
        if not entry_id or entry_id in seen or (kb is not None and kb.get(entry_id) is None):
            continue
        made = option(entry_id, str(candidate.get("question") or entry_id),
                      float(candidate.get("score") or 0))
        if made is not None:
            seen.add(entry_id)
            closest.append(made)
    rest = []
    for entry in kb or ():
        if entry.id not in seen:
            made = option(entry.id, entry.question)
            if made is not None:
                rest.append(made)
    closest = closest[:MAX_OPTIONS]
    rest = rest[: MAX_OPTIONS - len(closest)]
    groups = []
    if closest:
        groups.append({"label": _plain("Closest matches"), "options": closest})
    if rest:
        groups.append({"label": _plain("All entries"), "options": rest})
    return groups


def _staff_actions(ticket: Ticket, kb: Matcher | None) -> Block:
    value = str(ticket.number)
    elements: list[dict[str, Any]] = []
    if ticket.status == "resolved":
        elements.append(_button("Reopen", ACTION_REOPEN, value))
        elements.append(_button("Add to FAQ", ACTION_ADD_TO_FAQ, value, "primary"))
    else:
        take = "Take" if ticket.status == "open" else "Take over"
        elements.append(_button(take, ACTION_TAKE, value, "primary"))
        elements.append(_button("Resolve", ACTION_RESOLVE, value))
        groups = _answer_options(ticket, kb)
        if groups:
            elements.append({
                "type": "static_select",
                "action_id": ACTION_ANSWER,
                "placeholder": _plain("Answer with FAQ entry…"),
                "option_groups": groups,
            })
    return {"type": "actions", "block_id": f"faq_ticket_{ticket.number}", "elements": elements}


def triage_builder(kb: Callable[[], Matcher]) -> Callable[[Ticket, str | None], Message]:
    """The triage message builder of the app (:class:`bot.slack.triage.Triage`): the staff
    buttons, with the current knowledge's entries to answer with."""
    return lambda ticket, permalink: triage_post(ticket, permalink, kb())


def triage_post(ticket: Ticket, permalink: str | None, kb: Matcher | None = None
                ) -> Message:
    """The triage message: :func:`bot.slack.formatting.triage_message` (id, requester, escaped
    question, reason, candidates, permalink) plus the cap details, status and staff buttons."""
    message = fmt.triage_message(ticket, permalink)
    blocks: list[Block] = list(message["blocks"])
    details = details_block(ticket)
    if details is not None:
        blocks.append(details)
    emoji = _STATUS_EMOJI.get(ticket.status, "")
    status = f"{emoji} {status_line(ticket)}"
    drafter = _last_actor(ticket, "faq_draft")
    if drafter:
        status += f" · :memo: FAQ draft posted by {_person(drafter)}"
    blocks.append(_context(
        f"{status} · replies in this thread go to the requester "
        f"(start with `{INTERNAL_PREFIX}` to keep one internal)"
    ))
    blocks.append(_staff_actions(ticket, kb))
    text = f"{message['text']} · status: {_STATUS_LABELS.get(ticket.status, ticket.status)}"
    if ticket.assignee:
        text += f" ({_person(ticket.assignee)})"
    if ticket.details:
        text += " · Cap increase details: " + "; ".join(
            line.removeprefix("• ") for line in _details_lines(ticket.details))
    return {"text": text, "blocks": blocks}


# ---------------------------------------------------------------------------- requester side


def requester_actions(ticket: Ticket) -> Block | None:
    """*Close ticket* (and, for a cap increase, *Add details*) under the requester's reply."""
    if ticket.status == "resolved":
        return None
    value = str(ticket.number)
    elements = []
    if ticket.reason == "cap_increase":
        elements.append(_button("Add details", ACTION_DETAILS, value, "primary"))
    elements.append(_button("Close ticket", ACTION_CLOSE, value))
    return {"type": "actions", "block_id": f"faq_requester_{ticket.number}",
            "elements": elements}


def with_requester_actions(message: Message, ticket: Ticket | None) -> Message:
    """``message`` (the "ticket opened" reply) with the requester's buttons appended."""
    block = requester_actions(ticket) if ticket is not None else None
    if block is None:
        return message
    return {**message, "blocks": [*message.get("blocks", []), block]}


def taken_notice(ticket: Ticket, staff: str) -> Message:
    text = f"{_person(staff)} is looking at *{ticket.id}*."
    return {"text": text, "blocks": [_section(text)]}


def resolved_notice(ticket: Ticket, staff: str | None = None) -> Message:
    """Tells the requester their ticket is resolved: by ``staff`` (a Slack user, mentioned), or,
    when None or :data:`CLI_ACTOR` (``faqbot tickets resolve``), "by support", nobody named."""
    if staff and staff != CLI_ACTOR:
        text = (f"{_person(staff)} resolved *{ticket.id}*. If you still need help, reply in "
                "this thread.")
    else:
        text = (f"*{ticket.id}* was resolved by support. If you still need help, reply in "
                "this thread.")
    return {"text": text, "blocks": [_section(text)]}


def closed_by_requester_message(ticket: Ticket, user: str) -> Message:
    text = f":white_check_mark: {_person(user)} closed *{ticket.id}*. Thanks!"
    return {"text": text, "blocks": [_section(text)]}


def answered_message(ticket: Ticket, entry: Entry, staff: str) -> Message:
    """The entry's answer, posted to the requester's thread by *Answer with FAQ entry*."""
    ref = fmt.Ref(entry.id, ticket.question, ticket.channel, ticket.thread_ts, ticket.message_ts)
    message = fmt.answer_message(entry, ref)
    note = f"{_person(staff)} (support) answered *{ticket.id}* with this FAQ entry and resolved it."
    message["blocks"].insert(0, _context(note))
    message["text"] = note + "\n" + message["text"]
    return message


def details_confirmation(ticket: Ticket, user: str) -> Message:
    """Posted in the requester's thread after the cap-increase form was submitted."""
    lines = [f"Thanks {_person(user)}, I've added these details to *{ticket.id}*:",
             *_details_lines(ticket.details)]
    if ticket.details.get("in_production") == "no":
        lines.append("Note: your app must be live in production to request an increase; "
                     "support will follow up.")
    text = "\n".join(lines)
    return {"text": text, "blocks": [_section(text)]}


# ---------------------------------------------------------------------------- relays


def relay_to_requester(staff: str, text: str) -> Message:
    """A staff reply from the triage thread, as posted in the requester's thread."""
    body = fmt.escape(text)
    out = f"{_person(staff)} (support): {body}"
    return {"text": out, "blocks": [_section(_clip(out, fmt.MAX_SECTION))]}


def relay_to_triage(ticket: Ticket, user: str, text: str) -> Message:
    """A reply in the requester's thread, as posted in the triage thread."""
    who = _person(user) + (" (requester)" if user == ticket.requester else "")
    out = f"{who} replied in the thread of *{ticket.id}*:\n{_quote(text)}"
    return {"text": f"{who} replied on {ticket.id}: {fmt.escape(_clip(text, 2500))}",
            "blocks": [_section(_clip(out, fmt.MAX_SECTION))]}


# ---------------------------------------------------------------------------- staff messages


def refusal(action: str) -> Message:
    """The ephemeral reply to someone who may not press a button (names the way out)."""
    name = ACTION_NAMES.get(action, action)
    if action in REQUESTER_ACTIONS:
        text = f"Only the person who opened this ticket or support staff can use *{name}*."
    else:
        text = (f"Only support staff can use *{name}*. Support staff are the members of the "
                "triage channel (or listed in `SUPPORT_USER_IDS`).")
    return {"text": text, "blocks": [_section(text)]}


def notice(text: str) -> Message:
    """A short ephemeral note (no user text in it)."""
    return {"text": text, "blocks": [_section(text)]}


def draft_message(ticket: Ticket, draft: str, staff: str) -> Message:
    """The FAQ draft posted in the triage thread for a maintainer."""
    head = (f":memo: {_person(staff)} drafted an FAQ entry from *{ticket.id}*. A maintainer can "
            f"review it and add it to the knowledge file, then run `/faq reload`.")
    body = "```\n" + fmt.escape(_clip(draft, fmt.MAX_SECTION - 10)) + "\n```"
    return {"text": f"{head}\n{body}", "blocks": [_section(head), _section(body)]}


def reload_message(summary: str, problems: Iterable[str] = ()) -> Message:
    lines = [fmt.escape(summary)]
    problems = list(problems)
    if problems:
        lines.append("```\n" + fmt.escape(_clip("\n".join(problems), 2800)) + "\n```")
    text = "\n".join(lines)
    return {"text": text, "blocks": [_section(text)]}


# ---------------------------------------------------------------------------- App Home


def _ticket_line(ticket: Ticket) -> str:
    question = fmt.escape(_clip(" ".join(ticket.question.split()), 150))
    when = ticket.created_at.strftime("%Y-%m-%d")
    return f"*{ticket.id}* · {status_line(ticket)} · {when}\n{question}"


def home_view(own: Sequence[Ticket], queue: Sequence[Ticket] | None) -> dict[str, Any]:
    """The App Home: the user's own tickets with status; for staff (``queue`` not None), the
    open queue (open and in progress, oldest first) with *Take* buttons."""
    blocks: list[Block] = [
        {"type": "header", "text": _plain("Your support tickets", 150)},
    ]
    if own:
        blocks += [_section(_ticket_line(t)) for t in own[:MAX_HOME_TICKETS]]
    else:
        blocks.append(_section("You have no tickets. Ask me a question; if the FAQ can't "
                               "answer it, I'll open one for you."))
    if queue is not None:
        blocks += [{"type": "divider"},
                   {"type": "header", "text": _plain(f"Support queue ({len(queue)})", 150)}]
        if not queue:
            blocks.append(_section("Nothing waiting. :tada:"))
        for ticket in queue[:MAX_HOME_TICKETS]:
            label = "Take" if ticket.status == "open" else "Take over"
            block = _section(_ticket_line(ticket) + f"\nfrom {_person(ticket.requester)}")
            block["accessory"] = _button(label, ACTION_TAKE, str(ticket.number),
                                         "primary" if ticket.status == "open" else None)
            blocks.append(block)
        if len(queue) > MAX_HOME_TICKETS:
            blocks.append(_context(f"…and {len(queue) - MAX_HOME_TICKETS} more."))
    return {"type": "home", "blocks": blocks}
