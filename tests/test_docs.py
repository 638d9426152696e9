"""The docs stay honest: every command has help text and a row in the README; every
configuration variable is in .env.example and the README."""

from __future__ import annotations

import argparse

import pytest

from bot.cli import build_parser
from tests.conftest import _FAQBOT_VARS, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
VARIABLES = _FAQBOT_VARS  # every name config.py looks up


def commands() -> list[tuple[str, str | None]]:
    """Every (sub)command path, e.g. 'kb check', with its help text."""
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                helps = {a.dest: a.help for a in action._choices_actions}  # noqa: SLF001
                for name, sub in action.choices.items():
                    path = f"{prefix} {name}".strip()
                    found.append((path, helps.get(name)))
                    walk(sub, path)

    walk(build_parser(), "")
    return found


class TestDocs:
    @pytest.mark.parametrize(("command", "help_text"), commands())
    def test_every_command_has_help_and_a_readme_row(self, command, help_text):
        """Each command has help text and appears as `faqbot COMMAND` in the README."""
        assert help_text, f"faqbot {command} has no help text"
        leaf = command.split()[-1]
        # `faqbot tickets list …` / `show ID` / `resolve ID` share one row
        documented = f"faqbot {command}" in README or (
            command.startswith("tickets ") and f"`{leaf} ID`" in README
        )
        assert documented, f"faqbot {command} is not in the README"

    @pytest.mark.parametrize("variable", VARIABLES)
    def test_every_variable_is_documented(self, variable):
        """Each variable config.py reads is in .env.example and in the README."""
        assert f"{variable}=" in ENV_EXAMPLE, f"{variable} missing from .env.example"
        assert f"`{variable}`" in README, f"{variable} missing from the README"
