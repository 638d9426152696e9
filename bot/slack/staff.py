"""The support-staff side of faqbot in Slack, registered in one place by :func:`register_staff`.

- the triage message's buttons: *Take*, *Resolve*, *Reopen*, *Answer with FAQ entry* and, on
  resolved tickets, *Add to FAQ*; after each the triage message is updated in place;
- the requester's *Close ticket* and *Add details* (the cap-increase modal,
  :mod:`bot.slack.cap_form`);
- relays between the requester's thread and the triage thread (:mod:`bot.slack.relay`);
- the App Home (:mod:`bot.slack.home`);
- ``/faq reload`` for staff; and, through :mod:`bot.slack.question_log`, what askers' buttons
  tell the question log (*Solved* / *Not helpful*, the entry picked from "Did you mean…").

Who may act: support staff are the members of ``SUPPORT_CHANNEL_ID`` (``conversations.members``,
cached for a minute) plus ``SUPPORT_USER_IDS``. The actor is always the request's
``user.id``; the ticket number in a button's value is only *which* ticket, never *who*. Anyone
else gets an ephemeral refusal, a warning is logged, and nothing changes::

    staff = register_staff(app, bot)          # before the answering listeners (see there)
    register_staff_interactions(app, staff)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import StoreError
from bot.matching import Matcher
from bot.slack import cap_form, events
from bot.slack import formatting as fmt
from bot.slack import relay as relays
from bot.slack import staff_blocks as sb
from bot.slack.context import Faqbot, RequestMiddleware
from bot.slack.home import Home, is_home_opened
from bot.slack.notifier import SlackNotifier, fetch_permalink
from bot.slack.question_log import ButtonRecorder
from bot.tickets import Ticket, UnknownTicketError, format_ticket_id, workflow

__all__ = [
    "StaffDirectory",
    "StaffHandlers",
    "draft_faq",
    "register_staff",
    "register_staff_interactions",
]

log = logging.getLogger(__name__)

#: Seconds a triage channel's member list is trusted before asking Slack again.
MEMBERS_TTL = 60.0
#: ``/faq reload`` answers in its ack when the reload takes less than this; otherwise later.
RELOAD_BUDGET = 2.0


class Reloadable(Protocol):
    def reload(self) -> Any: ...


# ---------------------------------------------------------------------------- who is staff


class StaffDirectory:
    """Answers "is this user support staff?": ``SUPPORT_USER_IDS``, or a member of the triage
    channel (``conversations.members``, cached for ``ttl`` seconds; when Slack cannot be asked,
    the last known list is used, and with none, nobody but ``SUPPORT_USER_IDS`` is staff).

    Args:
        client: the Web API client.
        channel: ``SUPPORT_CHANNEL_ID`` (None: only ``extra`` are staff).
        extra: ``SUPPORT_USER_IDS``.
        ttl: seconds the member list is cached.
    """

    def __init__(self, client: WebClient, channel: str | None, extra: frozenset[str] = frozenset(),
                 *, ttl: float = MEMBERS_TTL) -> None:
        self.client = client
        self.channel = channel
        self.extra = extra
        self.ttl = ttl
        self._lock = threading.Lock()
        self._members: frozenset[str] | None = None
        self._fetched = 0.0

    def is_staff(self, user: str | None) -> bool:
        if not user:
            return False
        if user in self.extra:
            return True
        return user in self.members()

    __call__ = is_staff

    def members(self) -> frozenset[str]:
        if self.channel is None:
            return frozenset()
        with self._lock:
            if self._members is not None and time.monotonic() - self._fetched < self.ttl:
                return self._members
            try:
                self._members = self._fetch(self.channel)
                self._fetched = time.monotonic()
            except Exception:
                log.exception("could not list the members of %s; using the last known list",
                              self.channel)
                if self._members is None:
                    return frozenset()
            return self._members

    def _fetch(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        for _ in range(50):  # 50 pages of 1,000: far more than a support team
            response = self.client.conversations_members(channel=channel, limit=1000,
                                                         cursor=cursor)
            members.update(response.get("members") or ())
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return frozenset(members)


# ---------------------------------------------------------------------------- FAQ drafts


def draft_faq(kb: Matcher, question: str, *, staff_reply: str | None,
              answered_with: str | None) -> str:
    """Knowledge YAML for a resolved ticket (:func:`bot.maintain.draft_from_ticket`)."""
    from bot.maintain import draft_from_ticket  # the maintainers' tooling, loaded when used

    return draft_from_ticket(kb, question, staff_reply=staff_reply, answered_with=answered_with)


# ---------------------------------------------------------------------------- handlers


def _ack(ack: Ack | None, **kwargs: Any) -> None:
    if ack is not None and ack.response is None:
        ack(**kwargs)


def _actor(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def _channel(body: dict[str, Any]) -> str | None:
    container = body.get("container") or {}
    return container.get("channel_id") or (body.get("channel") or {}).get("id")


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return (body.get("actions") or [{}])[0]


class StaffHandlers:
    """The staff-side listener functions, bound to one :class:`~bot.slack.context.Faqbot`."""

    def __init__(self, bot: Faqbot, client: WebClient, directory: StaffDirectory) -> None:
        self.bot = bot
        self.client = client
        self.directory = directory
        self.relay = relays.Relay(client, bot.store, bot.settings.support_channel_id)
        self.home = Home(client, bot.store, directory.is_staff)
        self._permalinks: dict[int, str | None] = {}

    # ------------------------------------------------------------------ staff buttons

    def on_staff_button(self, body: dict[str, Any], client: WebClient,
                        ack: Ack | None = None) -> None:
        """*Take*, *Resolve*, *Reopen*, *Add to FAQ* on a triage message or the App Home."""
        _ack(ack)
        action = _action(body)
        action_id = str(action.get("action_id"))
        ticket = self._authorized(body, action_id, sb.parse_ticket_value(action.get("value")),
                                  staff_only=True)
        if ticket is None:
            return
        user = _actor(body)
        if action_id == sb.ACTION_TAKE:
            self._take(body, ticket, user)
        elif action_id == sb.ACTION_RESOLVE:
            self._resolve(body, ticket, user)
        elif action_id == sb.ACTION_REOPEN:
            self._reopen(body, ticket, user)
        elif action_id == sb.ACTION_ADD_TO_FAQ:
            self._add_to_faq(body, ticket, user)
        if (body.get("container") or {}).get("type") == "view":
            self.home.publish(user)

    def _take(self, body: dict[str, Any], ticket: Ticket, user: str) -> None:
        outcome = self._step(body, workflow.take, ticket, user)
        if outcome is not None and outcome.refused == "resolved":
            self._tell(body, f"*{ticket.id}* is resolved; reopen it first.")
        elif outcome is not None and outcome.refused == "yours":
            self._tell(body, f"You already have *{ticket.id}*.")

    def _resolve(self, body: dict[str, Any], ticket: Ticket, user: str) -> None:
        outcome = self._step(body, workflow.resolve, ticket, user)
        if outcome is not None and outcome.refused:
            self._tell(body, f"*{ticket.id}* is already resolved.")
            self._show(ticket)

    def _reopen(self, body: dict[str, Any], ticket: Ticket, user: str) -> None:
        outcome = self._step(body, workflow.reopen, ticket, user)
        if outcome is not None and outcome.refused:
            self._tell(body, f"*{ticket.id}* is not resolved.")
            self._show(ticket)

    def _add_to_faq(self, body: dict[str, Any], ticket: Ticket, user: str) -> None:
        if ticket.status != "resolved":
            self._tell(body, f"Resolve *{ticket.id}* first; then *Add to FAQ* drafts an entry "
                             "from how it was answered.")
            return
        staff_reply = _last_text(ticket, "staff_reply")
        answered_with = _last_text(ticket, "answered") or ticket.entry
        try:
            draft = draft_faq(self.bot.kb, ticket.question, staff_reply=staff_reply,
                              answered_with=answered_with)
        except Exception:
            log.exception("could not draft an FAQ entry from %s", ticket.id)
            self._tell(body, f"Sorry, I couldn't draft an FAQ entry from *{ticket.id}*.")
            return
        channel, ts = self._triage_target(body, ticket)
        if channel:
            self._post(channel, ts, sb.draft_message(ticket, draft, user))
        outcome = workflow.note(self.bot.store, ticket, "faq_draft", actor=user, text=draft,
                                notifier=self._notifier(body))
        if outcome is not None:
            self._log_failures(outcome)

    # ------------------------------------------------------------------ answer with entry

    def on_answer(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """*Answer with FAQ entry*: post the entry's answer to the requester, then resolve."""
        _ack(ack)
        action = _action(body)
        number, entry_id = sb.parse_answer_value(
            (action.get("selected_option") or {}).get("value") or action.get("value"))
        ticket = self._authorized(body, sb.ACTION_ANSWER, number, staff_only=True)
        if ticket is None:
            return
        user = _actor(body)
        entry = self.bot.kb.get(entry_id)
        if entry is None:
            self._tell(body, "That FAQ entry no longer exists; pick another one.")
            return
        outcome = self._step(body, workflow.answer, ticket, user, entry.id)
        if outcome is not None and outcome.refused:
            self._tell(body, f"*{ticket.id}* is already resolved.")

    # ------------------------------------------------------------------ requester buttons

    def on_close(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """*Close ticket*: the requester (or staff) resolves the ticket from its thread."""
        _ack(ack)
        ticket = self._authorized(body, sb.ACTION_CLOSE,
                                  sb.parse_ticket_value(_action(body).get("value")))
        if ticket is None:
            return
        user = _actor(body)
        outcome = self._step(body, workflow.close, ticket, user)
        if outcome is None:
            return
        if outcome.refused:
            self._tell(body, f"*{ticket.id}* is already resolved.")
            return
        message = body.get("message")
        container = body.get("container") or {}
        done = sb.closed_by_requester_message(ticket, user)
        if message and not container.get("is_ephemeral") and container.get("message_ts"):
            blocks = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
            blocks.append(done["blocks"][0])
            self._update(container.get("channel_id"), container["message_ts"],
                         message.get("text") or done["text"], blocks)
        else:
            self._tell(body, done["text"])

    def on_details(self, body: dict[str, Any], client: WebClient, ack: Ack | None = None) -> None:
        """*Add details*: open the cap-increase modal."""
        _ack(ack)
        ticket = self._authorized(body, sb.ACTION_DETAILS,
                                  sb.parse_ticket_value(_action(body).get("value")))
        if ticket is None:
            return
        if ticket.status == "resolved":
            self._tell(body, f"*{ticket.id}* is resolved; ask again if you still need an "
                             "increase.")
            return
        try:
            self.client.views_open(trigger_id=body.get("trigger_id"), view=cap_form.modal(ticket))
        except Exception:
            log.exception("could not open the cap-increase form for %s", ticket.id)
            self._tell(body, "Sorry, I couldn't open the form; please try again.")

    # ------------------------------------------------------------------ cap modal

    def _check_submission(self, body: dict[str, Any]
                          ) -> tuple[Ticket | None, dict[str, str], dict[str, str]]:
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        number = cap_form.ticket_number(view)
        user = _actor(body)
        ticket = self._get(number)
        if ticket is None or not (user == ticket.requester or self.directory.is_staff(user)):
            log.warning("refused %s: cap details for ticket %s by %s (not the requester or "
                        "support staff)", cap_form.CALLBACK_ID, number, user)
            return None, {}, {cap_form.BLOCK_APP: "You can't add details to this ticket."}
        details, errors = cap_form.parse_submission(values)
        return ticket, details, errors

    def on_cap_save(self, body: dict[str, Any]) -> None:
        """Store valid details, update the triage message and confirm to the requester."""
        ticket, details, errors = self._check_submission(body)
        if ticket is None or errors:
            return
        try:
            outcome = workflow.add_details(self.bot.store, ticket, details, actor=_actor(body),
                                           notifier=self._notifier())
        except (StoreError, LookupError):
            log.exception("could not store the cap details of %s", ticket.id)
            return
        self._log_failures(outcome)

    def on_cap_submit(self, ack: Ack, body: dict[str, Any]) -> None:
        """Both steps in one listener (Bolt's default mode: the ack is sent when called)."""
        ticket, details, errors = self._check_submission(body)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        self.on_cap_save(body)

    # ------------------------------------------------------------------ relays, home

    def is_relay(self, body: dict[str, Any], context: BoltContext) -> bool:
        """Matcher: a thread reply to relay (and so not a new question for the answerer).

        A DM thread reply counts only when the thread has a ticket; other DMs stay questions.
        """
        event = body.get("event") or {}
        if not relays.is_relay_candidate(event, context.bot_user_id):
            return False
        if events.is_direct_message(event):
            try:
                return self.relay.ticket_for(event) is not None
            except StoreError:
                log.exception("could not look up a DM thread's ticket")
                return False
        return True

    def on_thread_reply(self, body: dict[str, Any]) -> None:
        self.relay.handle(body.get("event") or {}, event_id=body.get("event_id"))

    def on_home_opened(self, event: dict[str, Any]) -> None:
        if is_home_opened(event):
            self.home.publish(str(event["user"]))

    # ------------------------------------------------------------------ /faq reload

    @staticmethod
    def is_reload(command: dict[str, Any]) -> bool:
        return (command.get("text") or "").strip().lower() == "reload"

    def on_reload(self, ack: Ack, command: dict[str, Any]) -> None:
        """``/faq reload`` (staff only): reload the knowledge now and say what happened."""
        user = str(command.get("user_id") or "")
        future = self.bot.background.submit(self._reload, user)
        try:
            message = future.result(timeout=RELOAD_BUDGET)
        except FutureTimeout:
            ack(response_type="ephemeral", text="Working on it; I'll tell you the result here.")
            channel = command.get("channel_id")
            future.add_done_callback(lambda f: self._ephemeral(channel, user, f.result()))
            return
        ack(response_type="ephemeral", **message)

    def _reload(self, user: str) -> dict[str, Any]:
        if not self.directory.is_staff(user):
            log.warning("refused /faq reload for %s (not support staff)", user)
            return sb.refusal("reload")
        holder = self._holder()
        if holder is None:
            return sb.notice("Knowledge reload is unavailable: this app was started without a "
                             "reloadable knowledge file. Restart faqbot to pick up changes.")
        try:
            result = holder.reload()
        except Exception:
            log.exception("/faq reload failed")
            return sb.notice("The reload failed; the previous knowledge is still in service. "
                             "See the logs.")
        log.info("/faq reload by %s: %s", user, getattr(result, "summary", result))
        problems = [str(p) for p in getattr(result, "problems", ())]
        return sb.reload_message(str(getattr(result, "summary", result)), problems)

    def _holder(self) -> Reloadable | None:
        holder = getattr(self.bot, "holder", None)
        if holder is None and callable(getattr(self.bot.kb_provider, "reload", None)):
            holder = self.bot.kb_provider  # a KnowledgeHolder is itself a knowledge provider
        return holder

    # ------------------------------------------------------------------ helpers

    def _get(self, number: int | None) -> Ticket | None:
        if number is None:
            return None
        try:
            return self.bot.store.get(number)
        except StoreError:
            log.exception("could not read ticket %s", number)
            return None

    def _authorized(self, body: dict[str, Any], action: str, number: int | None, *,
                    staff_only: bool = False) -> Ticket | None:
        """The ticket, when the request's user may press ``action`` on it; otherwise None after
        an ephemeral refusal and a logged warning (nothing else happens)."""
        user = _actor(body)
        ticket = self._get(number)
        allowed = self.directory.is_staff(user) or (
            not staff_only and ticket is not None and ticket.requester == user)
        if not allowed:
            log.warning("refused %s on ticket %s for user %s (not %s)", action,
                        _ticket_name(number), user or "?",
                        "support staff" if staff_only else "the requester or support staff")
            self._tell(body, sb.refusal(action))
            return None
        if ticket is None:
            self._tell(body, f"There is no ticket {_ticket_name(number)}.")
        return ticket

    def _step(self, body: dict[str, Any], step: Callable[..., workflow.Outcome],
              ticket: Ticket, user: str, *args: Any) -> workflow.Outcome | None:
        """Run a :mod:`bot.tickets.workflow` step for ``user`` with this request's notifier;
        None after telling the user when the store refused or failed."""
        try:
            outcome = step(self.bot.store, ticket, *args, actor=user,
                           notifier=self._notifier(body))
        except UnknownTicketError:
            self._tell(body, f"There is no ticket {ticket.id}.")
            return None
        except StoreError as exc:
            log.warning("could not %s %s: %s", step.__name__, ticket.id, exc)
            self._tell(body, f"Couldn't change *{ticket.id}*: {fmt.escape(str(exc))}")
            return None
        self._log_failures(outcome)
        return outcome

    def _notifier(self, body: dict[str, Any] | None = None) -> SlackNotifier:
        """The workflow's notifier for a request (``body``: a button on a triage message not
        recorded yet is updated too)."""
        return SlackNotifier(self.client, self.bot.kb, permalink=self._permalink,
                             triage=self._triage_target(body, None))

    def _log_failures(self, outcome: workflow.Outcome) -> None:
        ticket = outcome.ticket
        for failure in outcome.failures:
            error = failure.error
            if failure.where == "requester":
                log.error("could not post to %s", ticket.channel, exc_info=error)
            elif isinstance(error, SlackApiError):
                log.warning("could not update the triage message of %s: %s", ticket.id,
                            error.response.get("error"))
            else:
                log.error("could not update the triage message of %s", ticket.id,
                          exc_info=error)

    def _triage_target(self, body: dict[str, Any] | None, ticket: Ticket | None
                       ) -> tuple[str | None, str | None]:
        if ticket is not None and ticket.triage_channel and ticket.triage_ts:
            return ticket.triage_channel, ticket.triage_ts
        container = (body or {}).get("container") or {}
        support = self.bot.settings.support_channel_id
        if support and container.get("channel_id") == support and container.get("message_ts"):
            return support, container["message_ts"]
        return None, None

    def _show(self, ticket: Ticket) -> None:
        """Update the ticket's triage message in place to show it as it is now."""
        self._log_failures(workflow.show(ticket, self._notifier()))

    def _permalink(self, ticket: Ticket) -> str | None:
        if ticket.number in self._permalinks:
            return self._permalinks[ticket.number]
        link = None
        if ticket.channel and ticket.message_ts:
            try:
                link = fetch_permalink(self.client, ticket)
            except Exception:
                log.warning("no permalink for %s", ticket.id, exc_info=True)
                return None
        self._permalinks[ticket.number] = link
        return link

    def _tell(self, body: dict[str, Any], message: dict[str, Any] | str) -> None:
        """An ephemeral reply to the request's user where they clicked (a DM from the App Home)."""
        if isinstance(message, str):
            message = sb.notice(message)
        user = _actor(body)
        channel = _channel(body)
        if channel:
            self._ephemeral(channel, user, message)
        elif user:
            self._post(user, None, message)

    def _post(self, channel: str, thread_ts: str | None, message: dict[str, Any]) -> None:
        try:
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                         unfurl_links=False, unfurl_media=False, **message)
        except Exception:
            log.exception("could not post to %s", channel)

    def _ephemeral(self, channel: str | None, user: str, message: dict[str, Any]) -> None:
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, **message)
        except Exception:
            log.exception("could not post an ephemeral reply in %s", channel)

    def _update(self, channel: str | None, ts: str, text: str, blocks: list[dict[str, Any]]
                ) -> None:
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("could not update %s in %s: %s", ts, channel, exc.response.get("error"))
        except Exception:
            log.exception("could not update %s in %s", ts, channel)


