"""The ``faqbot`` command line: a thin layer over the core, the store and the Slack app.

``faqbot`` (the console script) and ``python -m bot`` both call :func:`main`.
"""

from __future__ import annotations

from bot.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
