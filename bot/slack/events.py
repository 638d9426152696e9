"""Pure predicates and extractors over Slack event payload dicts (no I/O, no Bolt).

Bolt's ``app.event("message")`` matches every subtype (edits, deletions, joins, other apps'
bots), so whether faqbot answers is decided here, in one place, and tested with plain dicts::

    if should_answer(event, bot_user_id):
        question = question_text(event, bot_user_id)
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Literal

from bot.smalltalk import small_talk  # noqa: E402,F401 - pure; re-exported for the listeners

__all__ = [
    "ANSWERABLE_SUBTYPES",
    "dedupe_keys",
    "is_direct_message",
    "is_edit",
    "is_from_bot",
    "mentions_user",
    "question_text",
    "reply_thread_ts",
    "route",
    "should_answer",
]

Event = Mapping[str, Any]
Route = Literal["mention", "dm", "channel"]

# A plain user message has no subtype. file_share is a message with files attached, and
# thread_broadcast a thread reply also sent to the channel: both are written by a person.
# Everything else (message_changed, message_deleted, channel_join, bot_message, me_message,
# channel_topic, …) is either not a new question or not from a person.
ANSWERABLE_SUBTYPES: frozenset[str | None] = frozenset({None, "file_share", "thread_broadcast"})

_MENTION_RE = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL_RE = re.compile(r"<!(\w+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


def is_from_bot(event: Event, bot_user_id: str | None = None) -> bool:
    """True for any bot's message: ``bot_id``/``bot_profile``, subtype bot_message, or our own."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message":
        return True
    return bool(bot_user_id) and event.get("user") == bot_user_id


def is_edit(event: Event) -> bool:
    """True for an edit: subtype ``message_changed`` or an event carrying ``edited``."""
    return event.get("subtype") == "message_changed" or "edited" in event


def is_direct_message(event: Event) -> bool:
    """True for a message in a 1:1 DM with the bot."""
    return event.get("channel_type") == "im"


def mentions_user(event: Event, user_id: str | None) -> bool:
    """True when the message text mentions ``user_id`` (``<@U…>`` or ``<@U…|name>``)."""
    if not user_id:
        return False
    return any(m == user_id for m in _MENTION_RE.findall(event.get("text") or ""))


def route(event: Event) -> Route | None:
    """Which front door an event came through: a mention, a DM, a channel message, or none."""
    kind = event.get("type")
    if kind == "app_mention":
        return "mention"
    if kind == "message":
        if is_direct_message(event):
            return "dm"
        if event.get("channel_type") == "channel":
            return "channel"
    return None


def should_answer(
    event: Event, bot_user_id: str | None, faq_channels: frozenset[str] | None = None
) -> bool:
    """Whether faqbot may answer this event at all (before looking at the question).

    Never: another bot or ourselves, edits, deletions, joins and other subtypes, events
    without a user or channel. Channel messages only in ``faq_channels``, only top-level and
    only when they do not mention the bot (the ``app_mention`` event answers those).
    """
    kind = route(event)
    if kind is None or not event.get("user") or not event.get("channel") or not event.get("ts"):
        return False
    if event.get("subtype") not in ANSWERABLE_SUBTYPES or is_from_bot(event, bot_user_id):
        return False
    if is_edit(event) or event.get("hidden"):
        return False
    if kind == "channel":
        return (
            event["channel"] in (faq_channels or ())
            and not event.get("thread_ts")
            and not mentions_user(event, bot_user_id)
        )
    return True


def question_text(event: Event, bot_user_id: str | None = None) -> str:
    """The question as the user wrote it: Slack markup undone, the bot's own mention removed.

    ``<@UBOT> how long?`` → ``how long?``; ``<https://x|docs>`` → ``docs``; ``&lt;`` → ``<``.
    Other people's mentions stay as ``<@U…>`` (escaped again whenever the bot echoes them).
    """
    text = event.get("text") or ""

    def mention(m: re.Match[str]) -> str:
        return "" if m.group(1) == bot_user_id else m.group(0)

    text = _MENTION_RE.sub(mention, text)
    text = _LINK_RE.sub(lambda m: m.group(2) or m.group(1), text)
    text = _CHANNEL_RE.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SPECIAL_RE.sub(lambda m: "@" + (m.group(2) or m.group(1)).lstrip("@"), text)
    return " ".join(html.unescape(text).split())


def reply_thread_ts(event: Event) -> str | None:
    """Where to reply: a channel message gets a thread on it; a DM is answered in place
    (in its thread when the DM message was in one)."""
    if is_direct_message(event):
        return event.get("thread_ts")
    return event.get("thread_ts") or event.get("ts")


def dedupe_keys(body: Mapping[str, Any]) -> list[str]:
    """Keys under which a delivery is claimed once: the event id, and the message itself
    (Slack sometimes redelivers one message under a new ``event_id``)."""
    event = body.get("event") or {}
    keys = []
    if body.get("event_id"):
        keys.append(f"event:{body['event_id']}")
    if event.get("channel") and event.get("ts"):
        keys.append(f"msg:{event['channel']}:{event['ts']}")
    return keys

