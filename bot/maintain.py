"""Help for the people who edit the knowledge: lint it, and draft entries (pure, no I/O).

Usage::

    report = lint(kb, text=Path("knowledge/faq.yaml").read_text())   # faqbot kb lint
    for finding in report.findings:
        print(finding.severity, finding.message)
    print(draft_from_ticket(kb, "how do I delete my developer account?", staff_reply="..."))

What ``lint`` looks for:

* **Phrasings the matcher confuses.** Each phrasing is asked as if it were a user's question,
  against the knowledge *without* it (the phrasings are split into ``folds`` groups; each group
  is held out in turn, so ten index builds cover every phrasing). A phrasing whose own entry
  then scores below another entry is ``confused-with`` that entry (a warning: users asking
  like that get the other answer, or a clarifying question); one whose own entry leads by less
  than ``thresholds.margin`` is ``close-to`` it (the bot would ask to clarify rather than
  answer). Both only count when the other entry scores at least ``thresholds.clarify``.
* **Phrasings the ``not_covered`` questions hold back** (``held-back``, a warning): asked
  against the knowledge without them, a phrasing its own entry would answer, but the hidden
  entry of ``not_covered`` questions scores at least as high as every real entry, so users
  asking like that get a ticket (the lexical matcher's rule).
* **The same phrasing in two entries** once normalised (``duplicate-phrasing``, a warning).
* **Entries with fewer than 5 phrasings** (``few-phrasings``) in knowledge with ``thresholds:``:
  the tuned matcher relies on them (an entry with fewer than 3 is matched by its question and
  answer meanwhile). Knowledge without ``thresholds:`` (what ``kb import`` writes) is decided
  from each entry's question and answer, so its entries are not asked for phrasings.
* **Answers without a link** (no ``<http`` in the answer and no ``links:``; ``no-link``), in a
  file where most answers have one: an FAQ whose answers say everything themselves (most of
  what ``kb import`` brings) is not asked for links.
* **Long answers**: over 1,500 characters is hard to read in Slack (``long-answer``); over
  3,000 does not fit one Slack section block and is split (``answer-too-long``, a warning).

Each finding may carry a *suggestion*: YAML indented as in ``knowledge/faq.yaml``, to paste
after review. Nothing here changes the file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml

from bot.importer import slugify
from bot.knowledge import Entry
from bot.matching import THIN_PHRASINGS, Matcher, decide, decide_tuned, rank
from bot.normalize import normalize, strip_slack_markup

__all__ = [
    "Finding",
    "LintReport",
    "PhrasingScore",
    "draft_from_ticket",
    "entry_yaml",
    "lint",
    "question_text",
    "unique_id",
]

Severity = Literal["warning", "suggestion"]

MIN_PHRASINGS = 5
LONG_ANSWER = 1500  # characters: a screenful in a Slack thread
MAX_ANSWER = 3000  # characters: Slack's limit on one section block's text
FOLDS = 10
MAX_QUESTION_CHARS = 250


@dataclass(frozen=True)
class PhrasingScore:
    """One phrasing asked as a question against the knowledge without it."""

    text: str
    line: int
    own: float  # its own entry's score
    other: float  # the other entry's score
    outcome: str  # what the bot would do: "answer <id>", "clarify", "ticket"

    def to_json(self) -> dict[str, Any]:
        return {
            "phrasing": self.text,
            "line": self.line,
            "own_score": round(self.own, 1),
            "other_score": round(self.other, 1),
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class Finding:
    """Something a maintainer may want to change, at an entry (and the line it starts on)."""

    code: str
    severity: Severity
    entry: str
    line: int
    message: str
    other: str | None = None
    phrasings: tuple[PhrasingScore, ...] = ()
    suggestion: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "entry": self.entry,
            "line": self.line,
            "message": self.message,
            "other": self.other,
            "phrasings": [p.to_json() for p in self.phrasings],
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True)
class LintReport:
    path: str
    entries: int
    phrasings: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def suggestions(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "suggestion"]

    def of(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]


# --------------------------------------------------------------------------- YAML snippets


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal ``|`` blocks; lists indented like knowledge/faq.yaml."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def entry_yaml(entry: dict[str, Any], *, comment: str | None = None, indent: int = 2) -> str:
    """One entry (or part of one) as a YAML list item, indented as under ``entries:``.

    The result parses on its own (``yaml.safe_load`` gives a one-item list) and its lines can
    be pasted into ``knowledge/faq.yaml`` as they are.
    """
    body = yaml.dump(
        [entry], Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000_000,
        default_flow_style=False,
    )
    pad = " " * indent
    lines = [pad + line if line else line for line in body.splitlines()]
    head = [f"{pad}# {line}" if line else f"{pad}#" for line in (comment or "").splitlines()]
    return "\n".join(head + lines) + "\n"


def question_text(text: str) -> str:
    """A user's message as an FAQ question: Slack markup gone, one line, a capital, a ``?``.

    >>> question_text("<@U0BOT> how do I   delete my dev account")
    'How do I delete my dev account?'
    """
    text = " ".join(strip_slack_markup(text).split())
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS].rsplit(" ", 1)[0] + "…"
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in "?!.…":
        text += "?"
    return text


def unique_id(text: str, taken: Iterable[str]) -> str:
    """An entry id (lower-case words joined by dashes) from ``text``, not among ``taken``."""
    used = set(taken)
    base = slugify(" ".join(w for w in normalize(text).split() if w not in _ID_STOP)) or "question"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{slugify(base, 40 - len(str(n)) - 1)}-{n}"
    return candidate


# Words that make an id longer but not clearer ("how-do-i-delete-my-account" → "delete-account").
_ID_STOP = frozenset(
    "a an the i my me we our you your it its is are was were be been am do does did can could "
    "how what when where which who to of for on in with please pls hi hello hey there any"
    .split()
)


# --------------------------------------------------------------------------- drafting


def draft_from_ticket(
    kb: Matcher,
    question: str,
    staff_reply: str | None = None,
    answered_with: str | None = None,
) -> str:
    """YAML for the *Add to FAQ* button: what a resolved ticket teaches the knowledge.

    Args:
        kb: the knowledge in service.
        question: the user's question (Slack text; markup is removed).
        staff_reply: the answer support gave (Slack mrkdwn), for a new entry's ``answer``.
        answered_with: the id of the entry that answers the question, when support pointed to
            one: the question becomes one of its phrasings.

    Returns:
        A YAML snippet with a comment saying where it goes: either ``- id: X`` with a
        ``phrasings:`` list to add to entry X, or a whole new entry (``answer: TODO`` when there
        is no staff reply).
    """
    asked = question_text(question)
    if not asked:
        raise ValueError("the question is empty")
    entry = kb.get(answered_with) if answered_with else None
    if entry is not None:
        phrasing = " ".join(strip_slack_markup(question).split())[:MAX_QUESTION_CHARS]
        known = {normalize(p) for p in entry.all_phrasings}
        if normalize(phrasing) in known:
            comment = (f"'{phrasing}' is already a phrasing of {entry.id} (line {entry.line}); "
                       "nothing to add.")
        else:
            comment = f"Add to the phrasings of {entry.id} (line {entry.line}):"
        return entry_yaml({"id": entry.id, "phrasings": [phrasing]}, comment=comment)
    reply = (staff_reply or "").strip()
    draft: dict[str, Any] = {
        "id": unique_id(asked, (e.id for e in kb)),
        "question": asked,
        "phrasings": [],
        "answer": reply or "TODO",
    }
    notes = []
    if answered_with:
        notes.append(f"There is no entry '{answered_with}'; drafted a new entry instead.")
    notes.append("New entry: check the answer, add 5-10 phrasings, then `faqbot kb lint`.")
    return entry_yaml(draft, comment="\n".join(notes))


# --------------------------------------------------------------------------- lint


def lint(
    kb: Matcher,
    *,
    text: str | None = None,
    min_phrasings: int = MIN_PHRASINGS,
    long_answer: int = LONG_ANSWER,
    max_answer: int = MAX_ANSWER,
    margin: float | None = None,
    folds: int = FOLDS,
) -> LintReport:
    """Everything :mod:`bot.maintain` checks (see the module docstring), worst first.

    Args:
        kb: the knowledge to check.
        text: the YAML it was loaded from, to point findings at a phrasing's own line (without
            it they point at the entry's first line).
        margin: how close (in score points) another entry may come before a phrasing counts as
            ``close-to`` it; default ``thresholds.margin``.
        folds: how many groups the phrasings are held out in.
    """
    lines = _phrasing_lines(text) if text else {}
    margin = kb.thresholds.margin if margin is None else margin
    pairs: dict[tuple[str, str, str], list[PhrasingScore]] = defaultdict(list)
    held_back: dict[str, list[tuple[PhrasingScore, str]]] = defaultdict(list)
    for fold_kb, held in _held_out(kb, folds):  # each fold's index built once, for both checks
        _confusions(fold_kb, held, lines, margin, pairs)
        if kb.not_covered:
            _held_back(fold_kb, held, lines, held_back)
    findings: list[Finding] = []
    findings += _confusion_findings(kb, pairs, margin)
    findings += _held_back_findings(held_back)
    findings += _duplicates(kb, lines)
    wanted = min_phrasings if kb.thresholds.tuned else 0  # the blend reads answers instead
    linked = sum(1 for entry in kb if _has_link(entry))
    links = (linked, len(kb)) if 2 * linked > len(kb) else None  # the file's own habit
    for entry in kb:
        findings += _entry_checks(entry, wanted, long_answer, max_answer, links)
    order = {"warning": 0, "suggestion": 1}
    findings.sort(key=lambda f: (order[f.severity], _CODES.index(f.code), f.line))
    return LintReport(
        path=kb.path,
        entries=len(kb),
        phrasings=sum(len(e.all_phrasings) for e in kb),
        findings=tuple(findings),
    )


_CODES = (
    "confused-with", "held-back", "duplicate-phrasing", "answer-too-long", "close-to", "few-phrasings",
    "no-link", "long-answer",
)


def _phrasing_lines(text: str) -> dict[tuple[str, str], int]:
    """(entry id, phrasing) -> line, read from the YAML (the question counts as a phrasing)."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    out: dict[tuple[str, str], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return out
    for key, value in root.value:
        if getattr(key, "value", None) != "entries" or not isinstance(value, yaml.SequenceNode):
            continue
        for node in value.value:
            if not isinstance(node, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            id_node = fields.get("id")
            if not isinstance(id_node, yaml.ScalarNode):
                continue
            items = []
            if isinstance(fields.get("question"), yaml.ScalarNode):
                items.append(fields["question"])
            if isinstance(fields.get("phrasings"), yaml.SequenceNode):
                items += [n for n in fields["phrasings"].value if isinstance(n, yaml.ScalarNode)]
            for item in items:
                out.setdefault((id_node.value, str(item.value).strip()), item.start_mark.line + 1)
    return out


def _held_out(kb: Matcher, folds: int) -> Iterable[tuple[Matcher, list[tuple[Entry, str]]]]:
    """For each fold: the knowledge without that fold's phrasings, and those phrasings.

    Phrasing ``j`` of every entry goes to fold ``j % folds``, so each fold takes about one
    phrasing in ``folds`` from each entry; an entry's only phrasing is never held out.
    """
    longest = max((len(e.all_phrasings) for e in kb), default=0)
    for fold in range(min(folds, longest)):
        entries, held = [], []
        for entry in kb:
            phrasings = entry.all_phrasings
            keep = [p for j, p in enumerate(phrasings) if j % folds != fold]
            out = [p for j, p in enumerate(phrasings) if j % folds == fold]
            if not keep:  # nothing left to match it with: keep the entry as it is
                entries.append(entry)
                continue
            entries.append(replace(entry, question=keep[0], phrasings=tuple(keep[1:])))
            held += [(entry, p) for p in out]
        if held:
            yield (
                Matcher.compile(replace(kb.knowledge, entries=tuple(entries), semantic=None)),
                held,
            )


def _decide_held_out(phrasing: str, fold_kb: Matcher, *, explain: bool = False):
    """The decision on a held-out phrasing: by the file's own thresholds when it has them (a
    fold holds phrasings out, which would make entries look thin to ``decide``)."""
    if fold_kb.thresholds.tuned:
        return decide_tuned(phrasing, fold_kb, explain=explain)
    return decide(phrasing, fold_kb, explain=explain)


def _confusions(
    fold_kb: Matcher,
    held: list[tuple[Entry, str]],
    lines: dict[tuple[str, str], int],
    margin: float,
    pairs: dict[tuple[str, str, str], list[PhrasingScore]],
) -> None:
    """Add to ``pairs`` the held-out phrasings another entry scores near or above their own."""
    floor = fold_kb.thresholds.clarify
    ids = fold_kb.index.entry_ids
    for entry, phrasing in held:
        ranked, _, _ = rank(phrasing, fold_kb)
        scores = {ids[s.entry]: min(s.score, 100.0) for s in ranked}
        own = scores.get(entry.id, 0.0)
        others = [(s, i) for i, s in scores.items() if i != entry.id]
        if not others:
            continue
        other_score, other = max(others)
        if other_score < floor or other_score < own - margin:
            continue
        code = "confused-with" if other_score > own else "close-to"
        decision = _decide_held_out(phrasing, fold_kb)
        outcome = decision.action
        if decision.entry is not None:
            outcome += f" {decision.entry.id}"
        line = lines.get((entry.id, phrasing), entry.line)
        pairs[(code, entry.id, other)].append(
            PhrasingScore(phrasing, line, own, other_score, outcome)
        )


def _confusion_findings(
    kb: Matcher, pairs: dict[tuple[str, str, str], list[PhrasingScore]], margin: float
) -> list[Finding]:
    findings = []
    for (code, entry_id, other), scored in pairs.items():
        entry = kb.entry(entry_id)
        scored.sort(key=lambda p: p.own - p.other)
        n = len(scored)
        many = f"{n} phrasing{'s' if n != 1 else ''} of {entry_id}"
        verb = "matches" if n == 1 else "match"
        worst = scored[0]
        example = (f"e.g. {worst.text!r} (own {worst.own:.0f}, {other} {worst.other:.0f}; "
                   f"asked like that, the bot would {worst.outcome})")
        severity: Severity = "suggestion"
        if code == "confused-with":
            message = f"{many} {verb} {other} better than {entry_id} itself, {example}"
            comment = (
                f"{many} {'reads' if n == 1 else 'read'} more like {other}. If "
                f"{'it is' if n == 1 else 'they are'} really about {other}, move "
                f"{'it' if n == 1 else 'them'} there;\n"
                f"otherwise give {entry_id} more phrasings in its own words, or a synonym group:"
            )
            suggestion = entry_yaml(
                {"id": other, "phrasings": [p.text for p in scored]}, comment=comment
            )
            # the bot would confidently give the other answer: that is worth a warning
            if any(p.outcome == f"answer {other}" for p in scored):
                severity = "warning"
        else:
            message = f"{many} {'is' if n == 1 else 'are'} nearly as close to {other}, {example}"
            suggestion = entry_yaml(
                {"id": entry_id, "phrasings": [p.text for p in scored]},
                comment=(
                    f"{'This phrasing' if n == 1 else 'These phrasings'} of {entry_id} "
                    f"{'is' if n == 1 else 'are'} within {margin:g} points of {other}: reword\n"
                    f"with words only {entry_id} is about, or add phrasings that tell it apart:"
                ),
            )
        findings.append(
            Finding(code, severity, entry_id, worst.line or entry.line, message, other,
                    tuple(scored), suggestion)
        )
    return findings


def _held_back(
    fold_kb: Matcher,
    held: list[tuple[Entry, str]],
    lines: dict[tuple[str, str], int],
    by_entry: dict[str, list[tuple[PhrasingScore, str]]],
) -> None:
    """Add to ``by_entry`` the held-out phrasings that the ``not_covered`` questions explain at
    least as well as any entry (``held-back``), though their entry would answer them: users
    who ask like that get a ticket instead of the entry's answer (the lexical matcher's rule)."""
    without = replace(fold_kb, beyond=None)  # the same index, without the not_covered entry
    for entry, phrasing in held:
        decision = _decide_held_out(phrasing, fold_kb, explain=True)
        beyond = decision.explain.not_covered if decision.explain else None
        if beyond is None or beyond.score is None or decision.action == "answer":
            continue
        plain = _decide_held_out(phrasing, without)
        if plain.action != "answer" or plain.entry is None or plain.entry.id != entry.id:
            continue  # not answered with its entry without the list either
        line = lines.get((entry.id, phrasing), entry.line)
        by_entry[entry.id].append((
            PhrasingScore(phrasing, line, beyond.entry_score or 0.0, beyond.score, "ticket"),
            beyond.question,
        ))


def _held_back_findings(by_entry: dict[str, list[tuple[PhrasingScore, str]]]) -> list[Finding]:
    findings = []
    for entry_id, scored in by_entry.items():
        scored.sort(key=lambda p: p[0].own - p[0].other)
        n = len(scored)
        worst, question = scored[0]
        many = f"{n} phrasing{'s' if n != 1 else ''} of {entry_id}"
        message = (f"{many} {'is' if n == 1 else 'are'} held back by the not_covered questions, "
                   f"e.g. {worst.text!r} (not_covered {worst.other:.0f} via {question!r}, "
                   f"{entry_id} {worst.own:.0f}; asked like that, the bot opens a ticket)")
        comment = (f"If {entry_id} answers {'it' if n == 1 else 'them'}, reword or remove the "
                   f"not_covered question that is too close,\nor give {entry_id} more "
                   f"phrasings like {'this one' if n == 1 else 'these'}:")
        suggestion = entry_yaml({"id": entry_id, "phrasings": [p.text for p, _ in scored]},
                                comment=comment)
        findings.append(Finding("held-back", "warning", entry_id, worst.line, message, None,
                                tuple(p for p, _ in scored), suggestion))
    return findings


def _duplicates(kb: Matcher, lines: dict[tuple[str, str], int]) -> list[Finding]:
    owner: dict[str, tuple[str, str]] = {}
    findings = []
    for entry in kb:
        for phrasing in entry.all_phrasings:
            key = normalize(phrasing)
            if not key:
                continue
            first = owner.setdefault(key, (entry.id, phrasing))
            if first[0] != entry.id:
                findings.append(
                    Finding(
                        "duplicate-phrasing", "warning", entry.id,
                        lines.get((entry.id, phrasing), entry.line),
                        f"{phrasing!r} of {entry.id} is the same question as {first[1]!r} of "
                        f"{first[0]} to the matcher; keep it in one entry",
                        other=first[0],
                    )
                )
    return findings


def _has_link(entry: Entry) -> bool:
    return bool(entry.links) or bool(re.search(r"<(?:https?|mailto):", entry.answer))


def _entry_checks(
    entry: Entry, min_phrasings: int, long_answer: int, max_answer: int,
    links: tuple[int, int] | None,
) -> list[Finding]:
    """``few-phrasings``, ``no-link`` (``links``: how many of the file's answers link to a
    page, of how many, when most do; else None and no entry is asked for one) and the
    answer's length."""
    findings = []
    n = len(entry.phrasings)
    if n < min_phrasings:
        findings.append(
            Finding(
                "few-phrasings", "suggestion", entry.id, entry.line,
                f"{entry.id} has {n} phrasing{'s' if n != 1 else ''}; the tuned matcher needs "
                f"{min_phrasings} or more ways people ask this"
                + (f" (until it has {THIN_PHRASINGS}, it is matched by its question and answer)"
                   if n < THIN_PHRASINGS else ""),
                suggestion=entry_yaml(
                    {"id": entry.id, "phrasings": [f"TODO another way to ask: {entry.question}"]},
                    comment=f"Add to the phrasings of {entry.id} (line {entry.line}); "
                    "`faqbot kb gaps` lists real questions that fit:",
                ),
            )
        )
    if links is not None and not _has_link(entry):
        findings.append(
            Finding(
                "no-link", "suggestion", entry.id, entry.line,
                f"{entry.id}'s answer has no link (no <https://…> in it and no links:), as "
                f"{links[0]} of the {links[1]} answers here have",
                suggestion=entry_yaml(
                    {"id": entry.id, "links": [{"title": "TODO", "url": "https://TODO"}]},
                    comment=f"Add to {entry.id} (line {entry.line}) if a page says more:",
                ),
            )
        )
    size = len(entry.answer)
    if size > max_answer:
        findings.append(
            Finding(
                "answer-too-long", "warning", entry.id, entry.line,
                f"{entry.id}'s answer is {size:,} characters: over Slack's {max_answer:,} per "
                "section block, it is split (a line that long is cut mid-word); shorten it and "
                "link to the details",
            )
        )
    elif size > long_answer:
        findings.append(
            Finding(
                "long-answer", "suggestion", entry.id, entry.line,
                f"{entry.id}'s answer is {size:,} characters; over {long_answer:,} is hard to "
                "read in a Slack thread: keep the gist and link to the rest",
            )
        )
    return findings
