"""The ``faqbot`` parser and entry point: one module per command group registers its
subcommands (:mod:`bot.cli.run`, :mod:`~bot.cli.ask`, :mod:`~bot.cli.chat`,
:mod:`~bot.cli.kb` with :mod:`~bot.cli.maintain`, :mod:`~bot.cli.tickets`).

Every handler takes the parsed ``args`` and returns an exit code; library errors become one
line on stderr (``error: …``) and exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot import __version__
from bot.cli import ask, chat, kb, run, tickets
from bot.errors import FaqbotError, KnowledgeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faqbot",
        description="Answers developers' questions from an FAQ; what it cannot answer becomes "
        "a support ticket.",
    )
    parser.add_argument("--version", action="version", version=f"faqbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (run, ask, chat, kb, tickets):  # the order of faqbot --help
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        if args.command is None:
            args = parser.parse_args(["run", *(argv or [])])
        else:
            parser.print_help()
            sys.exit(2)
    try:
        code = args.func(args)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        code = 1
    except FaqbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code)
