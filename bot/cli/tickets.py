"""``faqbot tickets list|show|resolve``: the ticket store from the command line.

Usage::

    faqbot tickets list --status open
    faqbot tickets list --json | jq .id
    faqbot tickets show FAQ-3
    faqbot tickets resolve FAQ-3
    faqbot tickets resolve FAQ-3 --no-slack

Each handler takes the parsed ``args`` and returns an exit code: 0, or 1 with ``error: …`` on
stderr when the store fails or the ticket does not exist.

``resolve`` runs the same workflow step as the triage message's *Resolve* button
(:func:`bot.tickets.workflow.resolve`), with Slack's side when ``SLACK_BOT_TOKEN`` is set (and
``--no-slack`` is not given): the triage message is updated in place and the requester is told
in their thread. A Slack failure is a ``warning: …`` line on
stderr; the ticket stays resolved and the exit code stays 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from bot.cli.common import one_line, positive
from bot.config import Settings
from bot.errors import FaqbotError
from bot.tickets import (
    CLI_ACTOR,
    STATUSES,
    Ticket,
    TicketStore,
    UnknownTicketError,
    open_store,
    parse_ticket_id,
    workflow,
)

__all__ = ["cmd_list", "cmd_resolve", "cmd_show", "register"]

_QUESTION_WIDTH = 60
_STATUS_WORDS = {"open": "open", "in_progress": "in progress"}


def register(subparsers: Any) -> None:
    """Add the ``tickets`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    tickets = subparsers.add_parser("tickets", help="list, show and resolve support tickets")
    _add_database_option(tickets, default=None)
    sub = tickets.add_subparsers(dest="tickets_command", metavar="TICKETS_COMMAND", required=True)

    ls = sub.add_parser("list", help="tickets, newest first")
    ls.add_argument("--status", choices=STATUSES, help="only tickets with this status")
    ls.add_argument("--json", action="store_true", help="one JSON object per ticket per line")
    ls.add_argument("--limit", type=positive, default=100, metavar="N",
                    help="at most N tickets (default: 100)")
    _add_database_option(ls)
    ls.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="every field of a ticket, and its history")
    show.add_argument("id", help="the ticket's id: FAQ-12 (or 12)")
    _add_database_option(show)
    show.set_defaults(func=cmd_show)

    resolve = sub.add_parser(
        "resolve", help="mark a ticket resolved (and, with SLACK_BOT_TOKEN, say so in Slack)",
        description="Mark a ticket resolved (actor: cli). With SLACK_BOT_TOKEN set, also update "
                    "its triage message in Slack and tell the requester in their thread, as the "
                    "Resolve button does.")
    resolve.add_argument("id", help="the ticket's id: FAQ-12 (or 12)")
    resolve.add_argument("--no-slack", action="store_true",
                         help="only change the store; leave Slack alone")
    _add_database_option(resolve)
    resolve.set_defaults(func=cmd_resolve)


def cmd_list(args: argparse.Namespace) -> int:
    """Print tickets, newest first: an aligned table, or one JSON object per line."""
    def run(store: TicketStore) -> int:
        tickets = store.list(status=args.status, limit=args.limit)
        if args.json:
            for ticket in tickets:
                print(json.dumps(ticket.to_json(), ensure_ascii=False))
        elif tickets:
            print(format_table(tickets, now=datetime.now(UTC)))
        else:
            print("no tickets", file=sys.stderr)
        return 0

    return _with_store(args, run)


def cmd_show(args: argparse.Namespace) -> int:
    """Print every field of one ticket and its history."""
    def run(store: TicketStore) -> int:
        number = _number(args.id)
        ticket = store.get(number)
        if ticket is None:
            raise UnknownTicketError(number)
        print(format_ticket(ticket))
        return 0

    return _with_store(args, run)


def cmd_resolve(args: argparse.Namespace) -> int:
    """Resolve a ticket (actor ``cli``) with the workflow the *Resolve* button uses
    (:func:`bot.tickets.workflow.resolve`), Slack's side included, and print the outcome:
    ``FAQ-3 resolved (was open); triage message updated; requester notified``."""
    def run(store: TicketStore) -> int:
        number = _number(args.id)
        # Settings first: a malformed variable fails before anything changes.
        settings = None if args.no_slack else Settings.from_env()
        before = store.get(number)
        if before is None:
            raise UnknownTicketError(number)
        if before.status == "resolved":
            print(f"{before.id} was already resolved")
            return 0
        notifier, notes = _slack_notifier(settings, before)
        outcome = workflow.resolve(store, before, actor=CLI_ACTOR, notifier=notifier)
        if outcome.refused:  # resolved meanwhile, by someone else
            print(f"{before.id} was already resolved")
            return 0
        done = [f"{before.id} resolved (was {before.status})"]
        done += ["triage message updated"] * outcome.shown
        done += ["requester notified"] * outcome.told
        print("; ".join(done))
        token = settings.slack_bot_token if settings else None
        for failure in outcome.failures:
            notes.append(_warning(before, failure, token or ""))
        for note in notes:
            print(note, file=sys.stderr)
        return 0  # the ticket is resolved: a Slack failure is a warning, not a failure

    return _with_store(args, run)


def _slack_notifier(settings: Settings | None, ticket: Ticket
                    ) -> tuple[workflow.Notifier | None, list[str]]:
    """The Slack notifier for ``faqbot tickets resolve`` and the notes for stderr: None when
    Slack is left alone (``--no-slack``), shows nothing of the ticket (never posted, no Slack
    requester), or cannot be reached without a token (then a note says so)."""
    if settings is None:
        return None, []
    # Imported here: the other tickets commands never load the Slack packages.
    from bot.slack.app import make_client
    from bot.slack.notifier import SlackNotifier, has_requester_thread

    if not (ticket.triage_channel and ticket.triage_ts) and not has_requester_thread(ticket):
        return None, []  # nothing in Slack shows it
    if not settings.slack_bot_token:
        was = _STATUS_WORDS.get(ticket.status, ticket.status)
        return None, [f"note: SLACK_BOT_TOKEN is not set, so Slack still shows {ticket.id} "
                      f"{was} (see faqbot tickets resolve --help)"]
    return SlackNotifier(make_client(settings), kb=None), []


def _warning(ticket: Ticket, failure: workflow.Failure, token: str) -> str:
    """The ``warning: …`` line for a Slack call that failed."""
    why = _why(failure.error, token)
    if failure.where == "show":
        return (f"warning: {ticket.id}: could not update its triage message in Slack ({why}); "
                f"it still shows the ticket {_STATUS_WORDS.get(ticket.status, ticket.status)}")
    return f"warning: {ticket.id}: could not tell the requester in Slack ({why})"


def _why(exc: Exception, token: str) -> str:
    """A short reason for a failed Web API call: Slack's error code, or the network error
    (never the token, whatever the exception's text holds)."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        reason = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    else:
        reason = str(getattr(exc, "reason", None) or exc or type(exc).__name__)
    reason = one_line(reason, 120)
    return reason.replace(token, "***") if token else reason


# formatting


def format_table(tickets: list[Ticket], *, now: datetime) -> str:
    """An aligned table: id, status, reason, requester, age, and the question on one line."""
    rows = [("ID", "STATUS", "REASON", "REQUESTER", "AGE", "QUESTION")]
    rows += [
        (t.id, t.status, t.reason, t.requester, _age(t.created_at, now),
         one_line(t.question, _QUESTION_WIDTH))
        for t in tickets
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  " + row[-1]
        for row in rows
    )


def format_ticket(ticket: Ticket) -> str:
    """Every field of ``ticket``, then its question verbatim and its history."""
    posted = f"{ticket.triage_channel} {ticket.triage_ts}" if ticket.posted else "not yet"
    fields = [
        ("status", ticket.status),
        ("reason", ticket.reason),
        ("requester", ticket.requester),
        ("assignee", ticket.assignee),
        ("created", _when(ticket.created_at)),
        ("updated", _when(ticket.updated_at)),
        ("source", ticket.source),
        ("team", ticket.team),
        ("channel", ticket.channel),
        ("thread", ticket.thread_ts),
        ("message", ticket.message_ts),
        ("entry", ticket.entry),
        ("posted", posted),
    ]
    lines = [ticket.id]
    lines += [f"  {name:<10} {value if value is not None else '-'}" for name, value in fields]
    lines.append("question:")
    lines += [f"  {line}" for line in ticket.question.splitlines() or [""]]
    if ticket.candidates:
        lines.append("candidates:")
        for c in ticket.candidates:
            question = one_line(str(c.get("question", "")))
            lines.append(f"  {c.get('score', '-'):>5}  {c.get('entry', '-')}  {question}")
    if ticket.details:
        lines.append("details:")
        lines += [f"  {key}: {value}" for key, value in sorted(ticket.details.items())]
    lines.append("history:")
    lines += [
        f"  {_when(e.at)}  {e.kind:<10} {e.actor or '-'}  {one_line(e.text or '', 70)}".rstrip()
        for e in ticket.history
    ]
    return "\n".join(lines)


def _age(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# plumbing


def _add_database_option(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    # Accepted before and after the subcommand; SUPPRESS keeps a subcommand's absent option
    # from overwriting the value given before it.
    parser.add_argument("--database-url", default=default, metavar="URL",
                        help="ticket store (default: $DATABASE_URL or SQLite)")


def _number(text: str) -> int:
    number = parse_ticket_id(text)
    if number is None:
        raise _BadId(f"not a ticket id: {text!r} (expected FAQ-<n>, or just <n>)")
    return number


class _BadId(ValueError):
    pass


def _with_store(args: argparse.Namespace, run: Callable[[TicketStore], int]) -> int:
    """Open the store, ``run(store)``, close it; store and lookup failures exit 1."""
    try:
        url = getattr(args, "database_url", None) or Settings.from_env().database_url
        with closing(open_store(url)) as store:
            return run(store)
    except (FaqbotError, UnknownTicketError, _BadId) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
