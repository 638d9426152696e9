"""``faqbot tickets resolve`` in Slack: run as users run it (``python -m bot`` in a subprocess)
against the fake Web API (:mod:`tests.fake_slack`, on 127.0.0.1) and a temporary SQLite store.

With ``SLACK_BOT_TOKEN`` set, resolving from the command line does what the triage message's
*Resolve* button does: the triage message is updated in place and the requester is told in
their thread. ``--no-slack`` skips Slack; a failing Slack leaves the ticket resolved, exit 0 and
a warning on stderr; the token never shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.slack import staff_blocks as sb
from bot.tickets import NewTicket, SqlTicketStore, Ticket
from tests.fake_slack import Call, FakeSlack
from tests.test_cli import faqbot

TOKEN = "xoxb-fake-0000-SECRET-7f3a"  # a fake token: it must never be printed
TRIAGE_CHANNEL = "C0SUPPORT"
TRIAGE_TS = "1699999999.000042"
REQUESTER = "U0REQ"
REQUESTER_CHANNEL = "C0ASK"
THREAD_TS = "1699999000.000100"
QUESTION = "<!channel> can <@U0BOSS> & I get >5k users? <https://evil.example|click>"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """FAQ-1: from Slack, posted to triage; FAQ-2: from faqbot chat, never posted; FAQ-3:
    resolved already (and posted)."""
    url = f"sqlite:///{tmp_path / 'tickets.sqlite3'}"
    store = SqlTicketStore(url)
    try:
        first, _ = store.open_ticket(NewTicket(
            requester=REQUESTER, question=QUESTION, reason="no_match", team="T111",
            channel=REQUESTER_CHANNEL, thread_ts=THREAD_TS, message_ts=THREAD_TS,
            candidates=({"entry": "cap", "question": "Increase my cap?", "score": 40.0},),
        ))
        assert store.claim_posting(first.number, "test", 60)
        store.mark_posted(first.number, TRIAGE_CHANNEL, TRIAGE_TS)
        store.open_ticket(NewTicket(requester="cli:ann", question="q2", reason="requested",
                                    source="cli"))
        third, _ = store.open_ticket(NewTicket(
            requester=REQUESTER, question="q3", reason="no_match",
            channel=REQUESTER_CHANNEL, thread_ts="1699999000.000300",
            message_ts="1699999000.000300"))
        assert store.claim_posting(third.number, "test", 60)
        store.mark_posted(third.number, TRIAGE_CHANNEL, "1699999999.000043")
        store.set_status(third.number, "resolved", actor="U0STAFF")
    finally:
        store.close()
    return url


def get_ticket(url: str, number: int) -> Ticket:
    store = SqlTicketStore(url)
    try:
        ticket = store.get(number)
    finally:
        store.close()
    assert ticket is not None
    return ticket


def resolve(slack: FakeSlack, db_url: str, tmp_path: Path, *args: str, token: str | None = TOKEN):
    env = {"SLACK_API_URL": slack.api_url, "SUPPORT_CHANNEL_ID": TRIAGE_CHANNEL,
           "SLACK_API_TIMEOUT": "5"}
    if token is not None:
        env["SLACK_BOT_TOKEN"] = token
    result = faqbot("tickets", "resolve", *args, "--database-url", db_url, cwd=tmp_path, **env)
    assert TOKEN not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def refuse(slack: FakeSlack, error: str, methods: set[str] | None = None) -> None:
    """Make the fake answer ``{"ok": false, "error": error}`` (to ``methods``, or every call),
    as Slack does for a revoked token."""
    answer = slack._answer  # noqa: SLF001 - the fake has no switch for ok:false answers

    def refusing(method: str, params: dict[str, Any]) -> dict[str, Any]:
        if methods is None or method in methods:
            return {"ok": False, "error": error}
        return answer(method, params)

    slack._answer = refusing  # type: ignore[method-assign]  # noqa: SLF001


def slack_calls(slack: FakeSlack) -> list[str]:
    return [c.method for c in slack.calls() if c.method != "auth.test"]


def assert_escaped(call: Call) -> None:
    """No text Slack parses carries the user's markup: no @channel, mention or link."""
    for text in call.texts():
        assert "<!channel>" not in text and "<@U0BOSS>" not in text
        assert "<https://evil.example" not in text


