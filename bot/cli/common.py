"""What the ``faqbot`` commands share: settings, the knowledge option, terminal text."""

from __future__ import annotations

import argparse
import re
import sys

from bot.config import Settings
from bot.errors import KnowledgeError
from bot.knowledge import load_knowledge
from bot.matching import Matcher
from bot.semantic import with_model

__all__ = [
    "add_knowledge_option",
    "load_kb",
    "load_or_report",
    "one_line",
    "positive",
    "settings",
    "terminal_mrkdwn",
]


def settings() -> Settings:
    return Settings.from_env()


def load_kb(args: argparse.Namespace, *, semantic: bool = True) -> Matcher:
    """The configured knowledge, with the optional semantic model when it has settings for it
    (and ``semantic``: commands that only rank, never decide, go without)."""
    configured = settings()
    kb = load_knowledge(args.knowledge or configured.knowledge_path)
    return with_model(kb, configured.semantic) if semantic else kb


def add_knowledge_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--knowledge",
        metavar="PATH",
        help="knowledge YAML (default: $KNOWLEDGE_PATH or knowledge/faq.yaml)",
    )


def terminal_mrkdwn(text: str) -> str:
    """Slack mrkdwn made readable in a terminal: links, Slack's or Markdown's, as
    ``label (url)``."""
    text = re.sub(r"\[([^\]\n]+)\]\(((?:https?|mailto):[^()\s<>]+)\)", r"\1 (\2)", text)
    text = re.sub(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<((?:https?|mailto):[^>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def load_or_report(args: argparse.Namespace, hint: str = "") -> tuple[str, Matcher | None]:
    """The knowledge at ``kb check``/``kb lint``'s PATH; None after printing every problem."""
    path = args.path or args.knowledge or settings().knowledge_path
    try:
        return path, load_knowledge(path)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem)
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' if n != 1 else ''}{hint}", file=sys.stderr)
        return path, None
