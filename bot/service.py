"""The one place a question becomes a reply: decide, and open a ticket when the decision says so.

Slack and ``faqbot chat`` both call :func:`answer_question` (Slack messages through
:func:`answer_delivery`, which also claims the delivery in the same store transaction), so they
make the same decision as ``faqbot ask`` (which calls :func:`bot.matching.decide` alone) by
construction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.errors import StoreError
from bot.knowledge import Entry
from bot.matching import Decision, Matcher, decide
from bot.tickets import (
    LoggedQuestion,
    NewTicket,
    Origin,
    PostingLease,
    Ticket,
    TicketStore,
    workflow,
)

__all__ = ["Reply", "answer_delivery", "answer_question", "log_question", "logged_question",
           "new_ticket_for", "request_ticket"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """The decision and, when one was needed, the ticket (new or the thread's existing one)."""

    decision: Decision
    ticket: Ticket | None = None
    ticket_created: bool = False
    store_failed: bool = False  # a ticket was needed but could not be recorded
    question_id: int | None = None  # the question log's row (``record=True``), for feedback
    leased: bool = False  # the new ticket holds the caller's triage posting lease


def new_ticket_for(
    decision: Decision,
    origin: Origin,
    *,
    reason: str | None = None,
    dedupe_key: str | None = None,
    lease: PostingLease | None = None,
) -> NewTicket:
    """The ticket ``decision`` opens for ``origin`` (its candidates and entry recorded),
    holding ``lease`` when it is created."""
    return NewTicket.of(
        origin,
        question=decision.question,
        reason=reason or decision.reason or "no_match",
        candidates=tuple(
            {"entry": c.entry_id, "question": c.question, "score": round(c.score, 1)}
            for c in decision.candidates
        ),
        entry=decision.entry.id if decision.entry else None,
        dedupe_key=dedupe_key,
        lease=lease,
    )


def request_ticket(
    question: str,
    kb: Matcher,
    store: TicketStore,
    origin: Origin,
    *,
    reason: str,
    entry: Entry | None = None,
    dedupe_key: str | None = None,
) -> tuple[Ticket | None, bool]:
    """A ticket someone asked for (a *Talk to a person* or *Not helpful* button): decided as
    any question, so that it carries the candidates, and about ``entry`` when given;
    ``(ticket, created)`` or ``(None, False)`` when the store fails
    (:func:`bot.tickets.workflow.open_ticket`)."""
    decision = decide(question, kb)
    if entry is not None:  # the ticket records which entry the button was about
        decision = replace(decision, entry=entry)
    new = new_ticket_for(decision, origin, reason=reason, dedupe_key=dedupe_key)
    return workflow.open_ticket(store, new)


def answer_question(
    question: str,
    kb: Matcher,
    store: TicketStore | None,
    origin: Origin,
    *,
    dedupe_key: str | None = None,
    open_tickets: bool = True,
    record: bool = False,
    decision: Decision | None = None,
    lease: PostingLease | None = None,
) -> Reply:
    """Decide what to do with ``question`` from ``origin``; when it is a ticket, store it
    (idempotently).

    Args:
        dedupe_key: opening the same key twice yields one ticket (a Slack message's id).
        open_tickets: False where the bot may answer but must not open tickets unasked
            (``FAQ_CHANNELS`` top-level messages).
        record: log the question and the decision (``store.record_question``) for the
            maintainers; with ``open_tickets`` False only answers are logged (the bot stays
            silent on the rest). A store failure here is logged, never raised.
        decision: ``decide(question, kb)`` when the caller already made it.
        lease: the triage posting lease a new ticket is opened holding (the caller posts it
            right after, without claiming it: ``Triage.post(ticket, leased=True)``).
    """
    if decision is None:
        decision = decide(question, kb)
    qid = None
    if record and store is not None and (open_tickets or decision.action == "answer"):
        qid = log_question(store, decision, origin)
    if decision.action != "ticket" or store is None or not open_tickets:
        return Reply(decision, question_id=qid)
    new = new_ticket_for(decision, origin, dedupe_key=dedupe_key, lease=lease)
    try:
        ticket, created = store.open_ticket(new)
    except StoreError:
        log.exception("could not record a %s ticket", new.reason)
        return Reply(decision, store_failed=True, question_id=qid)
    return Reply(decision, ticket=ticket, ticket_created=created, question_id=qid,
                 leased=created and lease is not None)


def answer_delivery(
    keys: Sequence[str],
    question: str,
    kb: Matcher,
    store: TicketStore,
    origin: Origin,
    *,
    dedupe_key: str | None = None,
    open_tickets: bool = True,
    decision: Decision | None = None,
    lease: PostingLease | None = None,
) -> Reply | None:
    """:func:`answer_question` with ``record=True`` for one Slack delivery, whose ``keys`` are
    claimed in the same store transaction as the question log and the ticket
    (``store.take_delivery``): one write instead of three. None when the delivery was claimed
    before (a redelivery: do nothing, not even reply).

    When the store fails, the delivery is answered anyway (better a rare duplicate than
    silence) through :func:`answer_question`, whose own writes may still get through.
    """
    if decision is None:
        decision = decide(question, kb)
    logged = None
    if open_tickets or decision.action == "answer":
        logged = logged_question(decision, origin)
    new = None
    if decision.action == "ticket" and open_tickets:
        new = new_ticket_for(decision, origin, dedupe_key=dedupe_key, lease=lease)
    try:
        intake = store.take_delivery(keys, question=logged, ticket=new)
    except StoreError:
        log.exception("could not record delivery %s; answering anyway", list(keys))
        return answer_question(question, kb, store, origin, dedupe_key=dedupe_key,
                               open_tickets=open_tickets, record=True, decision=decision,
                               lease=lease)
    if not intake.claimed:
        return None
    return Reply(decision, ticket=intake.ticket, ticket_created=intake.ticket_created,
                 question_id=intake.question_id,
                 leased=intake.ticket_created and lease is not None)


def logged_question(decision: Decision, origin: Origin) -> LoggedQuestion:
    """The question log's line for ``decision``."""
    return LoggedQuestion(
        question=decision.question,
        action=decision.action,
        entry=decision.entry.id if decision.entry else None,
        score=round(decision.score, 1),
        reason=decision.reason,
        requester=origin.requester,
        channel=origin.channel,
    )


def log_question(store: TicketStore, decision: Decision, origin: Origin) -> int | None:
    """``store.record_question`` for ``decision``: the logged question's id, or None when the
    store failed (logged, never raised)."""
    logged = logged_question(decision, origin)
    try:
        return store.record_question(**vars(logged))
    except StoreError:
        log.exception("could not log a question")
        return None
