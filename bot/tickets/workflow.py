"""What staff and requesters do to a ticket: take, resolve, reopen, answer, add details, note.

Each step changes the store, then tells the world through a :class:`Notifier`: the place
staff follow the ticket (in Slack, its triage message, updated in place) and the requester
(in Slack, their thread). The Slack buttons (:mod:`bot.slack.staff`) and ``faqbot tickets
resolve`` call the same functions with their own notifier, so they do the same thing::

    outcome = workflow.resolve(store, ticket, actor="U123", notifier=SlackNotifier(...))
    if outcome.refused:          # e.g. "resolved": it was resolved already, nothing changed
        ...
    for failure in outcome.failures:   # a notification that could not be delivered
        ...

A step never raises for a notification that failed (the store has changed: that stands); it
lists it in :attr:`Outcome.failures`. It raises what the store raises
(:class:`~bot.tickets.UnknownTicketError`, :class:`~bot.errors.StoreError`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.errors import StoreError
from bot.tickets.model import NewTicket, Ticket, TicketStore

__all__ = [
    "Change",
    "Failure",
    "Notifier",
    "Outcome",
    "add_details",
    "answer",
    "close",
    "note",
    "open_ticket",
    "reopen",
    "resolve",
    "show",
    "take",
]

log = logging.getLogger(__name__)

ChangeKind = Literal["taken", "resolved", "answered", "details"]


@dataclass(frozen=True)
class Change:
    """What the requester is told about: ``kind`` done by ``actor`` on ``ticket`` (as it is
    after the change; for ``answered``, before it is resolved), with the ``entry`` answered
    with."""

    kind: ChangeKind
    ticket: Ticket
    actor: str
    entry: str | None = None


class Notifier(Protocol):
    """Where a ticket's changes are shown. Both methods raise when the delivery fails."""

    def show(self, ticket: Ticket) -> bool:
        """Show ``ticket`` as it is now where staff follow it; False when it is shown nowhere
        (not posted to triage yet)."""

    def tell_requester(self, change: Change) -> bool:
        """Tell the requester about ``change``; False when there is nobody to tell (the
        ticket did not come from Slack)."""


@dataclass(frozen=True)
class Failure:
    """A notification that could not be delivered: ``where`` is ``show`` or ``requester``."""

    where: Literal["show", "requester"]
    error: Exception


@dataclass(frozen=True)
class Outcome:
    """What a step did.

    Attributes:
        ticket: the ticket as it is now.
        refused: why nothing changed (``"resolved"``: it is resolved already;
            ``"not_resolved"``: reopening an open ticket; ``"yours"``: taking a ticket one
            already has); None when the step was done.
        shown: the place staff follow the ticket was updated.
        told: the requester was told.
        failures: notifications that failed.
    """

    ticket: Ticket
    refused: str | None = None
    shown: bool = False
    told: bool = False
    failures: tuple[Failure, ...] = field(default=())

    @property
    def done(self) -> bool:
        return self.refused is None


def open_ticket(store: TicketStore, new: NewTicket) -> tuple[Ticket | None, bool]:
    """Open ``new`` (or find it: same dedupe key, or its thread's unresolved ticket):
    ``(ticket, created)``; ``(None, False)``, logged, when the store fails."""
    try:
        return store.open_ticket(new)
    except StoreError:
        log.exception("could not record a %s ticket", new.reason)
        return None, False


def take(store: TicketStore, ticket: Ticket, *, actor: str,
         notifier: Notifier | None = None) -> Outcome:
    """``actor`` takes ``ticket`` (in progress, assigned to them); the requester is told."""
    if ticket.status == "resolved":
        return Outcome(ticket, refused="resolved")
    if ticket.status == "in_progress" and ticket.assignee == actor:
        return Outcome(ticket, refused="yours")
    updated = store.set_status(ticket.number, "in_progress", actor=actor, assignee=actor)
    return _notify(notifier, updated, Change("taken", updated, actor))


