"""``faqbot chat``: the bot in a terminal, no Slack needed; tickets go to the configured store."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from bot.cli.common import add_knowledge_option, load_kb, settings, terminal_mrkdwn
from bot.errors import StoreError
from bot.matching import Matcher
from bot.service import Reply, answer_question, request_ticket
from bot.smalltalk import small_talk
from bot.tickets import Origin, Ticket, TicketStore, open_store

__all__ = ["cmd_chat", "register", "run_chat"]

#: What leaves the chat (also with a leading "/", as in Slack's commands).
EXIT_WORDS = frozenset(("exit", "quit", "q", ":q", "bye"))
HELP = "Ask a question; type a number to pick an offered entry, 'help' for topics, 'exit' to leave."
NONE_WORDS = frozenset(("none", "none of these", "neither"))  # no offered entry fits


def _render(text: str) -> str:
    return terminal_mrkdwn(text)


def run_chat(
    kb: Matcher,
    *,
    database_url: str,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    user: str | None = None,
) -> int:
    """Read questions until end of input; answer each like the Slack app would."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    interactive = stdin.isatty()
    origin = Origin(f"cli:{user or getpass.getuser()}", channel="cli", source="cli")

    store = None
    try:
        store = open_store(database_url)
    except StoreError as exc:
        print(f"warning: ticket store unavailable ({exc}); tickets will not be saved", file=out)

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    say(f"faqbot — {kb.title} ({len(kb)} entries). {HELP}")
    picks = _Picks(kb, store, origin, say)
    try:
        while True:
            if interactive:
                out.write("you> ")
                out.flush()
            line = stdin.readline()
            if not line:
                break
            question = line.strip()
            if not question:
                continue
            if question.lower().lstrip("/") in EXIT_WORDS:
                break
            if question.lower() in ("help", "?"):
                say("Topics: " + (", ".join(kb.topics) or ", ".join(e.id for e in kb)))
                if kb.support:
                    say(_render(kb.support))
                continue
            if picks.take(question):
                continue
            chat = small_talk(question)
            if chat is not None:  # "hi" / "thanks": no FAQ answer, no ticket
                say({"thanks": "bot> You're welcome!", "greeting": "bot> Hi! " + HELP}.get(
                    chat, "bot> " + HELP))
                say()
                continue
            offered = _say_reply(say, answer_question(question, kb, store, origin))
            picks.offer = _Offer(question, offered) if offered else None
            say()
    except KeyboardInterrupt:
        say()
    finally:
        if store is not None:
            store.close()
    return 0


@dataclass(frozen=True)
class _Offer:
    """The entries a "Did you mean…" offered, and the question they were offered for."""

    question: str
    entries: list[str]


@dataclass
class _Picks:
    """Answers to a "Did you mean…": an entry's number, or "none" (a ticket, as the Slack
    app's *None of these* opens)."""

    kb: Matcher
    store: TicketStore | None
    origin: Origin
    say: Callable[..., None]
    offer: _Offer | None = None

    def take(self, text: str) -> bool:
        """Handle ``text`` if it is a pick (a number is one, never a question); else False."""
        offer, say = self.offer, self.say
        if offer is not None and text.lower() in NONE_WORDS:
            self.offer = None
            self._none_fits(offer.question)
            return True
        if not text.isdigit():
            return False
        if offer is not None and 1 <= int(text) <= len(offer.entries):
            self.offer = None
            entry = self.kb.get(offer.entries[int(text) - 1])
            if entry:
                say(f"bot> *{entry.question}*\n{_render(entry.answer)}\n")
        elif offer is not None:
            say(f"bot> Type a number from 1 to {len(offer.entries)}, 'none', or rephrase.\n")
        else:
            say("bot> There is nothing to pick from; ask a question in words.\n")
        return True

    def _none_fits(self, question: str) -> None:
        ticket, created = (None, False) if self.store is None else request_ticket(
            question, self.kb, self.store, self.origin, reason="none_of_these")
        _say_ticket(self.say, "none_of_these", ticket, created=created,
                    failed=self.store is not None, lead="Thanks for saying so. ")
        self.say()


def cmd_chat(args: argparse.Namespace) -> int:
    kb = load_kb(args)
    return run_chat(kb, database_url=args.database_url or settings().database_url)



def register(sub: Any) -> None:
    """Add ``chat`` to the ``faqbot`` subcommands."""
    chat = sub.add_parser("chat", help="talk to the bot in the terminal (tickets are stored)")
    add_knowledge_option(chat)
    chat.add_argument("--database-url", help="ticket store (default: $DATABASE_URL or SQLite)")
    chat.set_defaults(func=cmd_chat)


def _say_reply(say: Callable[..., None], reply: Reply) -> list[str]:
    """Print ``reply``; the ids of the entries offered to pick from by number."""
    d = reply.decision
    offered: list[str] = []
    if d.entry is not None:
        say(f"bot> *{d.entry.question}*\n{_render(d.entry.answer)}")
    if d.action == "clarify":
        say("bot> I'm not sure I found it. Did you mean:" if len(d.candidates) == 1
            else "bot> I'm not sure which of these you mean:")
        for n, c in enumerate(d.candidates, 1):
            say(f"  {n}. {c.question}")
        offered = [c.entry_id for c in d.candidates]
        say("Type its number, 'none' if none fits, or rephrase.")
    elif d.action == "ticket":
        _say_ticket(say, d.reason, reply.ticket, created=reply.ticket_created,
                    failed=reply.store_failed)
    return offered


def _say_ticket(say: Callable[..., None], reason: str | None, ticket: Ticket | None, *,
                created: bool, failed: bool, lead: str = "") -> None:
    """What became of the ticket for ``reason``: opened (or the question added to one), not
    recorded (``failed``: the store is down), or none to open (no store configured)."""
    if ticket is not None:
        verb = "opened" if created else "added to"
        say(f"bot> {lead}I've {verb} ticket {ticket.id} ({reason}); support will follow up.")
    elif failed:
        say("bot> I couldn't record a ticket right now (the ticket store is "
            "unavailable). Please try again in a moment, or use the support form.")
    else:
        say(f"bot> This would open a support ticket ({reason}); no ticket store is configured.")
