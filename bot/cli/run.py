"""``faqbot run`` (also plain ``python -m bot``): the Slack app."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.common import add_knowledge_option, settings

__all__ = ["cmd_run", "register"]


def cmd_run(args: argparse.Namespace) -> int:
    from bot.slack.server import run

    configured = settings()
    if args.knowledge:
        configured = configured.with_(knowledge_path=args.knowledge)
    if args.port:
        configured = configured.with_(port=args.port)
    return run(configured)



def register(sub: Any) -> None:
    """Add ``run`` to the ``faqbot`` subcommands."""
    run = sub.add_parser("run", help="start the Slack app (Socket Mode or HTTP)")
    add_knowledge_option(run)
    run.add_argument("--port", type=int, help="HTTP port (default: $PORT or 3000)")
    run.set_defaults(func=cmd_run)