def _ticket_name(number: int | None) -> str:
    return format_ticket_id(number) if number is not None else "(none)"


def _last_text(ticket: Ticket, kind: str) -> str | None:
    for event in reversed(ticket.history):
        if event.kind == kind and event.text:
            return event.text
    return None


# ---------------------------------------------------------------------------- registration


def register_staff(app: App, bot: Faqbot) -> StaffHandlers:
    """Attach the staff-side middleware and event listeners to ``app``; then
    :func:`register_staff_interactions` adds its commands, buttons and modal.

    Call each *before* the answering listeners of its kind: Bolt runs only the first listener
    that matches a request, and the relay listener (``message`` events that are thread
    replies) and ``/faq reload`` must win over the general ``message`` and ``/faq`` listeners.
    """
    client = app.client
    directory = StaffDirectory(client, bot.settings.support_channel_id,
                               bot.settings.support_user_ids)
    handlers = StaffHandlers(bot, client, directory)

    def listen(matcher: Any, handler: Any) -> None:
        matcher(handler)  # Bolt acks events itself; actions ack first thing in the handler

    app.middleware(RequestMiddleware(ButtonRecorder(bot)))  # feedback and picks, logged
    listen(app.event("message", matchers=[handlers.is_relay]), handlers.on_thread_reply)
    listen(app.event("app_home_opened"), handlers.on_home_opened)
    return handlers


def register_staff_interactions(app: App, handlers: StaffHandlers) -> None:
    """``/faq reload``, the staff's and requesters' buttons, and the cap-increase modal."""

    def listen(matcher: Any, handler: Any) -> None:
        matcher(handler)  # actions ack first thing in the handler

    app.command("/faq", matchers=[handlers.is_reload])(handlers.on_reload)
    for action_id in (sb.ACTION_TAKE, sb.ACTION_RESOLVE, sb.ACTION_REOPEN, sb.ACTION_ADD_TO_FAQ):
        listen(app.action(action_id), handlers.on_staff_button)
    listen(app.action(sb.ACTION_ANSWER), handlers.on_answer)
    listen(app.action(sb.ACTION_CLOSE), handlers.on_close)
    listen(app.action(sb.ACTION_DETAILS), handlers.on_details)
    app.view(cap_form.CALLBACK_ID)(handlers.on_cap_submit)
