"""Relaying thread replies between a requester's thread and the ticket's triage thread.

Staff reply in the triage message's thread; faqbot posts it in the requester's thread as
"@staff (support): …". The requester (or anyone) replying in their own thread is posted back in
the triage thread. Both directions are ``message`` events with ``thread_ts`` != ``ts``
(``message.channels``/``message.groups``/``message.im``).

Which events are relay candidates is decided by the pure :func:`is_relay_candidate` (never a
bot's message, so never our own relays; never an edit, a deletion or another subtype), and
whether a candidate belongs to a ticket by :meth:`Relay.ticket_for`::

    if is_relay_candidate(event, bot_user_id):
        relay.handle(event, event_id=body.get("event_id"))
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient

from bot.errors import StoreError
from bot.slack import events
from bot.slack import staff_blocks as sb
from bot.tickets import Ticket, TicketStore, workflow

__all__ = ["Relay", "is_relay_candidate", "is_triage_reply", "relay_text",
           "requester_destination"]

log = logging.getLogger(__name__)

Event = Mapping[str, Any]

_LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL_RE = re.compile(r"<!(\w+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


def is_relay_candidate(event: Event, bot_user_id: str | None) -> bool:
    """A person's reply inside a thread: the only kind of message that is ever relayed.

    Not: bots (any app's, our own relays included), edits, deletions, joins and other
    subtypes, hidden messages, top-level messages and thread parents.
    """
    if event.get("type") != "message":
        return False
    if event.get("subtype") not in events.ANSWERABLE_SUBTYPES:
        return False
    if events.is_from_bot(event, bot_user_id) or events.is_edit(event) or event.get("hidden"):
        return False
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    return bool(event.get("user") and event.get("channel") and ts and thread_ts
                and thread_ts != ts)


def is_triage_reply(event: Event, support_channel: str | None) -> bool:
    """A reply in the triage channel (a staff member answering a ticket's triage thread)."""
    return bool(support_channel) and event.get("channel") == support_channel


def requester_destination(ticket: Ticket) -> tuple[str, str | None] | None:
    """Where the requester hears about their ticket: ``(channel, thread_ts)``, or None (a
    ticket from ``faqbot chat`` has nobody in Slack to tell).

    Their thread when the ticket has one (a mention, a DM). A ticket without a thread outside
    a DM came from ``/faq``, whose exchange only the asker saw: the bot's DM with them (a
    user id as the channel), never the channel the command was typed in.
    """
    if ticket.source != "slack" or not ticket.channel:
        return None
    if ticket.thread_ts or ticket.channel.startswith("D"):
        return ticket.channel, ticket.thread_ts
    return ticket.requester, None


def relay_text(event: Event) -> str:
    """The reply as plain text, line breaks kept: Slack markup undone (links become
    ``label (url)``, ``<!here>`` becomes ``@here``); escape it again before posting."""
    text = event.get("text") or ""
    text = _LINK_RE.sub(
        lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) and m.group(2) != m.group(1)
        else m.group(1), text)
    text = _CHANNEL_RE.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SPECIAL_RE.sub(lambda m: "@" + (m.group(2) or m.group(1)).lstrip("@"), text)
    text = html.unescape(text).strip()
    if not text and event.get("files"):
        text = "(shared a file)"
    return text


class Relay:
    """Posts relayed replies and records them on the ticket (``staff_reply``/``requester_reply``).

    Args:
        client: the Web API client.
        store: the ticket store (tickets by thread; delivery dedupe via ``claim_event``).
        support_channel: ``SUPPORT_CHANNEL_ID``.
    """

    def __init__(self, client: WebClient, store: TicketStore, support_channel: str | None
                 ) -> None:
        self.client = client
        self.store = store
        self.support_channel = support_channel

    def ticket_for(self, event: Event) -> Ticket | None:
        """The ticket whose triage thread or requester thread this reply is in, if any."""
        channel, thread_ts = str(event.get("channel")), str(event.get("thread_ts"))
        if is_triage_reply(event, self.support_channel):
            return self.store.find_by_triage(channel, thread_ts)
        return self.store.find_by_thread(channel, thread_ts)

    def handle(self, event: Event, *, event_id: str | None = None) -> bool:
        """Relay one candidate reply once; True when something was posted."""
        try:
            ticket = self.ticket_for(event)
        except StoreError:
            log.exception("could not look up the ticket for a thread reply")
            return False
        if ticket is None or event.get("ts") == ticket.message_ts:
            return False  # no ticket, or the ticket's own question (a mention in a thread)
        key = f"relay:{event.get('channel')}:{event.get('ts')}"
        try:
            if not self.store.claim_event(key):
                log.info("skipping a repeated delivery of %s", event_id or key)
                return False
        except StoreError:
            log.exception("could not record relay %s; relaying anyway", key)
        text = relay_text(event)
        user = str(event.get("user"))
        if is_triage_reply(event, self.support_channel):
            return self._to_requester(ticket, user, text)
        return self._to_triage(ticket, user, text)

    def _to_requester(self, ticket: Ticket, staff: str, text: str) -> bool:
        if text.startswith(sb.INTERNAL_PREFIX) or not text:
            return False  # an internal note among staff
        where = requester_destination(ticket)
        if where is None:
            log.info("%s has no Slack thread to relay to", ticket.id)
            return False
        self._record(ticket, "staff_reply", staff, text)
        return self._post(*where, sb.relay_to_requester(staff, text))

    def _to_triage(self, ticket: Ticket, user: str, text: str) -> bool:
        if not ticket.triage_channel or not ticket.triage_ts or not text:
            log.info("%s is not posted to triage yet; reply not relayed", ticket.id)
            self._record(ticket, "requester_reply", user, text)
            return False
        self._record(ticket, "requester_reply", user, text)
        return self._post(ticket.triage_channel, ticket.triage_ts,
                          sb.relay_to_triage(ticket, user, text))

    def _record(self, ticket: Ticket, kind: str, actor: str, text: str) -> None:
        workflow.note(self.store, ticket, kind, actor=actor, text=text)

    def _post(self, channel: str, thread_ts: str | None, message: dict[str, Any]) -> bool:
        try:
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                         unfurl_links=False, unfurl_media=False, **message)
        except Exception:
            log.exception("could not relay a reply to %s", channel)
            return False
        return True
