"""faqbot's exceptions.

    FaqbotError
    ├── KnowledgeError   a knowledge file is invalid (carries every problem, each with path and line)
    ├── ConfigError      a required setting is missing or malformed
    └── StoreError       the ticket store cannot be reached or refused a write
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "FaqbotError", "KnowledgeError", "Problem", "StoreError"]


class FaqbotError(Exception):
    """Base class of every error faqbot raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a knowledge file, at a 1-based line (0 when unknown)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class KnowledgeError(FaqbotError):
    """A knowledge file could not be loaded; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, path: str, line: int, message: str) -> KnowledgeError:
        return cls([Problem(path, line, message)])


class ConfigError(FaqbotError):
    """A setting is missing or malformed; the message names the variable and the fix."""


class StoreError(FaqbotError):
    """The ticket store is unavailable or failed; nothing was recorded."""