class TestResolveInSlack:
    def test_updates_triage_and_tells_requester(self, slack: FakeSlack, db_url: str,
                                                tmp_path: Path) -> None:
        """The triage message is re-rendered as resolved in place; the requester is told in
        their thread, by "support"; user text stays escaped; the token only authenticates."""
        result = resolve(slack, db_url, tmp_path, "FAQ-1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == (
            "FAQ-1 resolved (was open); triage message updated; requester notified")
        assert result.stderr == ""

        ticket = get_ticket(db_url, 1)
        assert ticket.status == "resolved"
        assert (ticket.history[-1].kind, ticket.history[-1].actor) == ("resolved", "cli")

        [update] = slack.calls("chat.update")
        assert (update.params["channel"], update.params["ts"]) == (TRIAGE_CHANNEL, TRIAGE_TS)
        [permalink] = slack.calls("chat.getPermalink")
        link = (f"https://fake.slack.com/archives/{REQUESTER_CHANNEL}/"
                f"p{THREAD_TS.replace('.', '')}")
        assert permalink.params["message_ts"] == THREAD_TS
        expected = sb.triage_post(ticket, link, None)  # what the Resolve button renders
        assert update.blocks == json.loads(json.dumps(expected["blocks"]))
        assert update.params["text"] == expected["text"]
        buttons = [e["action_id"] for b in update.blocks if b["type"] == "actions"
                   for e in b["elements"]]
        assert buttons == [sb.ACTION_REOPEN, sb.ACTION_ADD_TO_FAQ]  # no Take / Resolve
        assert any("Resolved* by support (command line)" in t for t in update.texts())
        assert any("&lt;!channel&gt;" in t for t in update.texts())
        assert_escaped(update)

        [post] = slack.calls("chat.postMessage")
        assert (post.params["channel"], post.params["thread_ts"]) == (
            REQUESTER_CHANNEL, THREAD_TS)
        assert post.params["text"] == (
            "*FAQ-1* was resolved by support. If you still need help, reply in this thread.")
        assert "<@" not in post.params["text"] and "<!" not in post.params["text"]
        assert post.params["unfurl_links"] in (False, "0", "false")
        assert_escaped(post)

        assert slack_calls(slack) == ["chat.getPermalink", "chat.update", "chat.postMessage"]
        assert all(c.headers.get("authorization") == f"Bearer {TOKEN}" for c in slack.calls())

    def test_no_slack(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """--no-slack changes the store only, exactly as before."""
        result = resolve(slack, db_url, tmp_path, "FAQ-1", "--no-slack")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-1 resolved (was open)"
        assert result.stderr == ""
        assert get_ticket(db_url, 1).status == "resolved"
        assert slack.calls() == []

    def test_slack_down(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """Slack answering 500 (after the client's retries): resolved all the same, exit 0,
        a warning per thing left as it was."""
        slack.go_down("500", methods={"chat.update", "chat.postMessage"})
        result = resolve(slack, db_url, tmp_path, "FAQ-1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-1 resolved (was open)"
        assert get_ticket(db_url, 1).status == "resolved"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2, result.stderr
        assert lines[0].startswith("warning: FAQ-1: could not update its triage message")
        assert "still shows the ticket open" in lines[0]
        assert lines[1].startswith("warning: FAQ-1: could not tell the requester")
        assert slack.calls("chat.update") and slack.calls("chat.postMessage")  # were tried

    def test_token_revoked(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """Slack refusing the token: the warnings name Slack's error, never the token."""
        refuse(slack, "token_revoked")
        result = resolve(slack, db_url, tmp_path, "1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-1 resolved (was open)"
        assert get_ticket(db_url, 1).status == "resolved"
        assert result.stderr.count("(token_revoked)") == 2, result.stderr

    def test_requester_post_fails(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """One call failing: what worked is reported, what did not is a warning."""
        refuse(slack, "channel_not_found", {"chat.postMessage"})
        result = resolve(slack, db_url, tmp_path, "FAQ-1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-1 resolved (was open); triage message updated"
        assert result.stderr.strip() == (
            "warning: FAQ-1: could not tell the requester in Slack (channel_not_found)")

    def test_already_resolved(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """An already resolved ticket: unchanged behaviour, no Slack call."""
        before = get_ticket(db_url, 3)
        result = resolve(slack, db_url, tmp_path, "FAQ-3")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-3 was already resolved"
        assert slack.calls() == []
        assert get_ticket(db_url, 3).history == before.history

    def test_nothing_in_slack(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """A faqbot chat ticket never posted to triage: nothing to update, no call."""
        result = resolve(slack, db_url, tmp_path, "FAQ-2")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-2 resolved (was open)"
        assert result.stderr == ""
        assert slack.calls() == []

    def test_without_token(self, slack: FakeSlack, db_url: str, tmp_path: Path) -> None:
        """No SLACK_BOT_TOKEN: resolved as before, no call, at most a one-line note."""
        result = resolve(slack, db_url, tmp_path, "FAQ-1", token=None)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-1 resolved (was open)"
        assert len(result.stderr.strip().splitlines()) <= 1
        assert "warning" not in result.stderr
        assert get_ticket(db_url, 1).status == "resolved"
        assert slack.calls() == []


class TestRendering:
    """How a command-line resolve is named in Slack (staff resolves are unchanged)."""

    @staticmethod
    def ticket(**changes: Any) -> Ticket:
        at = datetime(2024, 5, 1, tzinfo=UTC)
        return replace(Ticket(number=7, requester="U0REQ", question="q", reason="no_match",
                              status="resolved", created_at=at, updated_at=at), **changes)

    def test_resolved_notice(self) -> None:
        """A Slack user is mentioned; the command line (None or "cli") is "support"."""
        ticket = self.ticket()
        assert sb.resolved_notice(ticket, "U0STAFF")["text"] == (
            "<@U0STAFF> resolved *FAQ-7*. If you still need help, reply in this thread.")
        by_support = ("*FAQ-7* was resolved by support. If you still need help, reply in this "
                      "thread.")
        assert sb.resolved_notice(ticket)["text"] == by_support
        assert sb.resolved_notice(ticket, sb.CLI_ACTOR)["text"] == by_support

    def test_status_line(self) -> None:
        """The triage message names a command-line resolve as support's."""
        from bot.tickets import TicketEvent

        at = datetime(2024, 5, 1, tzinfo=UTC)
        by_cli = self.ticket(history=(TicketEvent("resolved", "cli", None, at),))
        by_staff = self.ticket(history=(TicketEvent("resolved", "U0STAFF", None, at),))
        assert sb.status_line(by_cli) == "*Resolved* by support (command line)"
        assert sb.status_line(by_staff) == "*Resolved* by <@U0STAFF>"

    def test_cli_records_the_actor_slack_names_support(self) -> None:
        """The actor `tickets resolve` records is the one the renderings call "support"."""
        from bot.cli import tickets as cli_tickets

        assert cli_tickets.CLI_ACTOR == sb.CLI_ACTOR
