"""The one place a question becomes a reply: decide, and open a ticket when the decision says so.

Slack and ``faqbot chat`` both call :func:`answer_question`, so they make the same decision as
``faqbot ask`` (which calls :func:`bot.matching.decide` alone) by construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.errors import StoreError
from bot.knowledge import KnowledgeBase
from bot.matching import Decision, decide
from bot.tickets import NewTicket, Ticket, TicketStore

__all__ = ["Reply", "answer_question", "log_question", "new_ticket_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """The decision and, when one was needed, the ticket (new or the thread's existing one)."""

    decision: Decision
    ticket: Ticket | None = None
    ticket_created: bool = False
    store_failed: bool = False  # a ticket was needed but could not be recorded
    question_id: int | None = None  # the question log's row (``record=True``), for feedback


def new_ticket_for(
    decision: Decision,
    *,
    requester: str,
    reason: str | None = None,
    team: str | None = None,
    channel: str | None = None,
    thread_ts: str | None = None,
    message_ts: str | None = None,
    source: str = "slack",
    dedupe_key: str | None = None,
) -> NewTicket:
    return NewTicket(
        requester=requester,
        question=decision.question,
        reason=reason or decision.reason or "no_match",
        team=team,
        channel=channel,
        thread_ts=thread_ts,
        message_ts=message_ts,
        candidates=tuple(
            {"entry": c.entry_id, "question": c.question, "score": round(c.score, 1)}
            for c in decision.candidates
        ),
        entry=decision.entry.id if decision.entry else None,
        source=source,
        dedupe_key=dedupe_key,
    )


def answer_question(
    question: str,
    kb: KnowledgeBase,
    store: TicketStore | None,
    *,
    requester: str,
    team: str | None = None,
    channel: str | None = None,
    thread_ts: str | None = None,
    message_ts: str | None = None,
    source: str = "slack",
    dedupe_key: str | None = None,
    open_tickets: bool = True,
    record: bool = False,
    decision: Decision | None = None,
) -> Reply:
    """Decide what to do with ``question``; when it is a ticket, store it (idempotently).

    Args:
        open_tickets: False where the bot may answer but must not open tickets unasked
            (``FAQ_CHANNELS`` top-level messages).
        record: log the question and the decision (``store.record_question``) for the
            maintainers; with ``open_tickets`` False only answers are logged (the bot stays
            silent on the rest). A store failure here is logged, never raised.
        decision: ``decide(question, kb)`` when the caller already made it.
    """
    if decision is None:
        decision = decide(question, kb)
    qid = None
    if record and store is not None and (open_tickets or decision.action == "answer"):
        qid = log_question(store, decision, requester=requester, channel=channel)
    if decision.action != "ticket" or store is None or not open_tickets:
        return Reply(decision, question_id=qid)
    new = new_ticket_for(
        decision,
        requester=requester,
        team=team,
        channel=channel,
        thread_ts=thread_ts,
        message_ts=message_ts,
        source=source,
        dedupe_key=dedupe_key,
    )
    try:
        ticket, created = store.open_ticket(new)
    except StoreError:
        log.exception("could not record a %s ticket", new.reason)
        return Reply(decision, store_failed=True, question_id=qid)
    return Reply(decision, ticket=ticket, ticket_created=created, question_id=qid)


def log_question(store: TicketStore, decision: Decision, *, requester: str,
                 channel: str | None) -> int | None:
    """``store.record_question`` for ``decision``: the logged question's id, or None when the
    store failed (logged, never raised)."""
    try:
        return store.record_question(
            question=decision.question,
            action=decision.action,
            entry=decision.entry.id if decision.entry else None,
            score=round(decision.score, 1),
            reason=decision.reason,
            requester=requester,
            channel=channel,
        )
    except StoreError:
        log.exception("could not log a question")
        return None
