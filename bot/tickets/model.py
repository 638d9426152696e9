"""The ticket record, the question log's line, and the store interface (``TicketStore``).

Pure data and a Protocol: no database code here (see :mod:`bot.tickets.store`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, Protocol

from bot.errors import StoreError

__all__ = [
    "CLI_ACTOR",
    "REASONS",
    "STATUSES",
    "Intake",
    "LoggedQuestion",
    "NewTicket",
    "Origin",
    "Status",
    "Ticket",
    "TicketEvent",
    "TicketStore",
    "UnknownTicketError",
    "check_status",
    "details_text",
    "format_ticket_id",
    "parse_ticket_id",
    "reopen_conflict",
    "status_event",
]

Status = Literal["open", "in_progress", "resolved"]
STATUSES: tuple[str, ...] = ("open", "in_progress", "resolved")
REASONS: tuple[str, ...] = ("no_match", "cap_increase", "requested", "not_helpful", "none_of_these")
TICKET_PREFIX = "FAQ-"
CLI_ACTOR = "cli"  # the actor of a change made with `faqbot tickets` (support at a terminal)


def format_ticket_id(number: int) -> str:
    return f"{TICKET_PREFIX}{number}"


def parse_ticket_id(text: str) -> int | None:
    """``"FAQ-42"``, ``"faq-42"`` or ``"42"`` → 42; anything else → None."""
    text = text.strip().upper()
    if text.startswith(TICKET_PREFIX):
        text = text[len(TICKET_PREFIX):]
    return int(text) if text.isdigit() and len(text) < 12 else None


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history: opened, follow_up, taken, resolved, reopened, reply…"""

    kind: str
    actor: str | None
    text: str | None
    at: datetime


@dataclass(frozen=True)
class Origin:
    """Who asked, and where: what a question's reply, its log line and its ticket share.

    Usage::

        Origin("U123", team="T1", channel="C1", thread_ts="1712.1", message_ts="1712.1")
        Origin("cli:ana", channel="cli", source="cli")    # faqbot chat
    """

    requester: str  # Slack user id, or "cli:<name>" from faqbot chat
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None  # the requester's thread (where we reply)
    message_ts: str | None = None  # the requester's message (for the permalink)
    source: str = "slack"  # "slack" | "cli"


@dataclass(frozen=True)
class PostingLease:
    """The triage posting lease a new ticket is opened holding (``TicketStore.claim_posting``'s,
    taken in the same write): whoever opens it posts it without claiming it first."""

    owner: str  # the poster's worker id (``Triage.worker``)
    seconds: float  # after this long another worker may post it (the poster died)


@dataclass(frozen=True)
class NewTicket:
    """What is known when a ticket is opened."""

    requester: str  # Slack user id, or "cli:<name>" from faqbot chat
    question: str  # verbatim, unescaped: escape when posting
    reason: str  # one of REASONS
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None  # the requester's thread (where we reply)
    message_ts: str | None = None  # the requester's message (for the permalink)
    candidates: tuple[dict[str, Any], ...] = ()  # [{"entry", "question", "score"}] best first
    entry: str | None = None  # the entry answered with, when any (cap_increase)
    source: str = "slack"  # "slack" | "cli"
    dedupe_key: str | None = None  # e.g. the Slack event id: opening twice yields one ticket
    lease: PostingLease | None = None  # held from the start when the ticket is created

    @classmethod
    def of(cls, origin: Origin, *, question: str, reason: str, **fields: Any) -> NewTicket:
        """A new ticket asked from ``origin`` (``fields``: candidates, entry, dedupe_key,
        lease)."""
        return cls(requester=origin.requester, question=question, reason=reason,
                   team=origin.team, channel=origin.channel, thread_ts=origin.thread_ts,
                   message_ts=origin.message_ts, source=origin.source, **fields)


