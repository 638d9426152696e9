"""Accuracy of the matcher on labelled questions (``faqbot kb eval``); pure, no I/O but parsing.

A case file is a YAML list of ``{q: question, expect: label}`` where the label is an entry id,
``none`` (out of scope: should become a ticket) or ``cap`` (a request to raise the active user
cap: must open a ticket).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import yaml

from bot.errors import KnowledgeError, Problem
from bot.knowledge import Thresholds
from bot.matching import Decision, Matcher, decide

__all__ = ["Case", "EvalReport", "Outcome", "evaluate", "misspell", "parse_cases", "sweep",
           "with_thresholds"]

OUT_OF_SCOPE = "none"
CAP = "cap"


@dataclass(frozen=True)
class Case:
    question: str
    expect: str
    number: int  # 1-based position in the file


@dataclass(frozen=True)
class Outcome:
    case: Case
    decision: Decision

    @property
    def top1(self) -> bool:
        """The entry ranked first is the expected one (whatever the action)."""
        d = self.decision
        first = d.entry.id if d.entry else (d.candidates[0].entry_id if d.candidates else None)
        return first == self.case.expect

    @property
    def kind(self) -> str:
        """right | wrong | clarify_hit | clarify_miss | ticket | cap_ticket | oos_ok."""
        d, expect = self.decision, self.case.expect
        got = d.entry.id if d.entry else None
        if expect == CAP:
            return "cap_ticket" if d.action == "ticket" else (
                "wrong" if d.action == "answer" else "clarify_miss")
        if expect == OUT_OF_SCOPE:
            return "wrong" if d.action == "answer" else "oos_ok"
        if d.action == "answer":
            return "right" if got == expect else "wrong"
        if d.action == "clarify":
            hit = any(c.entry_id == expect for c in d.candidates)
            return "clarify_hit" if hit else "clarify_miss"
        return "right" if got == expect else "ticket"


@dataclass
class EvalReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def _of(self, kinds: Iterable[str]) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.expect in kinds]

    @property
    def in_scope(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.expect not in (OUT_OF_SCOPE, CAP)]

    @property
    def out_of_scope(self) -> list[Outcome]:
        return self._of([OUT_OF_SCOPE])

    @property
    def cap(self) -> list[Outcome]:
        return self._of([CAP])

    @staticmethod
    def _rate(part: Sequence[Outcome], ok) -> float | None:
        return 100.0 * sum(1 for o in part if ok(o)) / len(part) if part else None

    def figures(self) -> dict[str, float | int | None]:
        ins, oos, cap = self.in_scope, self.out_of_scope, self.cap
        clar = [o for o in ins if o.decision.action == "clarify"]
        return {
            "questions": len(self.outcomes),
            "in_scope": len(ins),
            "out_of_scope": len(oos),
            "cap": len(cap),
            "in_scope_top1": self._rate(ins, lambda o: o.top1),
            "in_scope_right": self._rate(ins, lambda o: o.kind == "right"),
            "in_scope_clarify": self._rate(ins, lambda o: o.decision.action == "clarify"),
            "in_scope_ticket": self._rate(ins, lambda o: o.decision.action == "ticket"),
            "oos_not_answered": self._rate(oos, lambda o: o.decision.action != "answer"),
            "oos_ticket": self._rate(oos, lambda o: o.decision.action == "ticket"),
            "wrong": self._rate(self.outcomes, lambda o: o.kind == "wrong"),
            "cap_ticket": self._rate(cap, lambda o: o.decision.action == "ticket"),
            "clarify_hit": self._rate(clar, lambda o: o.kind == "clarify_hit"),
        }

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind not in ("right", "oos_ok", "cap_ticket")]


def parse_cases(text: str, path: str = "<cases>") -> list[Case]:
    """Cases from YAML; raises :class:`KnowledgeError` with line numbers on malformed files."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeError.single(
            path, mark.line + 1 if mark else 0, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(root, yaml.SequenceNode):
        raise KnowledgeError.single(path, 1, "cases must be a list of {q: ..., expect: ...}")
    cases, problems = [], []
    for n, node in enumerate(root.value, 1):
        line = node.start_mark.line + 1
        fields = (
            {k.value: v for k, v in node.value if isinstance(v, yaml.ScalarNode)}
            if isinstance(node, yaml.MappingNode)
            else {}
        )
        if "q" not in fields or "expect" not in fields:
            problems.append(Problem(path, line, "each case needs 'q' and 'expect'"))
            continue
        cases.append(Case(str(fields["q"].value), str(fields["expect"].value), n))
    if problems:
        raise KnowledgeError(problems)
    return cases


