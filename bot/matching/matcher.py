"""Knowledge compiled for matching: what ``decide`` reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.matching.index import Index

if TYPE_CHECKING:
    from bot.knowledge import Entry, KnowledgeBase, SemanticSettings, Thresholds

__all__ = ["Matcher"]


@dataclass(frozen=True, eq=False)
class Matcher:
    """A knowledge file compiled for matching, built once per load (:meth:`compile`).

    It holds the knowledge (plain data, ``knowledge``), its :class:`Index`, the knowledge's
    ``not_covered`` questions as one more, hidden entry for the lexical matcher to compare a
    question with (``beyond``), and, with the semantic model, the entries' vectors
    (``vectors``, set by :func:`bot.semantic.attach`). A variant (the vectors attached, other
    thresholds, no hidden entry) is a :func:`dataclasses.replace` of it that shares the index.

    It reads like the knowledge it was compiled from (``entries``, ``thresholds``,
    ``get(entry_id)``, ``len``, iteration…), so what serves answers holds one object.
    """

    knowledge: KnowledgeBase
    index: Index
    beyond: Matcher | None = None
    vectors: Any = None  # bot.semantic.EntryVectors; None: lexical only

    @classmethod
    def compile(cls, kb: KnowledgeBase) -> Matcher:
        """The index of ``kb``, and with ``not_covered`` that of its entries with the hidden
        one (:meth:`KnowledgeBase.with_not_covered_entry`)."""
        beyond = cls.compile(kb.with_not_covered_entry()) if kb.not_covered else None
        return cls(kb, Index.build(kb), beyond)

    # ---------------------------------------------------------------- the knowledge, read

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self.knowledge.entries

    @property
    def thresholds(self) -> Thresholds:
        return self.knowledge.thresholds

    @property
    def semantic(self) -> SemanticSettings | None:
        return self.knowledge.semantic

    @property
    def not_covered(self) -> tuple[str, ...]:
        return self.knowledge.not_covered

    @property
    def synonyms(self) -> tuple[tuple[str, ...], ...]:
        return self.knowledge.synonyms

    @property
    def handoff(self) -> tuple[str, ...]:
        return self.knowledge.handoff

    @property
    def title(self) -> str:
        return self.knowledge.title

    @property
    def support(self) -> str:
        return self.knowledge.support

    @property
    def path(self) -> str:
        return self.knowledge.path

    @property
    def topics(self) -> list[str]:
        return self.knowledge.topics

    def entry(self, entry_id: str) -> Entry:
        return self.knowledge.entry(entry_id)

    def get(self, entry_id: str) -> Entry | None:
        return self.knowledge.get(entry_id)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.knowledge.entries)

    def __len__(self) -> int:
        return len(self.knowledge.entries)
