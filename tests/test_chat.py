"""`faqbot chat`: the console conversation, with tickets in the configured store."""

from __future__ import annotations

import io
import json

from bot.cli.chat import run_chat
from bot.tickets import open_store
from tests.test_cli import faqbot


class TestChat:
    def test_answers_clarifies_and_opens_tickets_in_the_store(self, small_kb, tmp_path):
        """Answers, a ticket stored in SQLite with its id told, and exit on 'exit'."""
        url = f"sqlite:///{tmp_path / 'chat.sqlite3'}"
        out = io.StringIO()
        stdin = io.StringIO("review eta?\nhow do I bake sourdough bread\nexit\nnever read\n")
        assert run_chat(small_kb, database_url=url, stdin=stdin, stdout=out, user="ana") == 0
        text = out.getvalue()
        assert "App review may take several days" in text
        assert "I've opened ticket FAQ-1 (no_match)" in text
        store = open_store(url)
        try:
            [ticket] = store.list()
            assert (ticket.requester, ticket.question, ticket.source) == (
                "cli:ana", "how do I bake sourdough bread", "cli")
        finally:
            store.close()

    def test_exit_words_leave_without_a_ticket(self, small_kb, tmp_path):
        """'/quit', 'q' or 'bye' leave the chat; none becomes a ticket."""
        url = f"sqlite:///{tmp_path / 'chat.sqlite3'}"
        for word in ("/quit", "/exit", "q", "Bye", ":q"):
            out = io.StringIO()
            stdin = io.StringIO(f"{word}\nhow do I bake sourdough bread\n")
            assert run_chat(small_kb, database_url=url, stdin=stdin, stdout=out) == 0
            assert "ticket" not in out.getvalue(), word
        store = open_store(url)
        try:
            assert store.list() == []
        finally:
            store.close()

    def test_picking_an_offered_entry_by_number(self, small_kb, monkeypatch):
        """After a clarify, typing a candidate's number answers with that entry (a number out
        of range asks again)."""
        import bot.cli.chat
        from bot.matching import Candidate, Decision
        from bot.service import Reply

        offered = (Candidate("not-approved", "Why was my app not approved?", 50.0),
                   Candidate("review-time", "How long does the app review process take?", 48.0))
        monkeypatch.setattr(bot.cli.chat, "answer_question", lambda q, *a, **k: Reply(
            Decision(q, "clarify", None, 50.0, offered)))
        out = io.StringIO()
        run_chat(small_kb, database_url="sqlite://", stdin=io.StringIO("why review\n5\n2\n"),
                 stdout=out)
        text = out.getvalue()
        assert "  1. Why was my app not approved?\n  2. How long does the app review" in text
        assert "bot> Type a number from 1 to 2, 'none', or rephrase." in text
        assert text.rstrip().endswith("App review may take several days to two weeks after submission.")

    def test_none_of_the_offered_entries_opens_a_ticket(self, small_kb, tmp_path, monkeypatch):
        """After a clarify, 'none' opens a none_of_these ticket with the question asked, as
        the Slack app's *None of these* does."""
        import bot.cli.chat
        from bot.matching import Candidate, Decision
        from bot.service import Reply

        offered = (Candidate("not-approved", "Why was my app not approved?", 50.0),)
        monkeypatch.setattr(bot.cli.chat, "answer_question", lambda q, *a, **k: Reply(
            Decision(q, "clarify", None, 50.0, offered)))
        url = f"sqlite:///{tmp_path / 'chat.sqlite3'}"
        out = io.StringIO()
        run_chat(small_kb, database_url=url, stdin=io.StringIO("why review\nnone\n1\n"),
                 stdout=out, user="ana")
        text = out.getvalue()
        assert "Type its number, 'none' if none fits, or rephrase." in text
        assert "I've opened ticket FAQ-1 (none_of_these)" in text
        assert "There is nothing to pick from" in text  # the offer is gone after 'none'
        store = open_store(url)
        try:
            [ticket] = store.list()
            assert (ticket.question, ticket.reason, ticket.requester) == (
                "why review", "none_of_these", "cli:ana")
        finally:
            store.close()

    def test_a_number_with_nothing_offered_is_no_question(self, small_kb, tmp_path):
        """A number typed when nothing is offered says so and opens no ticket."""
        url = f"sqlite:///{tmp_path / 'chat.sqlite3'}"
        out = io.StringIO()
        run_chat(small_kb, database_url=url, stdin=io.StringIO("1\nreview eta?\n7\n"), stdout=out)
        text = out.getvalue()
        assert "There is nothing to pick from; ask a question in words." in text
        assert "ticket" not in text
        store = open_store(url)
        try:
            assert store.list() == []
        finally:
            store.close()

    def test_help_lists_topics_and_support(self, small_kb):
        """'help' prints the topics and how to reach support."""
        out = io.StringIO()
        run_chat(small_kb, database_url="sqlite://", stdin=io.StringIO("help\n"), stdout=out)
        assert "Topics: review, platforms, limits" in out.getvalue()
        assert "Ask in #help." in out.getvalue()

    def test_store_down_is_said_plainly(self, small_kb):
        """An unreachable store: the chat still answers and says tickets cannot be saved."""
        out = io.StringIO()
        url = "postgresql://faqbot:secret@127.0.0.1:1/none"
        run_chat(small_kb, database_url=url, stdin=io.StringIO("bake bread?\nreview eta\n"),
                 stdout=out)
        text = out.getvalue()
        assert "ticket store unavailable" in text and "secret" not in text
        assert "App review may take" in text

    def test_chat_command_end_to_end(self, small_kb_path, tmp_path):
        """The real command reads stdin and stores tickets where DATABASE_URL says."""
        url = f"sqlite:///{tmp_path / 't.sqlite3'}"
        result = faqbot("chat", "--knowledge", str(small_kb_path), stdin="bake bread?\n",
                        DATABASE_URL=url)
        assert result.returncode == 0 and "FAQ-1" in result.stdout
        listed = faqbot("tickets", "list", "--json", DATABASE_URL=url)
        assert json.loads(listed.stdout.splitlines()[0])["question"] == "bake bread?"

    def test_small_talk_opens_no_ticket(self, small_kb, tmp_path):
        """'hi' and 'thanks!' get a short reply and leave the store empty."""
        url = f"sqlite:///{tmp_path / 'chat.sqlite3'}"
        out = io.StringIO()
        run_chat(small_kb, database_url=url, stdin=io.StringIO("hi\nthanks, that fixed it\n"),
                 stdout=out)
        assert "You're welcome!" in out.getvalue() and "Hi!" in out.getvalue()
        store = open_store(url)
        try:
            assert store.list() == []
        finally:
            store.close()