_LONG_WORD = re.compile(r"\b[A-Za-z]{5,}\b")
_TYPO_LETTERS = "aeiourtnsl"  # the letters typed most, so a changed or extra letter is plausible


def misspell(cases: Iterable[Case], copies: int = 1, seed: int = 0) -> list[Case]:
    """``copies`` of each case with one typo in one word of 5+ letters: a letter dropped,
    swapped with the next, changed or added (never the first). The same typos every run for
    the same ``seed``; a case with no such word is kept as it is. ``kb eval --typos N``."""
    out = []
    for case in cases:
        spans = [m.span() for m in _LONG_WORD.finditer(case.question)]
        for k in range(copies):
            if not spans:
                out.append(case)
                continue
            rng = random.Random(f"{seed}:{case.number}:{k}")
            start, end = rng.choice(spans)
            word = case.question[start:end]
            i = rng.randrange(1, len(word))
            edit = rng.choice(("drop", "swap", "change", "add"))
            if edit == "drop":
                word = word[:i] + word[i + 1:]
            elif edit == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
                word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
            elif edit == "add":
                word = word[:i] + rng.choice(_TYPO_LETTERS) + word[i:]
            else:
                word = word[:i] + rng.choice(_TYPO_LETTERS.replace(word[i].lower(), "")) + word[i + 1:]
            out.append(Case(case.question[:start] + word + case.question[end:], case.expect,
                            case.number))
    return out


def evaluate(cases: Iterable[Case], kb: Matcher) -> EvalReport:
    return EvalReport([Outcome(case, decide(case.question, kb)) for case in cases])


def sweep(
    cases: Sequence[Case], kb: Matcher, variants: Iterable[Thresholds]
) -> list[tuple[Thresholds, dict]]:
    """Figures for each of the threshold ``variants`` (the knowledge otherwise unchanged)."""
    return [(th, evaluate(cases, with_thresholds(kb, th)).figures()) for th in variants]


def answer_steps(current: Thresholds, deltas: Iterable[float]) -> list[Thresholds]:
    """``answer`` moved by each delta, with ``clarify`` and ``familiar`` keeping their distance
    from it: the whole decision made stricter or looser. Each variant is a setting the
    maintainer could write (``tuned``), also for knowledge that has none yet."""
    out = []
    for d in deltas:
        answer = current.answer + d
        out.append(replace(
            current, answer=answer, clarify=max(0.0, current.clarify + d),
            familiar=None if current.familiar is None else max(0.0, current.familiar + d),
            tuned=True,
        ))
    return out


def familiar_steps(current: Thresholds, deltas: Iterable[float]) -> list[Thresholds]:
    """``familiar`` (questions with no unfamiliar word) moved by each delta, the rest kept."""
    return [replace(current, familiar=max(0.0, current.answer_familiar + d), tuned=True)
            for d in deltas]


def with_thresholds(kb: Matcher, thresholds: Thresholds) -> Matcher:
    """``kb`` deciding at ``thresholds`` (its index shared). With the semantic model attached,
    the semantic thresholds move by the same steps as ``answer`` and ``familiar``."""
    semantic = kb.semantic
    if semantic is not None:
        old = kb.thresholds
        semantic = replace(
            semantic,
            answer=max(0.0, semantic.answer + thresholds.answer - old.answer),
            familiar=max(0.0, semantic.familiar + thresholds.answer_familiar
                         - old.answer_familiar),
        )
    return replace(kb, knowledge=replace(kb.knowledge, thresholds=thresholds, semantic=semantic))
