"""The App Home tab over real HTTP: a requester sees their own tickets; support staff also see
the open queue, oldest first, with *Take* buttons that work from the Home tab."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.slack import staff_blocks as sb
from bot.slack.home import is_home_opened
from bot.tickets import Ticket
from tests import slack_helpers as h
from tests.staff_harness import OUTSIDER, REQUESTER, STAFF, SUPPORT, StaffServer, elements


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffServer]:
    srv = StaffServer(tmp_path_factory.mktemp("home"))
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def srv(server: StaffServer) -> StaffServer:
    return server.fresh()


def _home_opened(user: str, tab: str = "home") -> dict:
    body = h.payload("event_app_home_opened_home")
    body["event"].update(user=user, tab=tab)
    body["event_id"] = f"EvHome{user}{next(h._counter)}"
    return body


def _published(srv: StaffServer, user: str) -> dict:
    calls = srv.wait(lambda: [c for c in srv.fake.calls("views.publish")
                              if c.params["user_id"] == user])
    view = calls[-1].params["view"]
    return json.loads(view) if isinstance(view, str) else view


def _section_texts(view: dict) -> str:
    return json.dumps([b["text"]["text"] for b in view["blocks"] if b["type"] == "section"])


class TestPredicate:
    @pytest.mark.parametrize(("event", "expected"), [
        ({"type": "app_home_opened", "user": "U1", "tab": "home"}, True),
        ({"type": "app_home_opened", "user": "U1"}, True),
        ({"type": "app_home_opened", "user": "U1", "tab": "messages"}, False),
        ({"type": "app_home_opened", "tab": "home"}, False),
        ({"type": "message", "user": "U1"}, False),
    ])
    def test_is_home_opened(self, event: dict, expected: bool) -> None:
        """Only the Home tab, opened by a user, is published."""
        assert is_home_opened(event) is expected


class TestHome:
    def test_requester_sees_own_tickets(self, srv: StaffServer) -> None:
        """A requester's Home lists their tickets with status (escaped), and no queue."""
        requester = "W4242"
        first, _, _ = srv.open_ticket(h.UNANSWERABLE + " &lt;b&gt; & first", user=requester)
        srv.open_ticket(h.UNANSWERABLE + " second", user=OUTSIDER)
        srv.event(_home_opened(requester))
        view = _published(srv, requester)
        assert view["type"] == "home"
        shown = _section_texts(view)
        assert first.id in shown and "*Open*" in shown and "&lt;b&gt; &amp; first" in shown
        assert "second" not in shown and "<b>" not in shown
        assert "Support queue" not in json.dumps(view)
        assert not elements(view["blocks"])

    def test_staff_sees_queue_oldest_first(self, srv: StaffServer) -> None:
        """Staff also see open and in-progress tickets, oldest first, each with *Take*."""
        a, _, post_a = srv.open_ticket(h.UNANSWERABLE + " queue a")
        b, _, _ = srv.open_ticket(h.UNANSWERABLE + " queue b")
        c, _, post_c = srv.open_ticket(h.UNANSWERABLE + " queue c")
        srv.store.set_status(b.number, "in_progress", actor=STAFF, assignee=STAFF)
        srv.store.set_status(c.number, "resolved", actor=STAFF)
        srv.event(_home_opened(STAFF))
        view = _published(srv, STAFF)
        assert "Support queue" in json.dumps(view)
        queued = [blk for blk in view["blocks"] if blk.get("accessory")]
        ids = [int(blk["accessory"]["value"]) for blk in queued]
        assert a.number in ids and b.number in ids and c.number not in ids
        assert ids == sorted(ids)  # oldest first
        assert all(blk["accessory"]["action_id"] == sb.ACTION_TAKE for blk in queued)
        by_id = {int(blk["accessory"]["value"]): blk for blk in queued}
        assert "In progress" in by_id[b.number]["text"]["text"]

    def test_take_from_home(self, srv: StaffServer) -> None:
        """*Take* in the Home tab takes the ticket, updates its triage message, tells the
        requester and republishes the Home."""
        ticket, _, _ = srv.open_ticket(h.UNANSWERABLE + " take from home")
        srv.event(_home_opened(STAFF))
        view = _published(srv, STAFF)
        button = next(blk["accessory"] for blk in view["blocks"]
                      if blk.get("accessory", {}).get("value") == str(ticket.number))
        srv.fake.reset()
        body = h.payload("interactive_block_actions_home")
        body["user"]["id"] = STAFF
        body["view"]["blocks"] = view["blocks"]
        body["actions"][0].update(action_id=button["action_id"], value=button["value"],
                                  text=button["text"], block_id="home")
        srv.action(body)
        (update,) = srv.fake.wait_for("chat.update", 1)
        assert update.params["channel"] == SUPPORT and update.params["ts"] == ticket.triage_ts
        srv.wait(lambda: srv.posts("C111", ticket.thread_ts))
        srv.fake.wait_for("views.publish", 1)
        assert srv.ticket(ticket.number).assignee == STAFF

    def test_forged_take_from_home_refused(self, srv: StaffServer) -> None:
        """A non-staff *Take* from the Home tab is refused (by DM: a Home has no channel)."""
        ticket, _, _ = srv.open_ticket(h.UNANSWERABLE + " forged home take")
        body = h.payload("interactive_block_actions_home")
        body["user"]["id"] = REQUESTER
        body["actions"][0].update(action_id=sb.ACTION_TAKE, value=str(ticket.number))
        srv.action(body)
        refusal = srv.only(lambda: srv.posts(REQUESTER))
        assert "Only support staff" in refusal.params["text"]
        srv.quiet(0.3)
        assert srv.ticket(ticket.number).status == "open"
        assert srv.fake.calls("chat.update") == []

    def test_messages_tab_ignored(self, srv: StaffServer) -> None:
        """Opening the Messages tab publishes nothing."""
        srv.event(_home_opened(STAFF, tab="messages"))
        srv.quiet()
        assert srv.fake.calls("views.publish") == []


class TestHomeView:
    def test_empty(self) -> None:
        """With no tickets the Home says how to get help; staff see an empty queue."""
        view = sb.home_view([], [])
        text = json.dumps(view)
        assert "You have no tickets" in text and "Nothing waiting" in text

    def test_long_queue_capped(self) -> None:
        """A long queue shows the first 20 and says how many more there are."""
        now = datetime(2025, 1, 1, tzinfo=UTC)
        queue = [Ticket(number=n, requester="W1", question="q", reason="no_match",
                        status="open", created_at=now, updated_at=now) for n in range(1, 26)]
        view = sb.home_view([], queue)
        assert len([b for b in view["blocks"] if b.get("accessory")]) == 20
        assert "5 more" in json.dumps(view)