def resolve(store: TicketStore, ticket: Ticket, *, actor: str,
            notifier: Notifier | None = None) -> Outcome:
    """``actor`` resolves ``ticket``; the requester is told. A resolved ticket is left alone
    (refused ``"resolved"``, nothing notified)."""
    if ticket.status == "resolved":
        return Outcome(ticket, refused="resolved")
    updated = store.set_status(ticket.number, "resolved", actor=actor)
    return _notify(notifier, updated, Change("resolved", updated, actor))


def close(store: TicketStore, ticket: Ticket, *, actor: str,
          notifier: Notifier | None = None) -> Outcome:
    """The requester (or staff, for them) closes ``ticket`` from the requester's thread:
    resolved and shown to staff; the requester, who closed it, is not told."""
    if ticket.status == "resolved":
        return Outcome(ticket, refused="resolved")
    updated = store.set_status(ticket.number, "resolved", actor=actor)
    return _notify(notifier, updated, None)


def reopen(store: TicketStore, ticket: Ticket, *, actor: str,
           notifier: Notifier | None = None) -> Outcome:
    """``actor`` reopens a resolved ``ticket`` (the requester is not told)."""
    if ticket.status != "resolved":
        return Outcome(ticket, refused="not_resolved")
    updated = store.set_status(ticket.number, "open", actor=actor)
    return _notify(notifier, updated, None)


def answer(store: TicketStore, ticket: Ticket, entry: str, *, actor: str,
           notifier: Notifier | None = None) -> Outcome:
    """``actor`` answers ``ticket`` with FAQ entry ``entry``: the requester gets the answer,
    the history says so, and the ticket is resolved."""
    if ticket.status == "resolved":
        return Outcome(ticket, refused="resolved")
    told, failures = False, []
    if notifier is not None:
        try:
            told = notifier.tell_requester(Change("answered", ticket, actor, entry))
        except Exception as exc:
            failures.append(Failure("requester", exc))
    try:
        store.add_event(ticket.number, "answered", actor=actor, text=entry)
    except (StoreError, LookupError):
        log.exception("could not record the answer on %s", ticket.id)
    updated = store.set_status(ticket.number, "resolved", actor=actor)
    shown = _notify(notifier, updated, None)
    return Outcome(updated, shown=shown.shown, told=told,
                   failures=(*failures, *shown.failures))


def add_details(store: TicketStore, ticket: Ticket, details: dict[str, str], *, actor: str,
                notifier: Notifier | None = None) -> Outcome:
    """``actor`` adds ``details`` (the cap-increase form's answers); the requester gets a
    confirmation."""
    updated = store.set_details(ticket.number, details, actor=actor)
    return _notify(notifier, updated, Change("details", updated, actor))


def note(store: TicketStore, ticket: Ticket, kind: str, *, actor: str | None,
         text: str | None, notifier: Notifier | None = None) -> Outcome | None:
    """A line of history (a relayed ``staff_reply``/``requester_reply``, an ``faq_draft``…);
    with a notifier, the ticket is shown again. None, logged, when the store fails."""
    try:
        updated = store.add_event(ticket.number, kind, actor=actor, text=text)
    except (StoreError, LookupError):
        log.exception("could not record a %s on %s", kind, ticket.id)
        return None
    return _notify(notifier, updated, None)


def show(ticket: Ticket, notifier: Notifier) -> Outcome:
    """Show ``ticket`` as it is (e.g. a stale triage message after a refused step)."""
    return _notify(notifier, ticket, None)


def _notify(notifier: Notifier | None, ticket: Ticket, change: Change | None) -> Outcome:
    """Show ``ticket`` and tell the requester about ``change``, each failure listed."""
    if notifier is None:
        return Outcome(ticket)
    shown = told = False
    failures = []
    try:
        shown = notifier.show(ticket)
    except Exception as exc:
        failures.append(Failure("show", exc))
    if change is not None:
        try:
            told = notifier.tell_requester(change)
        except Exception as exc:
            failures.append(Failure("requester", exc))
    return Outcome(ticket, shown=shown, told=told, failures=tuple(failures))
