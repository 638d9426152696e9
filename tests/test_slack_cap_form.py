"""The cap-increase details modal: validation (pure), and over real HTTP: *Add details* opens
it, a bad submission gets ``response_action: errors``, a good one is stored, shown on the
triage message and confirmed to the requester."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack import cap_form
from bot.slack import staff_blocks as sb
from tests import slack_helpers as h
from tests.staff_harness import OUTSIDER, REQUESTER, STAFF, SUPPORT, StaffServer, elements, texts


def values(app: str = "My App <b>", current: str = "4,800", wanted: str = "20k",
           live: str | None = "yes") -> dict[str, Any]:
    """``view.state.values`` as Slack sends them for our modal."""
    def text(value: str) -> dict[str, Any]:
        return {cap_form.ACTION: {"type": "plain_text_input", "value": value}}

    radio: dict[str, Any] = {"type": "radio_buttons", "selected_option": None}
    if live is not None:
        radio["selected_option"] = {"text": {"type": "plain_text", "text": live}, "value": live}
    return {cap_form.BLOCK_APP: text(app), cap_form.BLOCK_CURRENT: text(current),
            cap_form.BLOCK_WANTED: text(wanted), cap_form.BLOCK_LIVE: {cap_form.ACTION: radio}}


class TestParse:
    @pytest.mark.parametrize(("text", "number"), [
        ("4800", 4800), ("4,800", 4800), ("4 800", 4800), ("5k", 5000), ("1.5M", 1_500_000),
        (" 20K ", 20000), ("0", None), ("-5", None), ("lots", None), ("1.5", None),
        ("", None), ("1e6", None), ("5 users", None),
    ])
    def test_parse_number(self, text: str, number: int | None) -> None:
        """User counts are whole positive numbers, written as people write them."""
        assert cap_form.parse_number(text) == number

    def test_valid(self) -> None:
        """A complete form gives the details, numbers normalised, and no errors."""
        details, errors = cap_form.parse_submission(values())
        assert errors == {}
        assert details == {"app": "My App <b>", "current_users": "4800", "cap_wanted": "20000",
                           "in_production": "yes"}

    def test_errors_per_field(self) -> None:
        """Every problem is reported under its own field."""
        details, errors = cap_form.parse_submission(values(app=" ", current="many", wanted="",
                                                           live=None))
        assert details == {}
        assert set(errors) == {cap_form.BLOCK_APP, cap_form.BLOCK_CURRENT, cap_form.BLOCK_WANTED,
                               cap_form.BLOCK_LIVE}
        assert "whole number" in errors[cap_form.BLOCK_CURRENT]

    def test_wanted_above_current(self) -> None:
        """The cap wanted must be above the current active users."""
        _, errors = cap_form.parse_submission(values(current="20000", wanted="10k"))
        assert set(errors) == {cap_form.BLOCK_WANTED}

    def test_metadata(self) -> None:
        """The ticket number travels in private_metadata; anything else reads as none."""
        assert cap_form.ticket_number({"private_metadata": '{"ticket": 12}'}) == 12
        for bad in ("", "x", '{"ticket": "12"}', "[12]", '{"ticket": true}'):
            assert cap_form.ticket_number({"private_metadata": bad}) is None


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[StaffServer]:
    srv = StaffServer(tmp_path_factory.mktemp("cap"))
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def srv(server: StaffServer) -> StaffServer:
    return server.fresh()


def _submission(number: int, state: dict[str, Any], user: str = REQUESTER) -> dict[str, Any]:
    body = h.payload("interactive_view_submission")
    body["user"]["id"] = user
    view = body["view"]
    view.update(callback_id=cap_form.CALLBACK_ID, private_metadata=json.dumps({"ticket": number}),
                state={"values": state})
    return body


def _open_details(srv: StaffServer, user: str = REQUESTER):
    ticket, told, _ = srv.open_ticket(h.CAP)
    button = elements(told.blocks)[sb.ACTION_DETAILS]
    body = h.click(button, user=user, channel="C111", message_ts="1.1")
    body["trigger_id"] = "1234.5678.trigger"
    srv.action(body)
    return ticket, told


class TestCapForm:
    def test_add_details_opens_modal(self, srv: StaffServer) -> None:
        """The cap-increase reply offers *Add details* and *Close ticket*; *Add details*
        opens the modal with the click's trigger_id."""
        ticket, told = _open_details(srv)
        assert {sb.ACTION_DETAILS, sb.ACTION_CLOSE} <= set(elements(told.blocks))
        (opened,) = srv.fake.wait_for("views.open", 1)
        assert opened.params["trigger_id"] == "1234.5678.trigger"
        view = opened.params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["callback_id"] == cap_form.CALLBACK_ID
        assert cap_form.ticket_number(view) == ticket.number
        blocks = {b.get("block_id") for b in view["blocks"]}
        assert {cap_form.BLOCK_APP, cap_form.BLOCK_CURRENT, cap_form.BLOCK_WANTED,
                cap_form.BLOCK_LIVE} <= blocks

    def test_outsider_cannot_open(self, srv: StaffServer) -> None:
        """Someone else's *Add details* is refused; no modal opens."""
        _open_details(srv, user=OUTSIDER)
        (refusal,) = srv.fake.wait_for("chat.postEphemeral", 1)
        assert refusal.params["user"] == OUTSIDER
        assert srv.fake.calls("views.open") == []

    def test_validation_errors(self, srv: StaffServer) -> None:
        """Numbers that are not numbers come back as response_action errors; nothing stored."""
        ticket, _ = _open_details(srv)
        srv.fake.reset()
        response = srv.action(_submission(ticket.number, values(current="lots", wanted="1e9")))
        assert response.status == 200
        body = response.json()
        assert body["response_action"] == "errors"
        assert set(body["errors"]) == {cap_form.BLOCK_CURRENT, cap_form.BLOCK_WANTED}
        srv.quiet(0.3)
        assert srv.ticket(ticket.number).details == {}
        assert srv.fake.calls("chat.update") == [] and srv.posts() == []

    def test_submission_stored_shown_confirmed(self, srv: StaffServer) -> None:
        """A valid submission is stored, shown under "Cap increase details" on the triage
        message (escaped), and confirmed in the requester's thread."""
        ticket, _ = _open_details(srv)
        srv.fake.reset()
        response = srv.action(_submission(ticket.number, values(live="no")))
        assert response.status == 200 and not response.body.strip()
        (update,) = srv.fake.wait_for("chat.update", 1)
        assert update.params["channel"] == SUPPORT and update.params["ts"] == ticket.triage_ts
        shown = texts(update)
        assert "*Cap increase details*" in shown
        assert "My App &lt;b&gt;" in shown and "<b>" not in shown
        assert "4,800" in shown and "20,000" in shown and "not live in production" in shown
        confirm = srv.wait(lambda: srv.posts("C111", ticket.thread_ts))[0]
        assert ticket.id in confirm.params["text"] and "20,000" in confirm.params["text"]
        assert srv.ticket(ticket.number).details == {
            "app": "My App <b>", "current_users": "4800", "cap_wanted": "20000",
            "in_production": "no"}

    def test_forged_submission_refused(self, srv: StaffServer) -> None:
        """A submission for someone else's ticket is rejected and stores nothing; staff may
        fill it in for the requester."""
        ticket, _ = _open_details(srv)
        srv.fake.reset()
        body = srv.action(_submission(ticket.number, values(), user=OUTSIDER)).json()
        assert body["response_action"] == "errors"
        srv.quiet(0.3)
        assert srv.ticket(ticket.number).details == {}
        assert srv.fake.calls("chat.update") == []
        response = srv.action(_submission(ticket.number, values(), user=STAFF))
        assert not response.body.strip()
        srv.wait(lambda: srv.ticket(ticket.number).details)