@dataclass(frozen=True)
class Ticket:
    number: int
    requester: str
    question: str
    reason: str
    status: str
    created_at: datetime
    updated_at: datetime
    team: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    candidates: tuple[dict[str, Any], ...] = ()
    entry: str | None = None
    source: str = "slack"
    assignee: str | None = None
    triage_channel: str | None = None
    triage_ts: str | None = None  # set once posted to the triage channel
    details: dict[str, str] = field(default_factory=dict)  # cap-increase form answers
    history: tuple[TicketEvent, ...] = ()

    @classmethod
    def opened(cls, number: int, new: NewTicket, at: datetime) -> Ticket:
        """The ticket ``new`` becomes when stored as ``number`` at ``at``."""
        return cls(
            number=number,
            requester=new.requester,
            question=new.question,
            reason=new.reason,
            status="open",
            created_at=at,
            updated_at=at,
            team=new.team,
            channel=new.channel,
            thread_ts=new.thread_ts,
            message_ts=new.message_ts,
            candidates=tuple(dict(c) for c in new.candidates),
            entry=new.entry,
            source=new.source,
            history=(TicketEvent("opened", new.requester, new.reason, at),),
        )

    @classmethod
    def from_row(cls, row: Any, history: Sequence[TicketEvent]) -> Ticket:
        """The ticket a ``tickets`` row (attributes named as the columns) holds."""
        return cls(
            **{name: getattr(row, name) for name in _ROW_FIELDS},
            candidates=tuple(row.candidates or ()),
            details=dict(row.details or {}),
            history=tuple(history),
        )

    @property
    def id(self) -> str:
        return format_ticket_id(self.number)

    @property
    def posted(self) -> bool:
        return self.triage_ts is not None

    def to_json(self) -> dict[str, Any]:
        """The ``faqbot tickets list --json`` object."""
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "requester": self.requester,
            "question": self.question,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "assignee": self.assignee,
            "team": self.team,
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "entry": self.entry,
            "candidates": list(self.candidates),
            "details": dict(self.details),
            "posted": self.posted,
        }


#: The fields of Ticket a row holds as they are (the rest are converted by Ticket.from_row).
_ROW_FIELDS = tuple(f.name for f in fields(Ticket) if f.name not in ("candidates", "details",
                                                                     "history"))


@dataclass(frozen=True)
class LoggedQuestion:
    """One line of the question log: a question and the bot's decision
    (:meth:`TicketStore.record_question`'s arguments)."""

    question: str
    action: str
    entry: str | None
    score: float | None
    reason: str | None
    requester: str | None = None
    channel: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Intake:
    """What :meth:`TicketStore.take_delivery` recorded."""

    claimed: bool  # False: the delivery was claimed before (a redelivery); nothing recorded
    question_id: int | None = None  # the logged question, when one was given
    ticket: Ticket | None = None  # the ticket opened (or the thread's, or the deduped one)
    ticket_created: bool = False


class UnknownTicketError(LookupError):
    """No ticket has that number."""

    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"no ticket {format_ticket_id(number)}")

    def __reduce__(self) -> tuple[type, tuple[int]]:  # raised again in a worker (host.py)
        return UnknownTicketError, (self.number,)


