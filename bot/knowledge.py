"""The knowledge base: entries parsed from YAML, validated with line numbers, and compiled for
matching (:class:`bot.matching.Matcher`, which reads like the knowledge it holds).

Usage::

    kb = load_knowledge("knowledge/faq.yaml")     # raises KnowledgeError listing every problem
    kb.entry("review-time").answer
    kb.knowledge                                  # the KnowledgeBase itself: plain data

The schema is documented for maintainers in ``knowledge/README.md``. The YAML is read and
checked node by node by :mod:`bot.yamlcheck` (safe subset only, no anchors or aliases).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot import kbcache
from bot.errors import KnowledgeError
from bot.gcpause import collector_paused
from bot.yamlcheck import Checker, compose

if TYPE_CHECKING:
    from bot.matching import Matcher

__all__ = [
    "MAX_KNOWLEDGE_BYTES",
    "TICKET_REASONS",
    "Entry",
    "KnowledgeBase",
    "Link",
    "SemanticSettings",
    "Thresholds",
    "load_knowledge",
    "parse_knowledge",
    "parse_knowledge_bytes",
]

MAX_KNOWLEDGE_BYTES = 20 * 1024 * 1024
TICKET_REASONS = ("no_match", "cap_increase", "requested", "not_helpful")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Thresholds:
    """Scores (0-100) that turn a ranking into a decision; see ``matching.decide``."""

    answer: float = 70.0
    clarify: float = 50.0
    margin: float = 8.0
    candidates: int = 3
    familiar: float | None = None  # `answer` for questions with no unfamiliar word (None: same)
    # set by the knowledge's `thresholds:`; without them, the calibrated blend decides
    # (matching._decide_blend) and only `candidates` applies
    tuned: bool = False

    @property
    def answer_familiar(self) -> float:
        """The answer threshold for a question every content word of which the knowledge knows."""
        return self.answer if self.familiar is None else self.familiar


@dataclass(frozen=True)
class SemanticSettings:
    """How the optional sentence-embedding signal joins the lexical confidence (the
    knowledge's ``semantic:``; see ``matching.decide`` and docs/semantic.md): confidence =
    (1 - weight) x lexical + weight x 100 x cosine(question, the top entry's phrasings), and
    these thresholds replace ``thresholds.answer`` / ``familiar`` when the model is loaded."""

    weight: float
    answer: float
    familiar: float


@dataclass(frozen=True)
class Entry:
    """One FAQ question and its answer."""

    id: str
    question: str
    answer: str
    phrasings: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    ticket: str | None = None  # also open a ticket with this reason when answering
    line: int = 0

    @property
    def all_phrasings(self) -> tuple[str, ...]:
        return (self.question, *self.phrasings)


NOT_COVERED_ID = "(not covered)"  # the hidden entry of `Matcher.beyond`: no real id's shape


@dataclass(frozen=True)
class KnowledgeBase:
    """The knowledge, as plain data: entries, thresholds, synonyms, handoff phrases, the
    questions it leaves out. What matching builds from it is :class:`bot.matching.Matcher`."""

    entries: tuple[Entry, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    synonyms: tuple[tuple[str, ...], ...] = ()
    handoff: tuple[str, ...] = ()
    title: str = "FAQ"
    support: str = ""
    path: str = "<memory>"
    semantic: SemanticSettings | None = None  # used only when a semantic model is attached
    # questions near this FAQ that it does not answer (``not_covered:``; see matching.decide)
    not_covered: tuple[str, ...] = ()

    @functools.cached_property
    def _by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}

    def with_not_covered_entry(self) -> KnowledgeBase:
        """These entries and one more, hidden (id :data:`NOT_COVERED_ID`), made of the
        ``not_covered`` questions: for the lexical matcher to score them as an entry
        (``Matcher.beyond``). Numbers are left out of them ("HTTP 429", "error 10002"): a
        number in a question is no sign of a topic the FAQ leaves out ("how long is the
        review, we have 500 users"). Without ``not_covered``, the entries alone."""
        texts = [" ".join(w for w in q.split() if not any(ch.isdigit() for ch in w)) or q
                 for q in self.not_covered]
        hidden = (Entry(NOT_COVERED_ID, texts[0], "", tuple(texts[1:])),) if texts else ()
        return KnowledgeBase(entries=(*self.entries, *hidden), thresholds=self.thresholds,
                             synonyms=self.synonyms, handoff=self.handoff, path=self.path)

    def entry(self, entry_id: str) -> Entry:
        return self._by_id[entry_id]

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def topics(self) -> list[str]:
        """Distinct tags in first-seen order (for ``/faq help``)."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            for tag in entry.tags:
                seen.setdefault(tag, None)
        return list(seen)


# --------------------------------------------------------------------------- parsing


_TOP_REQUIRED = ("entries",)
_TOP_OPTIONAL = (
    "version", "title", "source", "support", "thresholds", "semantic", "synonyms", "handoff",
    "not_covered",
)
_ENTRY_REQUIRED = ("id", "question", "answer")
_ENTRY_OPTIONAL = ("phrasings", "tags", "links", "ticket")
_THRESHOLD_KEYS = ("answer", "familiar", "clarify", "margin", "candidates")


def parse_knowledge(text: str, path: str = "<string>") -> Matcher:
    """Parse and validate knowledge YAML, and compile it for matching; raise
    :class:`KnowledgeError` with every problem."""
    if len(text) > MAX_KNOWLEDGE_BYTES:
        raise KnowledgeError.single(
            path, 0, f"file is too large ({len(text) // 1024 // 1024} MB; the limit is "
            f"{MAX_KNOWLEDGE_BYTES // 1024 // 1024} MB)"
        )
    from bot.matching import Matcher

    with collector_paused():  # composing and indexing allocate many small objects
        root = compose(text, path)
        if root is None:
            raise KnowledgeError.single(path, 1, "the file is empty; expected a mapping with 'entries'")
        return Matcher.compile(_build(root, path))


def _build(root: yaml.Node, path: str) -> KnowledgeBase:
    c = Checker(path)
    top = c.mapping(root, "the file")
    if top is None:
        raise KnowledgeError(c.problems)
    c.keys(top, root, "the file", _TOP_REQUIRED, _TOP_OPTIONAL)

    meta: dict[str, str] = {}
    for key in ("title", "source", "support"):
        if key in top:
            value = c.text(top[key][1], key)
            if value is not None:
                meta[key] = value.strip()
    if "version" in top:
        version = c.scalar(top["version"][1], "version")
        if version not in (1, None):
            c.error(top["version"][1], f"version must be 1, got {version!r}")

    thresholds = _thresholds(c, top["thresholds"][1]) if "thresholds" in top else Thresholds()
    semantic = _semantic(c, top["semantic"][1], thresholds) if "semantic" in top else None
    synonyms = _synonyms(c, top["synonyms"][1]) if "synonyms" in top else []
    handoff = [t.strip() for _, t in c.texts(top["handoff"][1], "handoff")] if "handoff" in top else []
    entries, phrasing_owner = _entries(c, top["entries"][1]) if "entries" in top else ([], {})
    not_covered = _not_covered(c, top["not_covered"][1], phrasing_owner) if "not_covered" in top else []

    if c.problems:
        raise KnowledgeError(sorted(c.problems, key=lambda p: p.line))
    return KnowledgeBase(
        entries=tuple(entries),
        thresholds=thresholds,
        synonyms=tuple(synonyms),
        handoff=tuple(handoff),
        title=meta.get("title", "FAQ"),
        support=meta.get("support", ""),
        path=path,
        semantic=semantic,
        not_covered=tuple(not_covered),
    )


def _synonyms(c: Checker, node: yaml.Node) -> list[tuple[str, ...]]:
    synonyms: list[tuple[str, ...]] = []
    group_owner: dict[str, int] = {}
    for group_node in c.sequence(node, "synonyms") or ():
        words = [w.strip().lower() for _, w in c.texts(group_node, "synonym group")]
        if isinstance(group_node, yaml.SequenceNode) and len(words) < 2:
            c.error(group_node, "a synonym group needs at least two words")
            continue
        for word in words:
            if word in group_owner:
                c.error(group_node, f"synonym '{word}' is already in the group at line {group_owner[word]}")
        for word in words:
            group_owner.setdefault(word, group_node.start_mark.line + 1)
        synonyms.append(tuple(dict.fromkeys(words)))
    return synonyms


def _entries(c: Checker, node: yaml.Node) -> tuple[list[Entry], dict[str, tuple[str, int]]]:
    """The entries, and which entry (id, line) owns each phrasing key."""
    entries: list[Entry] = []
    ids: dict[str, int] = {}
    phrasing_owner: dict[str, tuple[str, int]] = {}
    entry_nodes = c.sequence(node, "entries")
    if entry_nodes is not None and not entry_nodes:
        c.error(node, "entries must list at least one entry")
    for entry_node in entry_nodes or ():
        entry = _entry(c, entry_node)
        if entry is None:
            continue
        keys = [_phrasing_key(p) for p in entry.all_phrasings]
        if entry.id in ids:
            c.error(entry_node, f"duplicate id '{entry.id}' (first used at line {ids[entry.id]})")
            continue
        ids[entry.id] = entry.line
        mine = (entry.id, entry.line)
        for phrasing, key in zip(entry.all_phrasings, keys, strict=True):
            owner = phrasing_owner.setdefault(key, mine)
            if owner is not mine and owner[0] != entry.id:
                c.error(
                    entry_node,
                    f"entry '{entry.id}': phrasing {phrasing!r} is also used by entry "
                    f"'{owner[0]}' (line {owner[1]})",
                )
        entries.append(entry)
    return entries, phrasing_owner


def _not_covered(c: Checker, node: yaml.Node, phrasing_owner: dict[str, tuple[str, int]]) -> list[str]:
    not_covered: list[str] = []
    seen: dict[str, int] = {}
    # the same question with or without its question mark is the same question
    answered = {key.rstrip("?!. "): owner for key, owner in phrasing_owner.items()}
    for item, text in c.texts(node, "not_covered"):
        key = _phrasing_key(text).rstrip("?!. ")
        if key in seen:
            c.error(item, f"not_covered question {text.strip()!r} is already listed at line {seen[key]}")
            continue
        seen[key] = item.start_mark.line + 1
        owner = answered.get(key)
        if owner is not None:
            c.error(item, f"not_covered question {text.strip()!r} is a phrasing of entry "
                          f"'{owner[0]}' (line {owner[1]}): an entry answers it")
            continue
        not_covered.append(" ".join(text.split()))
    return not_covered


def _semantic(c: Checker, node: yaml.Node, thresholds: Thresholds) -> SemanticSettings | None:
    fields = c.mapping(node, "semantic")
    if fields is None:
        return None
    c.keys(fields, node, "semantic", ("weight", "answer"), ("familiar",))
    values: dict[str, float] = {}
    for key, high in (("weight", 1), ("answer", 100), ("familiar", 100)):
        if key in fields:
            value = c.number(fields[key][1], f"semantic.{key}", 0, high)
            if value is not None:
                values[key] = float(value)
    if "weight" not in values or "answer" not in values:
        return None
    values.setdefault("familiar", values["answer"])
    for name in ("answer", "familiar"):
        if thresholds.clarify > values[name]:
            c.error(node, f"thresholds.clarify ({thresholds.clarify:g}) must not be above "
                          f"semantic.{name} ({values[name]:g})")
    return SemanticSettings(**values)


def _thresholds(c: Checker, node: yaml.Node) -> Thresholds:
    fields = c.mapping(node, "thresholds")
    if fields is None:
        return Thresholds()
    c.keys(fields, node, "thresholds", (), _THRESHOLD_KEYS)
    values: dict[str, Any] = {}
    for key, high in (("answer", 100), ("familiar", 100), ("clarify", 100), ("margin", 100)):
        if key in fields:
            value = c.number(fields[key][1], f"thresholds.{key}", 0, high)
            if value is not None:
                values[key] = float(value)
    if "candidates" in fields:
        value = c.number(fields["candidates"][1], "thresholds.candidates", 2, 5)
        if value is not None:
            if value != int(value):
                c.error(fields["candidates"][1], "thresholds.candidates must be a whole number")
            values["candidates"] = int(value)
    result = Thresholds(**values, tuned=True)
    for name, value in (("answer", result.answer), ("familiar", result.familiar)):
        if value is not None and result.clarify > value:
            c.error(
                node,
                f"thresholds.clarify ({result.clarify:g}) must not be above thresholds.{name} "
                f"({value:g})",
            )
    return result


def _phrasing_key(phrasing: str) -> str:
    """What makes two phrasings the same for the duplicate checks: case and spacing aside."""
    return " ".join(phrasing.lower().split())


_URL_RE = re.compile(r"^(https?://|mailto:)\S+$")


def _entry(c: Checker, node: yaml.Node) -> Entry | None:
    fields = c.mapping(node, "entry")
    if fields is None:
        return None
    before = len(c.problems)
    line = node.start_mark.line + 1
    c.keys(fields, node, "entry", _ENTRY_REQUIRED, _ENTRY_OPTIONAL)
    entry_id = c.text(fields["id"][1], "id") if "id" in fields else None
    label = f"entry '{entry_id}'" if entry_id else "entry"
    if entry_id is not None and not ID_RE.match(entry_id):
        c.error(
            fields["id"][1],
            f"id '{entry_id}' must be lower-case letters, digits and dashes (at most 64)",
        )
    question = c.text(fields["question"][1], f"{label}: question") if "question" in fields else None
    answer = c.text(fields["answer"][1], f"{label}: answer") if "answer" in fields else None
    phrasings: list[str] = []
    if "phrasings" in fields:
        seen: set[str] = set()
        for item, value in c.texts(fields["phrasings"][1], f"{label}: phrasings"):
            key = _phrasing_key(value)
            if key in seen:
                c.error(item, f"{label}: phrasing {value!r} is listed twice")
                continue
            seen.add(key)
            phrasings.append(value.strip())
    tags = [t.strip() for _, t in c.texts(fields["tags"][1], f"{label}: tags")] if "tags" in fields else []
    links: list[Link] = []
    if "links" in fields:
        for item in c.sequence(fields["links"][1], f"{label}: links") or ():
            link = c.mapping(item, f"{label}: link")
            if link is None:
                continue
            c.keys(link, item, f"{label}: link", ("title", "url"), ())
            title = c.text(link["title"][1], f"{label}: link title") if "title" in link else None
            url = c.text(link["url"][1], f"{label}: link url") if "url" in link else None
            if url is not None and not _URL_RE.match(url):
                c.error(link["url"][1], f"{label}: link url must start with https:// (got {url!r})")
            elif title and url:
                links.append(Link(title.strip(), url.strip()))
    ticket = None
    if "ticket" in fields:
        ticket = c.text(fields["ticket"][1], f"{label}: ticket")
        if ticket is not None and ticket not in TICKET_REASONS:
            c.error(
                fields["ticket"][1],
                f"{label}: ticket must be one of {', '.join(TICKET_REASONS)}, got {ticket!r}",
            )
    if len(c.problems) > before or not (entry_id and question and answer):
        return None
    return Entry(
        id=entry_id,
        question=question.strip(),
        answer=answer.strip(),
        phrasings=tuple(phrasings),
        tags=tuple(tags),
        links=tuple(links),
        ticket=ticket,
        line=line,
    )


def load_knowledge(path: str | Path) -> Matcher:
    """Read, parse and validate the knowledge file at ``path`` (through the cache, see
    :func:`parse_knowledge_bytes`)."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_KNOWLEDGE_BYTES:
            raise KnowledgeError.single(
                name, 0, f"file is too large ({size // 1024 // 1024} MB; the limit is "
                f"{MAX_KNOWLEDGE_BYTES // 1024 // 1024} MB)"
            )
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KnowledgeError.single(name, 0, f"cannot read the file: {exc.strerror}") from None
    return parse_knowledge_bytes(raw, name)


def parse_knowledge_bytes(data: bytes, path: str = "<bytes>") -> Matcher:
    """:func:`parse_knowledge` of a file's bytes (UTF-8), through the compiled-knowledge cache.

    The same bytes loaded before (by any process of this user, with this code) come from the
    cache (``bot.kbcache``) without parsing; anything else is parsed and, when valid, stored
    there. Problems always come from a real parse, so they are the same either way.
    """
    cache_key = kbcache.key(data) if len(data) <= MAX_KNOWLEDGE_BYTES else None
    if cache_key is not None:
        from bot.matching import Matcher

        cached = kbcache.load(cache_key, Matcher)
        if cached is not None:
            if cached.path != path:  # the same bytes at another path (a copy)
                return replace(cached, knowledge=replace(cached.knowledge, path=path))
            return cached
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KnowledgeError.single(path, line, "the file is not UTF-8 text") from None
    kb = parse_knowledge(text, path)
    if cache_key is not None:
        kbcache.store(cache_key, kb)
    return kb
