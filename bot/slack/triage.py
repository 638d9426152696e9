"""Posting tickets to the support channel, exactly once, even across processes and outages.

A ticket is stored first (``TicketStore.open_ticket``) and posted second. Posting takes a lease
(``claim_posting``), posts the message, then records it (``mark_posted``); a ticket opened
holding this process's lease (:meth:`Triage.lease`, ``NewTicket.lease``) skips the claim. A
post that fails leaves the ticket ``pending`` and a background thread retries every pending
ticket, at start and then every ``interval`` seconds (sooner, with backoff, right after a
failure).

A post whose response was lost (a timeout, a dropped connection, a process killed before
``mark_posted``) may have landed. So the post itself is never retried on a connection error,
and a retry first looks for the ticket's message in the channel's recent history (each
triage post carries the ticket's id in its message metadata and starts its text with it): found,
it is recorded instead of posted again. When the history cannot be read, the retry posts
anyway: a ticket must reach triage::

    triage = Triage(client, store, "C0SUPPORT")
    triage.start()                 # retry loop
    triage.post(ticket)            # right after opening it
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.errors import StoreError
from bot.slack.formatting import triage_message
from bot.tickets import PostingLease, Ticket, TicketStore

__all__ = ["Triage", "build_permalink"]

log = logging.getLogger(__name__)

METADATA_EVENT = "faqbot_ticket"  # the event_type of a triage post's message metadata
_LOOKUP_PAGES = 10  # at most this many pages of 200 messages are searched for a lost post
_LOOKUP_SLACK_SECONDS = 120.0  # history searched from this long before the ticket was opened


class Triage:
    """Posts tickets to ``channel``; safe to call from many threads and processes at once.

    Args:
        client: the Web API client (its base URL and retry handlers apply).
        store: the ticket store that holds the posting leases.
        channel: ``SUPPORT_CHANNEL_ID``; when None, tickets stay pending (and a warning says so).
        interval: seconds between sweeps of pending tickets.
        lease_seconds: how long one attempt may hold a ticket; longer than a post can take.
        workspace_url: ``auth.test``'s ``url`` (``https://<workspace>.slack.com/``): permalinks
            are built from it (Slack's documented format) instead of one
            ``chat.getPermalink`` call per ticket; without it, chat.getPermalink is called.
        message_builder: ``(ticket, permalink) -> message``; the app passes the one with the
            staff buttons (:func:`bot.slack.staff_blocks.triage_builder`).
    """

    def __init__(
        self,
        client: WebClient,
        store: TicketStore,
        channel: str | None,
        *,
        interval: float = 30.0,
        lease_seconds: float = 120.0,
        workspace_url: str | None = None,
        message_builder: Callable[[Ticket, str | None], dict[str, Any]] = triage_message,
    ) -> None:
        self.client = client
        # Posting must not be retried blindly after a dropped connection (the post may have
        # landed): the same client without that retry; the lookup below decides instead.
        self._poster = _without_connection_retries(client)
        self.workspace_url = workspace_url
        self.store = store
        self.channel = channel
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The owner of the leases tickets are opened with (lease()): not this worker's own id,
        # so that this process's retry loop cannot claim a ticket whose opener is still
        # about to post it.
        self.opener = self.worker + ":opener"
        # (ticket, permalink) -> message: the app's has the staff buttons
        # (bot.slack.staff_blocks.triage_builder)
        self.message_builder = message_builder
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._lock = threading.Lock()
        self._due = 0.0
        self._inflight: dict[int, str] = {}  # ticket number -> the lease owner posting it
        self._idle = threading.Condition(self._lock)  # an attempt finished
        self._held: set[int] = set()  # opened holding self.opener's lease; posting failed

    def lease(self) -> PostingLease | None:
        """The posting lease a ticket this process is about to post may be opened holding
        (None without a channel: nothing is posted)."""
        return PostingLease(self.opener, self.lease_seconds) if self.channel else None

    def post(self, ticket: Ticket, *, look_first: bool = False, leased: bool = False) -> bool:
        """Post ``ticket`` unless it is posted or being posted; True when this call posted it
        (or, with ``look_first``, found it already posted and recorded it). ``leased``: the
        ticket was opened holding :meth:`lease`, so it is not claimed again."""
        if self.channel is None or ticket.posted:
            return False
        # The store's lease keeps other processes out; threads of this process share one
        # worker id (so a failed attempt can be retried at once), so they queue up here.
        with self._lock:
            # The retry loop may be trying a ticket just opened holding this process's lease
            # (its own attempt cannot claim it): the opener's post waits that attempt out,
            # else neither would post it before the lease ran out.
            while leased and self._inflight.get(ticket.number) == self.worker:
                self._idle.wait()
            if ticket.number in self._inflight:
                return False
            # an opening lease this process kept after a lost response: retried under it
            owner = self.opener if leased or ticket.number in self._held else self.worker
            self._inflight[ticket.number] = owner
        try:
            return self._post(ticket, look_first=look_first, leased=leased, owner=owner)
        finally:
            with self._lock:
                del self._inflight[ticket.number]
                self._idle.notify_all()

    def _post(self, ticket: Ticket, *, look_first: bool = False, leased: bool = False,
              owner: str | None = None) -> bool:
        owner = owner or self.worker
        # A lease taken at opening is trusted while well within its time; past half of it
        # (a slow reply before this post), it is claimed again, as the opener: that fails if
        # it ran out and another worker posted the ticket meanwhile.
        fresh = leased and datetime.now(UTC) - ticket.created_at < timedelta(
            seconds=self.lease_seconds / 2)
        try:
            if not fresh and not self.store.claim_posting(ticket.number, owner,
                                                          self.lease_seconds):
                return False
        except StoreError:
            log.exception("could not claim %s for triage", ticket.id)
            return False
        found = self._find_posted(ticket) if look_first else None
        if found is not None:
            log.info("%s was already in triage (a lost response); recording it", ticket.id)
            return self._record(ticket, found)
        try:
            message = self.message_builder(ticket, self._permalink(ticket))
            response = self._poster.chat_postMessage(
                channel=self.channel, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"ticket": ticket.id}},
                **message,
            )
        except Exception as exc:  # the Web API is down or refused: retry later
            log.exception("could not post %s to triage; will retry", ticket.id)
            if isinstance(exc, SlackApiError | URLError):
                self._release(ticket, owner)
            elif owner == self.opener:  # the lease runs its course: this process retries
                with self._lock:
                    self._held.add(ticket.number)
            self._failed()
            return False
        log.info("posted %s to triage", ticket.id)
        return self._record(ticket, str(response.get("ts")))

    def _record(self, ticket: Ticket, ts: str) -> bool:
        assert self.channel is not None
        with self._lock:
            self._held.discard(ticket.number)
        try:
            if not self.store.mark_posted(ticket.number, self.channel, ts):
                log.warning("%s was already posted by another worker", ticket.id)
        except StoreError:
            log.exception("posted %s (ts %s) but could not record it", ticket.id, ts)
        self._failures = 0
        return True

    def _find_posted(self, ticket: Ticket) -> str | None:
        """The ts of ``ticket``'s triage post if an earlier attempt landed it; None when it is
        not there or the history cannot be read (then the caller posts)."""
        oldest = max(0.0, ticket.created_at.timestamp() - _LOOKUP_SLACK_SECONDS)
        cursor = None
        try:
            for _ in range(_LOOKUP_PAGES):
                page = self.client.conversations_history(
                    channel=self.channel, oldest=f"{oldest:.6f}", limit=200, cursor=cursor,
                    include_all_metadata=True,
                )
                for message in page.get("messages") or ():
                    if _is_post_of(message, ticket.id):
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    return None
        except Exception:
            log.warning("could not read the triage channel's history to check whether %s was "
                        "posted; posting it", ticket.id, exc_info=True)
        return None

    def _release(self, ticket: Ticket, owner: str) -> None:
        """Give the lease back at once (a zero-second lease) after Slack refused the post or
        could not be reached: it did not land, so any worker, a restarted one included, may
        post it now. After a timeout or a broken response the post may have landed, so the
        lease runs its course instead."""
        with self._lock:
            self._held.discard(ticket.number)
        try:
            self.store.claim_posting(ticket.number, owner, 0)
        except StoreError:
            log.warning("could not release the triage lease of %s", ticket.id)

    def retry_pending(self) -> int:
        """Post every pending ticket (oldest first); how many this call posted."""
        if self.channel is None:
            return 0
        try:
            pending = self.store.pending()
        except StoreError:
            log.exception("could not list pending tickets")
            self._failed()
            return 0
        with self._lock:  # a held ticket no longer pending was posted by another worker
            self._held.intersection_update(ticket.number for ticket in pending)
        posted = 0
        for ticket in pending:
            if self._stop.is_set():
                break
            if self.post(ticket, look_first=True):
                posted += 1
            elif self._failures:
                break  # the Web API is failing: back off instead of hammering it
        return posted

    def start(self) -> None:
        """Start the background retry loop (a daemon thread); it sweeps once right away."""
        if self.channel is None:
            log.warning(
                "SUPPORT_CHANNEL_ID is not set: tickets are stored but not posted for triage"
            )
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="faqbot-triage", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.retry_pending()
            except Exception:  # never let the loop die
                log.exception("triage sweep failed")
            with self._lock:
                self._due = time.monotonic() + self._delay()
            while not self._stop.is_set():
                with self._lock:
                    remaining = self._due - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
                self._wake.clear()

    def _delay(self) -> float:
        """Seconds to the next sweep: ``interval``, or a short backoff after failures."""
        if not self._failures:
            return self.interval
        return min(self.interval, 0.5 * 2.0 ** min(self._failures - 1, 8))

    def _failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._due = min(self._due, time.monotonic() + self._delay())
        self._wake.set()

    def _permalink(self, ticket: Ticket) -> str | None:
        if not ticket.channel or not ticket.message_ts:
            return None
        link = build_permalink(self.workspace_url, ticket.channel, ticket.message_ts,
                               ticket.thread_ts)
        if link is not None:
            return link
        try:
            response = self.client.chat_getPermalink(
                channel=ticket.channel, message_ts=ticket.message_ts
            )
        except SlackApiError as exc:
            log.warning("no permalink for %s: %s", ticket.id, exc.response.get("error"))
            return None
        link = response.get("permalink")
        return str(link) if link else None


_TS = re.compile(r"^\d+\.\d+$")
_CHANNEL = re.compile(r"^[A-Z0-9]+$")


def build_permalink(workspace_url: str | None, channel: str, message_ts: str,
                    thread_ts: str | None = None) -> str | None:
    """The message's permalink in Slack's documented format, built without a Web API call:
    ``{url}archives/{channel}/p{ts without the dot}``, plus ``?thread_ts=…&cid=…`` for a reply
    inside a thread. None when ``workspace_url`` (``auth.test``'s ``url``) is unknown or an
    id does not look like Slack's (then ask ``chat.getPermalink``)."""
    if not workspace_url or not workspace_url.startswith("https://"):
        return None
    if not _CHANNEL.match(channel) or not _TS.match(message_ts):
        return None
    base = workspace_url if workspace_url.endswith("/") else workspace_url + "/"
    link = f"{base}archives/{channel}/p{message_ts.replace('.', '')}"
    if thread_ts and thread_ts != message_ts:
        if not _TS.match(thread_ts):
            return None
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


def _is_post_of(message: dict[str, Any], ticket_id: str) -> bool:
    """Whether a history message is a triage post of ``ticket_id``: an app's message with our
    metadata for it, or (when Slack leaves the metadata out) one whose text starts with
    ``"<id> from "``, as every triage post's does."""
    if not message.get("bot_id"):
        return False  # people's messages never count, whatever they say
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") == METADATA_EVENT:
        return (metadata.get("event_payload") or {}).get("ticket") == ticket_id
    return str(message.get("text", "")).startswith(f"{ticket_id} from ")


def _without_connection_retries(client: WebClient) -> WebClient:
    """``client``, minus the retry of calls whose connection failed mid-way."""
    handlers = [h for h in client.retry_handlers
                if not isinstance(h, ConnectionErrorRetryHandler)]
    if len(handlers) == len(client.retry_handlers):
        return client
    return type(client)(token=client.token, base_url=client.base_url, timeout=client.timeout,
                        retry_handlers=handlers, logger=client.logger)
