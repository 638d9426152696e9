"""``faqbot tickets list|show|resolve``, run as users run it: ``python -m bot`` in a subprocess."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli.tickets import format_table
from bot.tickets import NewTicket, SqlTicketStore, Ticket
from tests.test_cli import faqbot

LIST_KEYS = {"id", "status", "reason", "requester", "question", "created_at"}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite store holding FAQ-1 (resolved), FAQ-2 (cap increase, details) and FAQ-3."""
    url = f"sqlite:///{tmp_path / 'tickets.sqlite3'}"
    store = SqlTicketStore(url)
    try:
        first, _ = store.open_ticket(NewTicket(requester="U1", question="q1", reason="no_match"))
        store.set_status(first.number, "resolved", actor="S1")
        cap, _ = store.open_ticket(
            NewTicket(
                requester="U2",
                question="Can we get\nmore users?",
                reason="cap_increase",
                channel="C1",
                thread_ts="1.0",
                entry="cap",
                candidates=({"entry": "cap", "question": "Increase my cap?", "score": 71.5},),
            )
        )
        store.set_details(cap.number, {"app_id": "42"}, actor="U2")
        store.open_ticket(NewTicket(requester="cli:ann", question="x" * 300, reason="requested"))
    finally:
        store.close()
    return url


class TestList:
    """``tickets list`` prints the tickets, newest first."""

    def test_json_lines(self, db_url: str, tmp_path: Path) -> None:
        """--json prints one object per ticket per line with the contract's keys."""
        result = faqbot("tickets", "list", "--json", "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        objects = [json.loads(line) for line in result.stdout.splitlines()]
        assert [o["id"] for o in objects] == ["FAQ-3", "FAQ-2", "FAQ-1"]
        assert all(LIST_KEYS <= set(o) for o in objects)
        assert objects[1]["question"] == "Can we get\nmore users?"  # verbatim, still one line
        assert objects[1]["details"] == {"app_id": "42"}
        datetime.fromisoformat(objects[0]["created_at"])

    def test_status_and_limit(self, db_url: str, tmp_path: Path) -> None:
        """--status filters and --limit caps the list."""
        result = faqbot("tickets", "list", "--json", "--status", "open", "--limit", "1",
                        "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["FAQ-3"]
        resolved = faqbot("tickets", "list", "--json", "--status", "resolved",
                          "--database-url", db_url, cwd=tmp_path)
        assert [json.loads(line)["id"] for line in resolved.stdout.splitlines()] == ["FAQ-1"]

    def test_table(self, db_url: str, tmp_path: Path) -> None:
        """The human table has a header and one aligned line per ticket."""
        result = faqbot("tickets", "list", "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        header, *rows = result.stdout.splitlines()
        assert header.split() == ["ID", "STATUS", "REASON", "REQUESTER", "AGE", "QUESTION"]
        assert [row.split()[0] for row in rows] == ["FAQ-3", "FAQ-2", "FAQ-1"]
        assert "Can we get more users?" in rows[1]
        assert len({line.index(word) for line, word in zip(
            [header, *rows], ["STATUS", "open", "open", "resolved"], strict=True)}) == 1

    def test_empty(self, tmp_path: Path) -> None:
        """No tickets: nothing on stdout, a note on stderr, exit 0."""
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        result = faqbot("tickets", "list", "--database-url", url, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (0, "")
        assert "no tickets" in result.stderr

    def test_database_url_from_environment(self, db_url: str, tmp_path: Path) -> None:
        """Without --database-url the store comes from DATABASE_URL."""
        result = faqbot("tickets", "list", "--json", cwd=tmp_path, DATABASE_URL=db_url)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 3

    def test_option_before_subcommand(self, db_url: str, tmp_path: Path) -> None:
        """--database-url may come before the subcommand too."""
        result = faqbot("tickets", "--database-url", db_url, "list", "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 3


class TestShow:
    """``tickets show ID`` prints every field and the history."""

    def test_show(self, db_url: str, tmp_path: Path) -> None:
        """Fields, the question verbatim, candidates, details and history are all printed."""
        result = faqbot("tickets", "show", "faq-2", "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert out.startswith("FAQ-2\n")
        for text in ("cap_increase", "U2", "C1", "Can we get\n", "  more users?",
                     "Increase my cap?", "app_id: 42", "history:", "opened", "details"):
            assert text in out

    @pytest.mark.parametrize("ticket_id", ["FAQ-99", "nonsense"])
    def test_unknown(self, db_url: str, tmp_path: Path, ticket_id: str) -> None:
        """An unknown or malformed id is a message on stderr and exit 1."""
        result = faqbot("tickets", "show", ticket_id, "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and ticket_id in result.stderr


class TestResolve:
    """``tickets resolve ID`` resolves as actor ``cli``."""

    def test_resolve(self, db_url: str, tmp_path: Path) -> None:
        """The ticket becomes resolved, with a history line by cli; again is harmless."""
        result = faqbot("tickets", "resolve", "FAQ-3", "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FAQ-3 resolved (was open)"
        store = SqlTicketStore(db_url)
        try:
            ticket = store.get(3)
        finally:
            store.close()
        assert ticket is not None and ticket.status == "resolved"
        assert (ticket.history[-1].kind, ticket.history[-1].actor) == ("resolved", "cli")
        again = faqbot("tickets", "resolve", "3", "--database-url", db_url, cwd=tmp_path)
        assert again.returncode == 0
        assert "already resolved" in again.stdout

    def test_same_workflow_as_the_button(self, db_url: str,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
        """The command and the triage message's Resolve button call one workflow step."""
        from bot.cli.parser import main
        from bot.slack.staff import StaffHandlers
        from bot.tickets import workflow

        calls = []
        real = workflow.resolve

        def spy(*args, **kwargs):
            calls.append(kwargs["actor"])
            return real(*args, **kwargs)

        monkeypatch.setattr(workflow, "resolve", spy)
        with pytest.raises(SystemExit) as done:
            main(["tickets", "resolve", "FAQ-3", "--no-slack", "--database-url", db_url])
        assert done.value.code == 0 and calls == ["cli"]
        assert "FAQ-3 resolved (was open)" in capsys.readouterr().out
        handlers = StaffHandlers.__new__(StaffHandlers)  # the button's step, without Slack
        monkeypatch.setattr(handlers, "_step", lambda body, step, *rest: calls.append(step))
        handlers._resolve({}, Ticket.__new__(Ticket), "WSTAFF")
        assert calls[-1] is spy

    def test_unknown(self, db_url: str, tmp_path: Path) -> None:
        """Resolving an unknown ticket exits 1."""
        result = faqbot("tickets", "resolve", "FAQ-99", "--database-url", db_url, cwd=tmp_path)
        assert result.returncode == 1
        assert "FAQ-99" in result.stderr


class TestStoreFailure:
    """An unreachable store is one line on stderr and exit 1, never a password."""

    def test_unreachable(self, tmp_path: Path) -> None:
        """PostgreSQL on a closed port: 'error: …', no traceback, no password."""
        url = "postgresql://faqbot:hunter2@127.0.0.1:1/faqbot"
        result = faqbot("tickets", "list", "--database-url", url, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1
        assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


class TestFormatTable:
    """The table's age column and one-line questions."""

    def test_age_and_truncation(self) -> None:
        """Ages read as s/m/h/d; long and multi-line questions fit on one line."""
        now = datetime(2024, 5, 1, 12, tzinfo=UTC)

        def ticket(number: int, age: timedelta, question: str) -> Ticket:
            at = now - age
            return Ticket(number=number, requester="U1", question=question, reason="no_match",
                          status="open", created_at=at, updated_at=at)

        table = format_table(
            [ticket(10, timedelta(seconds=5), "short"),
             ticket(9, timedelta(minutes=3), "two\nlines"),
             ticket(8, timedelta(hours=5), "y" * 200),
             ticket(7, timedelta(days=2), "old")],
            now=now,
        )
        lines = table.splitlines()
        assert len(lines) == 5
        assert [line.split()[4] for line in lines[1:]] == ["5s", "3m", "5h", "2d"]
        assert lines[2].endswith("two lines")
        assert lines[3].endswith("…") and len(lines[3]) < 120