class TicketStore(Protocol):
    """Durable tickets plus the bookkeeping that makes Slack deliveries idempotent."""

    def open_ticket(self, new: NewTicket) -> tuple[Ticket, bool]:
        """Store a ticket, committed before returning; ``(ticket, created)``.

        One open ticket per thread: when ``(channel, thread_ts)`` already has a ticket that is
        not resolved, the question is added to its history and ``created`` is False. The same
        ``dedupe_key`` twice returns the first ticket with ``created`` False.
        """

    def get(self, number: int) -> Ticket | None: ...

    def find_by_thread(self, channel: str, thread_ts: str) -> Ticket | None:
        """The newest ticket (any status) opened from that thread."""

    def find_by_triage(self, channel: str, ts: str) -> Ticket | None:
        """The ticket whose triage message is ``ts`` in ``channel``."""

    def list(
        self, *, status: str | None = None, requester: str | None = None, limit: int = 100
    ) -> builtins.list[Ticket]:
        """Newest first."""

    def set_status(
        self, number: int, status: str, *, actor: str | None, assignee: str | None = None
    ) -> Ticket:
        """Change status (and assignee when given), appending to the history.

        Setting the status (and assignee) a ticket already has changes nothing and adds no
        history. Raises :class:`UnknownTicketError` for an unknown number, ``ValueError`` for a
        status not in ``STATUSES``, and :class:`StoreError` when reopening a ticket whose thread
        already has another unresolved ticket.
        """

    def add_event(self, number: int, kind: str, *, actor: str | None, text: str | None) -> Ticket:
        """Append one line to the history (e.g. ``reply``); :class:`UnknownTicketError` if none."""

    def set_details(self, number: int, details: dict[str, str], *, actor: str | None) -> Ticket:
        """Merge ``details`` into the ticket's details (the history names the keys)."""

    def mark_posted(self, number: int, channel: str, ts: str) -> bool:
        """Record the triage message; False if it was already recorded (someone else posted)."""

    def claim_posting(self, number: int, worker: str, lease_seconds: float = 30) -> bool:
        """Take the right to post ticket ``number`` to triage for a while (exactly-once posting
        across threads and processes); False when another worker holds it or it is posted."""

    def pending(self, limit: int = 100) -> builtins.list[Ticket]:
        """Tickets not yet posted to triage, oldest first."""

    def claim_event(self, key: str) -> bool:
        """Record a processed Slack delivery (event id, or channel+ts); True only the first time."""

    def claim_events(self, keys: Sequence[str]) -> bool:
        """Claim several keys of one delivery at once: True only when none was claimed before
        (then all are recorded); otherwise nothing is recorded. One write for the lot."""

    def take_delivery(
        self,
        keys: Sequence[str],
        *,
        question: LoggedQuestion | None = None,
        ticket: NewTicket | None = None,
    ) -> Intake:
        """One Slack delivery in one transaction: claim ``keys`` (as :meth:`claim_events`) and,
        only when the claim is new, log ``question`` (as :meth:`record_question`) and open
        ``ticket`` (as :meth:`open_ticket`). All or nothing: a redelivery (a key claimed
        before) records nothing and returns ``Intake(claimed=False)``; a failure raises
        :class:`StoreError` with nothing recorded."""

    def record_question(
        self,
        *,
        question: str,
        action: str,
        entry: str | None,
        score: float | None,
        reason: str | None,
        requester: str | None = None,
        channel: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Log one question and the bot's decision (for "what did the FAQ not answer"); its id."""

    def set_feedback(self, question_id: int, feedback: str) -> None:
        """Attach the asker's feedback (e.g. ``helpful``) to a question; ``LookupError`` if none."""

    def set_picked(self, question_id: int, entry: str) -> None:
        """Record the entry the asker picked when the bot asked back about a question ("Did
        you mean…"); ``LookupError`` if there is no such question."""

    def questions(self, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        """Logged questions at or after ``since``, oldest first, as dicts.

        Keys: ``id``, ``at`` (aware UTC datetime), ``requester``, ``channel``, ``question``,
        ``action``, ``entry``, ``score``, ``reason``, ``feedback``, ``picked``.
        """

    def purge_questions(self, older_than: datetime) -> int:
        """Delete logged questions from before ``older_than``; how many were deleted."""

    def purge_events(self, older_than: datetime) -> int:
        """Forget delivery keys claimed before ``older_than`` (Slack retries within the hour);
        how many were deleted."""

    def close(self) -> None: ...


# -- history lines and refusals shared by the store ---------------------------------------------

_STATUS_EVENT = {"open": "reopened", "in_progress": "taken", "resolved": "resolved"}


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")


def status_event(old: str, new: str, assignee: str | None) -> tuple[str, str]:
    """The history line (kind, text) for a change of status and/or assignee."""
    if old == new:
        return "assigned", f"assignee {assignee}"
    text = f"{old} -> {new}"
    if assignee:
        text += f" (assignee {assignee})"
    return _STATUS_EVENT[new], text


def details_text(details: dict[str, str]) -> str:
    return "updated " + ", ".join(sorted(details))


def reopen_conflict(number: int, other: int) -> StoreError:
    return StoreError(
        f"{format_ticket_id(number)} cannot be reopened: {format_ticket_id(other)} is already "
        "open in the same thread"
    )
