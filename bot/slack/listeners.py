"""Thin Slack handlers, registered in one place by :func:`register`.

Each handler turns a payload into a call to :func:`bot.service.answer_delivery` (or the store)
and the reply into Web API calls. Whether to answer at all is decided by the pure predicates in
:mod:`bot.slack.events`; what to post is built by :mod:`bot.slack.formatting`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import StoreError
from bot.knowledge import Entry
from bot.matching import Decision, Matcher, decide
from bot.service import Reply, answer_delivery, log_question, request_ticket
from bot.slack import events
from bot.slack import formatting as fmt
from bot.slack import staff_blocks as sb
from bot.slack.context import Faqbot
from bot.slack.staff import register_staff, register_staff_interactions
from bot.tickets import Origin, Ticket

__all__ = ["register"]

log = logging.getLogger(__name__)

#: /faq answers carry the logged question's id (for feedback) when the store records it within
#: this many seconds; the ack never waits longer on the store.
QUESTION_LOG_BUDGET = 0.05
#: Threads logging /faq questions (kept apart from the background pool, which may be busy
#: posting to a slow Web API).
QUESTION_LOG_THREADS = 4
#: Messages handed over and not yet answered, at most; past it they are answered inline.
MESSAGE_QUEUE_LIMIT = 256
_SORRY = "Sorry, something went wrong on my side. Please try again shortly."
#: chat.postEphemeral errors after which the command's response_url is used instead.
_NOT_IN_CHANNEL = frozenset({"channel_not_found", "not_in_channel", "user_not_in_channel",
                             "is_archived"})


def register(app: App, bot: Faqbot) -> None:
    """Attach every faqbot listener to ``app``.

    Bolt tries the listeners in the order they were added and runs the first that matches,
    and matching one costs about as much as the rest of an event's dispatch (Bolt builds every
    argument a matcher could ask for). Events, most of the requests, come first, mentions
    first of all, so that a mention is matched against one listener; commands, buttons and
    the modal follow. Listeners of different kinds never match the same request, so only the
    order within a kind matters: there the staff's specific ones come first (the relay before
    ``message``, ``/faq reload`` before ``/faq``), and the catch-all event listener last.
    """
    handlers = Handlers(bot)

    def listen(matcher: Any, handler: Any) -> None:
        matcher(handler)  # Bolt acks events itself; actions ack first thing in the handler

    listen(app.event("app_mention"), handlers.hand_over_message)
    staff = register_staff(app, bot)  # its relay must win over the message listener below
    listen(app.event("message"), handlers.hand_over_message)
    # Acknowledge any other event (e.g. member_joined_channel) instead of Bolt's 404: Slack
    # retries failed deliveries and eventually disables the subscription.
    app.event(re.compile(".*"))(_ignore)
    register_staff_interactions(app, staff)  # its /faq reload must win over /faq below
    app.command("/faq")(handlers.on_faq_command)  # acks itself, at once (see there)
    listen(app.action(fmt.ACTION_SOLVED), handlers.on_solved)
    listen(app.action(fmt.ACTION_NOT_HELPFUL), handlers.on_not_helpful)
    listen(app.action(re.compile(rf"^{fmt.ACTION_PICK}_\d+$")), handlers.on_pick)
    listen(app.action(fmt.ACTION_NONE), handlers.on_none_of_these)
    listen(app.action(fmt.ACTION_POST), handlers.on_post)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None) -> None:
        log.error("unhandled error for a %s request", body.get("type"), exc_info=error)
        if response is not None and response.status >= 500:
            # Raised before the ack (a payload our matchers could not read): a 500 makes
            # Slack redeliver the same payload, which fails the same way.
            response.status, response.body = 400, '{"error": "bad request"}'


def _ignore() -> None:
    """Events faqbot does not act on."""


def _ack(ack: Ack | None) -> None:
    if ack is not None and ack.response is None:
        ack()


class Handlers:
    """The listener functions, bound to one :class:`Faqbot`."""

    def __init__(self, bot: Faqbot) -> None:
        self.bot = bot
        self._question_log = ThreadPoolExecutor(QUESTION_LOG_THREADS,
                                                thread_name_prefix="faqbot-question-log")
        self._queue_slots = threading.BoundedSemaphore(MESSAGE_QUEUE_LIMIT)

    # ------------------------------------------------------------------ messages

    def hand_over_message(
        self, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        """Bolt's listener thread only hands the message over: Bolt acks events from the same
        thread pool, so answering here would make acks wait behind answers under load."""
        if not events.should_answer(body.get("event") or {}, context.bot_user_id,
                                    self.bot.settings.faq_channels):
            return
        if not self._queue_slots.acquire(blocking=False):
            # Over capacity: answer in this thread. Acks slow down (back-pressure) instead of
            # an unbounded queue growing in memory.
            self._on_message_logged(body, context, client)
            return
        try:
            future = self.bot.background.submit(self._on_message_logged, body, context, client)
        except RuntimeError:  # the pool is shut down (worker exiting): finish it here
            self._queue_slots.release()
            self._on_message_logged(body, context, client)
            return
        future.add_done_callback(lambda _: self._queue_slots.release())

    def _on_message_logged(self, body: dict[str, Any], context: BoltContext,
                           client: WebClient) -> None:
        try:
            self.on_message(body, context, client)
        except Exception:  # a pool swallows exceptions: log them like Bolt would
            log.exception("could not handle %s", body.get("event_id"))

    def on_message(self, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """A mention, a DM, or (``FAQ_CHANNELS``) a channel message: answer it once.

        One store transaction claims the delivery and records what it needs (the question log,
        the ticket): see :func:`bot.service.answer_delivery`. The decision is made first; it is
        pure and takes well under a millisecond.
        """
        event = body.get("event") or {}
        bot_user_id = context.bot_user_id
        if not events.should_answer(event, bot_user_id, self.bot.settings.faq_channels):
            return
        keys = events.dedupe_keys(body)
        try:
            intake = self._take_event(body, event, bot_user_id, keys)
        except Exception:
            log.exception("could not answer %s in %s", body.get("event_id"), event["channel"])
            # Whether the claim was taken is unknown: take it now, so that a redelivery of an
            # event that failed this way is not apologised for twice.
            if self._claim(keys):
                self._apologise(event, client)
            return
        if intake is None:
            log.info("skipping a repeated delivery of %s", body.get("event_id"))
            return
        try:
            self._answer_event(event, intake, client)
        except Exception:
            log.exception("could not answer %s in %s", body.get("event_id"), event["channel"])
            self._apologise(event, client)

    def _apologise(self, event: dict[str, Any], client: WebClient) -> None:
        if events.route(event) != "channel":
            self._post(client, event["channel"], events.reply_thread_ts(event), {"text": _SORRY})

    def _take_event(
        self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None,
        keys: list[str],
    ) -> _Taken | None:
        """Claim the delivery (None: claimed before) and record what it needs."""
        kind = events.route(event)
        channel, ts = event["channel"], event["ts"]
        question = events.question_text(event, bot_user_id)
        kb = self.bot.kb
        chat = events.small_talk(question) if question else None
        if not question or chat is not None:  # help, "hi", "thanks!": no log, no ticket
            return _Taken(question, chat, None, kb) if self._claim(keys) else None
        origin = Origin(
            event["user"],
            team=body.get("team_id"),
            channel=channel,
            # a ticket lives in a thread: a top-level DM's is the thread on that message
            thread_ts=events.reply_thread_ts(event) or ts,
            message_ts=ts,
        )
        reply = answer_delivery(keys, question, kb, self.bot.store, origin,
                                dedupe_key=f"msg:{channel}:{ts}", open_tickets=kind != "channel",
                                lease=self.bot.triage.lease())
        return None if reply is None else _Taken(question, chat, reply, kb)

    def _answer_event(self, event: dict[str, Any], intake: _Taken, client: WebClient) -> None:
        kind = events.route(event)
        channel, ts = event["channel"], event["ts"]
        thread_ts = events.reply_thread_ts(event)
        question, kb, reply = intake.question, intake.kb, intake.reply
        if reply is None:
            if kind != "channel":
                self._post(client, channel, thread_ts,
                           fmt.help_message(kb) if not question or intake.chat != "thanks"
                           else {"text": "You're welcome! Ask me anything else any time."})
            return
        if kind == "channel" and reply.decision.action != "answer":
            return  # FAQ_CHANNELS: speak only when confident, never open tickets unasked
        ref = fmt.Ref(None, question, channel, thread_ts, ts, qid=_qid(reply))
        try:
            self._post(client, channel, thread_ts, self._reply_message(reply, ref))
        finally:  # the ticket holds this process's lease: no one else posts it meanwhile
            if reply.ticket is not None:
                self.bot.triage.post(reply.ticket, leased=reply.leased)

    def _reply_message(self, reply: Reply, ref: fmt.Ref, *, ephemeral: bool = False
                       ) -> dict[str, Any]:
        decision = reply.decision
        if decision.action == "answer" and decision.entry is not None:
            return fmt.answer_message(decision.entry, _with_entry(ref, decision.entry.id),
                                      ephemeral=ephemeral)
        if decision.action == "clarify":
            return fmt.clarify_message(decision, ref)
        if reply.store_failed or reply.ticket is None:
            message = fmt.store_failed_message(self.bot.kb.support)
            if decision.entry is not None:  # still give the answer we have
                return _followed_by(fmt.answer_message(
                    decision.entry, _with_entry(ref, decision.entry.id), ephemeral=ephemeral),
                    message)
            return message
        replies = "here" if ref.thread_ts else ("dm" if ephemeral else "thread")
        if decision.entry is not None:  # e.g. a cap increase: the answer and the ticket
            return sb.with_requester_actions(fmt.answer_message(
                decision.entry, _with_entry(ref, decision.entry.id), ticket=reply.ticket,
                ephemeral=ephemeral, replies=replies), reply.ticket)
        return sb.with_requester_actions(
            fmt.ticket_message(reply.ticket, created=reply.ticket_created, replies=replies),
            reply.ticket)

    # ------------------------------------------------------------------ /faq

    def on_faq_command(self, ack: Ack, command: dict[str, Any], client: WebClient,
                       respond: Respond | None = None) -> None:
        """``/faq QUESTION``, acknowledged at once whatever the store's speed.

        An answer or "Did you mean…" travels in the ack body (ephemeral; no Web API call).
        A ticket is acked with "Opening a ticket…"; a background thread stores it and tells
        the asker its id (or that it could not be recorded) with ``chat.postEphemeral``.
        """
        question = events.question_text({"text": command.get("text") or ""})
        kb = self.bot.kb
        if question.lower() in ("", "help") or events.small_talk(question) is not None:
            ack(response_type="ephemeral", **fmt.help_message(kb))
            return
        channel = command.get("channel_id")
        user = command.get("user_id") or "unknown"
        decision = decide(question, kb)  # well under a millisecond: no store involved
        if decision.action != "ticket":
            reply = Reply(decision, question_id=self._log_question(decision, user, channel))
            ack(response_type="ephemeral",
                **self._reply_message(reply, fmt.Ref(None, question, channel, qid=_qid(reply)),
                                      ephemeral=True))
            return
        ack(response_type="ephemeral",
            text="Opening a support ticket for you… I'll tell you its id here in a moment.")
        self.bot.background.submit(self._faq_ticket, question, kb, decision, command, client,
                                   respond)

    def _log_question(self, decision: Decision, user: str, channel: str | None) -> int | None:
        """Log the question; its id (for the answer's feedback buttons) when the store answers
        within ``QUESTION_LOG_BUDGET``, else None (the row is still written, later)."""
        if self.bot.store is None:
            return None
        future = self._question_log.submit(log_question, self.bot.store, decision,
                                           Origin(user, channel=channel))
        try:
            return future.result(timeout=QUESTION_LOG_BUDGET)
        except FutureTimeout:
            log.info("/faq: the question log is slow; answering without feedback buttons' id")
            return None

    def _faq_ticket(self, question: str, kb: Matcher, decision: Decision,
                    command: dict[str, Any], client: WebClient, respond: Respond | None
                    ) -> None:
        """After the ack: store the ticket, tell the asker (ephemeral), post it to triage."""
        channel = command.get("channel_id")
        user = command.get("user_id") or "unknown"
        trigger = command.get("trigger_id")
        reply = None
        try:
            # No delivery keys (the trigger id dedupes the ticket): the question log and the
            # ticket in one transaction.
            reply = answer_delivery(
                [], question, kb, self.bot.store,
                Origin(user, team=command.get("team_id"), channel=channel),
                dedupe_key=f"cmd:{trigger}" if trigger else None,
                decision=decision,
                lease=self.bot.triage.lease(),
            )
            assert reply is not None  # nothing to claim: never a redelivery
            message = self._reply_message(
                reply, fmt.Ref(None, question, channel, qid=_qid(reply)), ephemeral=True)
        except Exception:
            if reply is None:
                log.exception("/faq: could not open a ticket")
                message = fmt.store_failed_message(kb.support)
            else:  # the ticket is stored: only the message about it failed
                log.exception("/faq: could not build the reply to %s", user)
                message = {"text": f"I've opened ticket {reply.ticket.id}; support will follow "
                                   "up." if reply.ticket is not None else _SORRY}
        self._tell_asker(client, channel, user, message, respond)
        if reply is not None and reply.ticket is not None:
            self.bot.triage.post(reply.ticket, leased=reply.leased)

    @staticmethod
    def _tell_asker(client: WebClient, channel: str | None, user: str, message: dict[str, Any],
                    respond: Respond | None) -> None:
        """``chat.postEphemeral``; where the bot may not post (not in the channel, someone
        else's DM) the command's ``response_url`` instead."""
        try:
            client.chat_postEphemeral(channel=channel, user=user, **message)
            return
        except SlackApiError as exc:
            error = exc.response.get("error")
            if respond is None or error not in _NOT_IN_CHANNEL:
                log.warning("/faq: could not tell %s the outcome: %s", user, error)
                return
        except Exception:
            log.exception("/faq: could not tell %s the outcome", user)
            return
        try:
            respond(response_type="ephemeral", replace_original=False, **message)
        except Exception:
            log.exception("/faq: could not tell %s the outcome via response_url", user)

    # ------------------------------------------------------------------ buttons

    def on_solved(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """*Solved*: thank the user; a thread answer loses its buttons."""
        _ack(ack)
        ref, user, container = _action(body)
        entry = self.bot.kb.get(ref.entry or "")
        thanks = fmt.solved_message(entry)
        if _is_ephemeral(body, container):
            self._ephemeral(client, container.get("channel_id"), user, thanks)
            return
        blocks = _without_actions(body["message"].get("blocks") or [])
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f":white_check_mark: Marked solved by <@{user}>. Thanks!"}
        ]})
        self._update(client, container, body["message"].get("text") or thanks["text"], blocks)

    def on_not_helpful(self, body: dict[str, Any], client: WebClient,
                       ack: Ack | None = None) -> None:
        """*Not helpful*: open a ``not_helpful`` ticket with the question; tell its id."""
        _ack(ack)
        self._escalate(body, client, "not_helpful")

    def on_none_of_these(self, body: dict[str, Any], client: WebClient,
                         ack: Ack | None = None) -> None:
        """*None of these* under "Did you mean…": open a ``none_of_these`` ticket with the
        question (and the entries offered); tell its id."""
        _ack(ack)
        self._escalate(body, client, "none_of_these")

    def _escalate(self, body: dict[str, Any], client: WebClient, reason: str) -> None:
        """A button that hands the question to a person: the ticket, the asker told its id,
        the message's buttons gone, the ticket posted to triage."""
        ref, user, container = _action(body)
        kb = self.bot.kb
        entry = kb.get(ref.entry or "")
        ticket, created = self._button_ticket(body, ref, user, container, entry, reason)
        message = fmt.escalated_message(ticket, created=created, support=kb.support,
                                        reason=reason)
        if _is_ephemeral(body, container):
            self._ephemeral(client, container.get("channel_id"), user, message)
        else:
            self._post(client, container.get("channel_id"), _button_thread(ref, container),
                       message)
            self._update(client, container, body["message"].get("text") or "",
                         _without_actions(body["message"].get("blocks") or []))
        if ticket is not None:
            self.bot.triage.post(ticket)

    def on_pick(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """A "Did you mean…" button: answer with that entry in the same thread. An entry that
        also files a request (the cap increase) opens its ticket, as when asked directly."""
        _ack(ack)
        ref, user, container = _action(body)
        entry = self.bot.kb.get(ref.entry or "")
        if entry is None:
            self._ephemeral(client, container.get("channel_id"), user, {
                "text": "That FAQ entry no longer exists; please ask again."})
            return
        ephemeral = _is_ephemeral(body, container)
        ticket: Ticket | None = None
        if entry.ticket:
            ticket, _ = self._button_ticket(body, ref, user, container, entry, entry.ticket)
        message = fmt.answer_message(entry, ref, ticket=ticket, ephemeral=ephemeral,
                                     replies="dm" if ephemeral else "here")
        if ticket is not None:
            message = sb.with_requester_actions(message, ticket)
        elif entry.ticket:  # the request could not be recorded: say so under the answer
            message = _followed_by(message, fmt.store_failed_message(self.bot.kb.support))
        if ephemeral:
            self._ephemeral(client, container.get("channel_id"), user, message)
        else:
            self._post(client, container.get("channel_id"), _button_thread(ref, container),
                       message)
            picked = f"<@{user}> picked *{fmt.knowledge_mrkdwn(entry.question)}*"
            self._update(client, container, picked, [
                {"type": "context", "elements": [{"type": "mrkdwn", "text": picked}]}
            ])
        if ticket is not None:
            self.bot.triage.post(ticket)

    def on_post(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """*Post to channel* (``/faq``): post the answer for everyone, saying who asked."""
        _ack(ack)
        ref, user, container = _action(body)
        entry = self.bot.kb.get(ref.entry or "")
        channel = container.get("channel_id") or ref.channel
        if entry is None or not channel:
            return
        self._post(client, channel, None, fmt.posted_answer_message(entry, ref, user))

    # ------------------------------------------------------------------ helpers

    def _button_ticket(
        self, body: dict[str, Any], ref: fmt.Ref, user: str, container: dict[str, Any],
        entry: Entry | None, reason: str,
    ) -> tuple[Ticket | None, bool]:
        """Open (or find: one per button message and user) the ticket a button asks for,
        with the question the button carries; ``(None, False)`` when the store fails."""
        channel = ref.channel or container.get("channel_id")
        origin = Origin(user, team=(body.get("team") or {}).get("id"), channel=channel,
                        thread_ts=ref.thread_ts, message_ts=ref.message_ts)
        return request_ticket(
            ref.question or (entry.question if entry else ""), self.bot.kb, self.bot.store,
            origin, reason=reason, entry=entry,
            dedupe_key=f"{reason}:{channel}:{container.get('message_ts')}:{user}",
        )

    def _claim(self, keys: list[str]) -> bool:
        """Claim every dedupe key; False as soon as one was claimed before (a redelivery)."""
        try:
            return self.bot.store.claim_events(keys)
        except StoreError:
            # Better to risk a duplicate answer than to go silent while the store is down.
            log.exception("could not record delivery %s; answering anyway", keys)
            return True

    @staticmethod
    def _post(client: WebClient, channel: str | None, thread_ts: str | None,
              message: dict[str, Any]) -> None:
        try:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                    unfurl_media=False, **message)
        except Exception:
            log.exception("could not post a reply in %s", channel)

    @staticmethod
    def _ephemeral(client: WebClient, channel: str | None, user: str,
                   message: dict[str, Any]) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user, **message)
        except Exception:
            log.exception("could not post an ephemeral reply in %s", channel)

    @staticmethod
    def _update(client: WebClient, container: dict[str, Any], text: str,
                blocks: list[dict[str, Any]]) -> None:
        try:
            client.chat_update(channel=container.get("channel_id"),
                               ts=container.get("message_ts"), text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("could not update the message: %s", exc.response.get("error"))
        except Exception:
            log.exception("could not update the message")


@dataclasses.dataclass(frozen=True)
class _Taken:
    """A claimed delivery, ready to answer: the question, its small talk ("greeting"…), the
    reply (None for help and small talk), and the knowledge it was decided with."""

    question: str
    chat: str | None
    reply: Reply | None
    kb: Matcher


def _with_entry(ref: fmt.Ref, entry_id: str) -> fmt.Ref:
    return dataclasses.replace(ref, entry=entry_id)


def _qid(reply: Reply) -> str | None:
    """The logged question's id for the answer's buttons (feedback; see bot.slack.staff)."""
    return str(reply.question_id) if reply.question_id is not None else None


def _action(body: dict[str, Any]) -> tuple[fmt.Ref, str, dict[str, Any]]:
    """The clicked button's :class:`~bot.slack.formatting.Ref`, the user, the container."""
    action = (body.get("actions") or [{}])[0]
    user = (body.get("user") or {}).get("id") or "unknown"
    return fmt.Ref.decode(action.get("value")), user, body.get("container") or {}


def _is_ephemeral(body: dict[str, Any], container: dict[str, Any]) -> bool:
    """Whether a button was pressed on a message only its user sees (``/faq``'s)."""
    return bool(container.get("is_ephemeral") or not body.get("message"))


def _button_thread(ref: fmt.Ref, container: dict[str, Any]) -> str | None:
    """The thread a reply to a button on a visible message goes to: the question's."""
    return ref.thread_ts or container.get("thread_ts") or container.get("message_ts")


def _followed_by(message: dict[str, Any], notice: dict[str, Any]) -> dict[str, Any]:
    """``message`` with ``notice``'s text and blocks after its own."""
    return {**message, "text": message["text"] + "\n" + notice["text"],
            "blocks": [*message["blocks"], *notice["blocks"]]}


def _without_actions(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b.get("type") != "actions"]
