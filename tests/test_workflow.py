"""The ticket workflow (bot.tickets.workflow): store changes first, then the notifier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.tickets import NewTicket, Ticket, TicketStore, open_store, workflow


class FakeNotifier:
    """Records what it is asked to show and tell; fails when told to."""

    def __init__(self, *, fail: str | None = None) -> None:
        self.fail = fail
        self.shown: list[Ticket] = []
        self.told: list[workflow.Change] = []

    def show(self, ticket: Ticket) -> bool:
        if self.fail == "show":
            raise RuntimeError("no triage")
        self.shown.append(ticket)
        return True

    def tell_requester(self, change: workflow.Change) -> bool:
        if self.fail == "requester":
            raise RuntimeError("no thread")
        self.told.append(change)
        return True


@pytest.fixture
def store() -> Iterator[TicketStore]:
    opened = open_store("sqlite://")
    yield opened
    opened.close()


def _open(store: TicketStore) -> Ticket:
    return store.open_ticket(NewTicket(requester="U1", question="q", reason="no_match"))[0]


class TestSteps:
    def test_resolve_changes_shows_and_tells(self, store: TicketStore) -> None:
        """resolve sets the status, then shows the ticket and tells the requester."""
        notifier = FakeNotifier()
        outcome = workflow.resolve(store, _open(store), actor="S1", notifier=notifier)
        assert outcome.done and outcome.shown and outcome.told and not outcome.failures
        assert store.get(outcome.ticket.number).status == "resolved"
        assert [t.status for t in notifier.shown] == ["resolved"]
        assert [(c.kind, c.actor) for c in notifier.told] == [("resolved", "S1")]

    def test_resolved_ticket_is_left_alone(self, store: TicketStore) -> None:
        """Resolving a resolved ticket is refused: no history, nothing notified."""
        ticket = workflow.resolve(store, _open(store), actor="S1").ticket
        notifier = FakeNotifier()
        outcome = workflow.resolve(store, ticket, actor="S2", notifier=notifier)
        assert outcome.refused == "resolved"
        assert notifier.shown == [] and notifier.told == []
        assert len(store.get(ticket.number).history) == len(ticket.history)

    def test_failed_notification_is_listed_not_raised(self, store: TicketStore) -> None:
        """A notifier that fails leaves the change in the store and lists the failure."""
        outcome = workflow.take(store, _open(store), actor="S1",
                                notifier=FakeNotifier(fail="show"))
        assert outcome.done and not outcome.shown and outcome.told
        assert [f.where for f in outcome.failures] == ["show"]
        assert store.get(outcome.ticket.number).assignee == "S1"

    def test_take_twice_and_reopen(self, store: TicketStore) -> None:
        """Taking one's own ticket again is refused; reopening needs a resolved ticket."""
        taken = workflow.take(store, _open(store), actor="S1").ticket
        assert workflow.take(store, taken, actor="S1").refused == "yours"
        assert workflow.reopen(store, taken, actor="S1").refused == "not_resolved"
        resolved = workflow.resolve(store, taken, actor="S1").ticket
        assert workflow.reopen(store, resolved, actor="S1").ticket.status == "open"

    def test_close_does_not_tell_the_requester(self, store: TicketStore) -> None:
        """The requester closing their own ticket is shown to staff, not told back."""
        notifier = FakeNotifier()
        outcome = workflow.close(store, _open(store), actor="U1", notifier=notifier)
        assert outcome.ticket.status == "resolved" and notifier.told == []
        assert len(notifier.shown) == 1

    def test_answer_tells_then_resolves(self, store: TicketStore) -> None:
        """Answering with an entry tells the requester, records it, and resolves."""
        notifier = FakeNotifier()
        outcome = workflow.answer(store, _open(store), "review-time", actor="S1",
                                  notifier=notifier)
        assert [(c.kind, c.entry) for c in notifier.told] == [("answered", "review-time")]
        kinds = [e.kind for e in outcome.ticket.history]
        assert kinds[-2:] == ["answered", "resolved"] and outcome.ticket.status == "resolved"
