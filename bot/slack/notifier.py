"""The Slack side of the ticket workflow: :class:`SlackNotifier` implements
:class:`bot.tickets.workflow.Notifier` with the triage message (updated in place) and the
requester's thread.

Used by the staff buttons (:mod:`bot.slack.staff`) and by ``faqbot tickets resolve``; the
functions below raise what the Web API call raises, and each caller decides how to report it
(the workflow collects the failures in its outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot.matching import Matcher
from bot.slack import staff_blocks as sb
from bot.slack.relay import requester_destination
from bot.tickets import Ticket
from bot.tickets.workflow import Change

__all__ = [
    "SlackNotifier",
    "fetch_permalink",
    "has_requester_thread",
    "notify_requester",
    "requester_message",
    "update_triage",
]


def fetch_permalink(client: WebClient, ticket: Ticket) -> str | None:
    """The permalink of the requester's message (``chat.getPermalink``); None without one."""
    if not ticket.channel or not ticket.message_ts:
        return None
    response = client.chat_getPermalink(channel=ticket.channel, message_ts=ticket.message_ts)
    return response.get("permalink")


def update_triage(client: WebClient, ticket: Ticket, permalink: str | None,
                  kb: Matcher | None, *, channel: str | None = None,
                  ts: str | None = None) -> bool:
    """Update the triage message in place (``chat.update``) to show ``ticket`` as it is now
    (:func:`bot.slack.staff_blocks.triage_post`). ``channel``/``ts`` default to the ticket's
    ``triage_channel``/``triage_ts``; False, and no call, when there is no triage message."""
    channel = channel or ticket.triage_channel
    ts = ts or ticket.triage_ts
    if not channel or not ts:
        return False
    message = sb.triage_post(ticket, permalink, kb)
    client.chat_update(channel=channel, ts=ts, text=message["text"], blocks=message["blocks"])
    return True


def has_requester_thread(ticket: Ticket) -> bool:
    """The ticket came from Slack, so there is a requester to tell (not faqbot chat)."""
    return requester_destination(ticket) is not None


def notify_requester(client: WebClient, ticket: Ticket, message: dict[str, Any]) -> bool:
    """Post ``message`` where the requester follows the ticket (their thread; for ``/faq``,
    their DM with the bot: see :func:`~bot.slack.relay.requester_destination`); False, and
    no call, when there is nobody in Slack to tell."""
    where = requester_destination(ticket)
    if where is None:
        return False
    client.chat_postMessage(channel=where[0], thread_ts=where[1],
                            unfurl_links=False, unfurl_media=False, **message)
    return True


def requester_message(change: Change, kb: Matcher | None) -> dict[str, Any] | None:
    """What the requester is told about ``change``; None when there is nothing to say (an
    entry that no longer exists)."""
    ticket, actor = change.ticket, change.actor
    if change.kind == "taken":
        return sb.taken_notice(ticket, actor)
    if change.kind == "resolved":
        return sb.resolved_notice(ticket, actor)
    if change.kind == "details":
        return sb.details_confirmation(ticket, actor)
    entry = kb.get(change.entry or "") if kb is not None else None
    return sb.answered_message(ticket, entry, actor) if entry is not None else None


class SlackNotifier:
    """Shows a ticket's changes in Slack.

    Args:
        client: the Web API client.
        kb: the knowledge (the triage message's *Answer with FAQ entry* menu; None: no menu).
        permalink: the requester's message's permalink for a ticket (default
            :func:`fetch_permalink`, whose failure leaves the triage message without a link).
        triage: the triage message to update when the ticket has none recorded yet (a button
            pressed on it before it was recorded): ``(channel, ts)``.
    """

    def __init__(self, client: WebClient, kb: Matcher | None, *,
                 permalink: Callable[[Ticket], str | None] | None = None,
                 triage: tuple[str | None, str | None] = (None, None)) -> None:
        self.client = client
        self.kb = kb
        self._permalink = permalink or self._fetch_permalink
        self._triage = triage

    def show(self, ticket: Ticket) -> bool:
        if ticket.triage_channel and ticket.triage_ts:
            channel, ts = ticket.triage_channel, ticket.triage_ts
        else:
            channel, ts = self._triage
        if not channel or not ts:
            return False  # not posted yet: Triage posts it as it is then
        return update_triage(self.client, ticket, self._permalink(ticket), self.kb,
                             channel=channel, ts=ts)

    def tell_requester(self, change: Change) -> bool:
        message = requester_message(change, self.kb)
        if message is None:
            return False
        return notify_requester(self.client, change.ticket, message)

    def _fetch_permalink(self, ticket: Ticket) -> str | None:
        try:
            return fetch_permalink(self.client, ticket)
        except Exception:  # the update still goes ahead, without the link
            return None
