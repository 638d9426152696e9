"""What ``decide`` returns: a ``Decision`` with its ``Candidate`` entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bot.knowledge import Entry
    from bot.matching.explain import Explanation

Action = Literal["answer", "clarify", "ticket"]


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    question: str
    score: float


@dataclass(frozen=True)
class Decision:
    """What the bot does with a question. ``entry`` is set for answers (and cap tickets)."""

    question: str
    action: Action
    entry: Entry | None
    score: float
    candidates: tuple[Candidate, ...]
    reason: str | None = None
    explain: Explanation | None = field(default=None, compare=False, repr=False)  # explain=True

    def to_json(self) -> dict[str, Any]:
        """The contract's ``faqbot ask --json`` object."""
        return {
            "question": self.question,
            "action": self.action,
            "entry": self.entry.id if self.entry else None,
            "answer": self.entry.answer if self.entry else None,
            "score": round(self.score, 1),
            "candidates": [
                {"entry": c.entry_id, "question": c.question, "score": round(c.score, 1)}
                for c in self.candidates
            ],
            "reason": self.reason,
        }

