"""The knowledge base: entries parsed from YAML, validated with line numbers, ready to match.

Usage::

    kb = load_knowledge("knowledge/faq.yaml")     # raises KnowledgeError listing every problem
    kb.entry("review-time").answer

The schema is documented for maintainers in ``knowledge/README.md``. Only YAML's safe subset is
accepted (no tags beyond the core schema); anchors and aliases are refused, which also rules out
"billion laughs" files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot import kbcache
from bot.errors import KnowledgeError, Problem
from bot.gcpause import collector_paused

if TYPE_CHECKING:
    from bot.matching import Index

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

try:  # libyaml's composer is several times faster; same safe semantics
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


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


NOT_COVERED_ID = "(not covered)"  # the hidden entry of `KnowledgeBase.beyond`: no real id's shape


@dataclass(frozen=True)
class KnowledgeBase:
    """Immutable knowledge: entries, thresholds, synonyms, and the matching index built once."""

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
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)
    index: Index = field(init=False, repr=False, compare=False)
    # the optional semantic model's entry vectors (bot.semantic.attach); None: lexical only
    vectors: Any = field(init=False, default=None, repr=False, compare=False)
    # with `not_covered`: these entries and one more made of the not_covered questions, for
    # the lexical matcher to compare a question with them (matching.decide); else None
    beyond: KnowledgeBase | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        from bot.matching import Index

        object.__setattr__(self, "_by_id", {e.id: e for e in self.entries})
        object.__setattr__(self, "index", Index.build(self))
        if self.not_covered:
            # without their numbers ("HTTP 429", "error 10002"): a number in a question is no
            # sign of a topic the FAQ leaves out ("how long is the review, we have 500 users")
            texts = [" ".join(w for w in q.split() if not any(ch.isdigit() for ch in w)) or q
                     for q in self.not_covered]
            hidden = Entry(NOT_COVERED_ID, texts[0], "", tuple(texts[1:]))
            object.__setattr__(self, "beyond", KnowledgeBase(
                entries=(*self.entries, hidden), thresholds=self.thresholds,
                synonyms=self.synonyms, handoff=self.handoff, path=self.path))

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


class _Checker:
    """Walks a composed YAML node tree, collecting every problem instead of stopping at one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(Problem(self.path, line, message))

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping (key: value), not {_kind(node)}")
            return None
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, f"{what}: keys must be plain words")
                continue
            key = key_node.value
            if key in result:
                self.error(key_node, f"{what}: duplicate key '{key}'")
                continue
            result[key] = (key_node, value_node)
        return result

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list, not {_kind(node)}")
            return None
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be a single value, not {_kind(node)}")
            return None
        if node.tag == _STR_TAG:  # most scalars: the text is the value, no constructor needed
            return node.value
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.error(node, f"{what}: {_yaml_reason(exc)}")
            return None

    def text(self, node: yaml.Node, what: str, *, required: bool = True) -> str | None:
        value = self.scalar(node, what)
        if value is None and not isinstance(node, yaml.ScalarNode):
            return None
        if not isinstance(value, str):
            if value is None and not required:
                return None
            self.error(node, f"{what} must be text, not {_type_name(value)}")
            return None
        if required and not value.strip():
            self.error(node, f"{what} must not be empty")
            return None
        return value

    def texts(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, str]]:
        items = self.sequence(node, what)
        out = []
        for item in items or ():
            value = self.text(item, f"{what} item")
            if value is not None:
                out.append((item, value))
        return out

    def number(self, node: yaml.Node, what: str, low: float, high: float) -> float | None:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(node, yaml.ScalarNode):
                self.error(node, f"{what} must be a number, not {_type_name(value)}")
            return None
        if not low <= value <= high:
            self.error(node, f"{what} must be between {low:g} and {high:g}, got {value:g}")
            return None
        return value

    def keys(
        self,
        fields: dict[str, tuple[yaml.Node, yaml.Node]],
        node: yaml.Node,
        what: str,
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> None:
        allowed = set(required) | set(optional)
        for key, (key_node, _) in fields.items():
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(key_node, f"{what}: unknown key '{key}' (expected one of: {hint})")
        for key in required:
            if key not in fields:
                self.error(node, f"{what}: missing required key '{key}'")


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}" if len(str(node.value)) < 40 else "a single value"


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {bool: "true/false", int: "a number", float: "a number", str: "text"}.get(
        type(value), type(value).__name__
    )


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return str(problem).strip()


def _yaml_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else 0


_TOP_REQUIRED = ("entries",)
_TOP_OPTIONAL = (
    "version", "title", "source", "support", "thresholds", "semantic", "synonyms", "handoff",
    "not_covered",
)
_ENTRY_REQUIRED = ("id", "question", "answer")
_ENTRY_OPTIONAL = ("phrasings", "tags", "links", "ticket")
_THRESHOLD_KEYS = ("answer", "familiar", "clarify", "margin", "candidates")


def parse_knowledge(text: str, path: str = "<string>") -> KnowledgeBase:
    """Parse and validate knowledge YAML; raise :class:`KnowledgeError` with every problem."""
    if len(text) > MAX_KNOWLEDGE_BYTES:
        raise KnowledgeError.single(
            path, 0, f"file is too large ({len(text) // 1024 // 1024} MB; the limit is "
            f"{MAX_KNOWLEDGE_BYTES // 1024 // 1024} MB)"
        )
    with collector_paused():  # composing allocates many small objects
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise KnowledgeError.single(
                path, _yaml_line(exc), f"not valid YAML: {_yaml_reason(exc)}"
            ) from None
        if root is None:
            raise KnowledgeError.single(path, 1, "the file is empty; expected a mapping with 'entries'")
        if _may_have_alias_or_tag(text):
            _refuse_aliases_and_tags(root, path)
        return _build(root, path)


_STR_TAG = "tag:yaml.org,2002:str"
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


_TIMESTAMP_START = re.compile(r"[0-9][0-9][0-9][0-9]-[0-9]")


def _may_have_alias_or_tag(text: str) -> bool:
    """False when the text cannot give a node graph with an alias or a non-core tag.

    A cheap test of the text, to skip :func:`_refuse_aliases_and_tags`'s walk over every node.
    An alias needs an anchor (``&name``); an explicit tag starts with ``!``. YAML starts these
    tokens after a blank, a line break, a flow indicator or at the start of the text, never
    right after an ASCII letter or digit (there ``&`` and ``!`` belong to a plain scalar:
    ``R&D``, ``Yes!``). The other tags a plain scalar can resolve to are !!timestamp
    (``2024-01-31``: four digits, a dash, a digit), !!merge (``<<``) and !!value (a lone
    ``=``). True on any of these, even a harmless one: the walk then decides.
    """
    if "<<" in text or _TIMESTAMP_START.search(text):
        return True
    end = len(text) - 1
    for char in "&!=":
        i = text.find(char)
        while i != -1:
            before = text[i - 1] if i else " "
            if not (before.isascii() and before.isalnum()):
                return True
            if char == "=":
                after = text[i + 1] if i < end else " "
                if not (after.isascii() and after.isalnum()):
                    return True
            i = text.find(char, i + 1)
    return False


def _refuse_aliases_and_tags(root: yaml.Node, path: str) -> None:
    """Reject aliases (a node reached twice) and tags outside YAML's core schema.

    One pass over the node graph that never descends into a node twice, so an alias bomb
    costs no more than its text.
    """
    problems: list[Problem] = []
    seen: set[int] = set()
    stack = [root]
    while stack and len(problems) < 20:
        node = stack.pop()
        if id(node) in seen:
            problems.append(Problem(path, node.start_mark.line + 1,
                                    "anchors and aliases (&name / *name) are not allowed"))
            continue
        seen.add(id(node))
        if node.tag not in _CORE_TAGS:
            problems.append(Problem(path, node.start_mark.line + 1,
                                    f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} "
                                    "is not allowed (plain YAML only)"))
            continue
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(value)
                stack.append(key)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    if problems:
        raise KnowledgeError(sorted(problems, key=lambda p: p.line))


def _build(root: yaml.Node, path: str) -> KnowledgeBase:
    c = _Checker(path)
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

    synonyms: list[tuple[str, ...]] = []
    if "synonyms" in top:
        group_owner: dict[str, int] = {}
        for group_node in c.sequence(top["synonyms"][1], "synonyms") or ():
            words = [w.strip().lower() for _, w in c.texts(group_node, "synonym group")]
            if isinstance(group_node, yaml.SequenceNode) and len(words) < 2:
                c.error(group_node, "a synonym group needs at least two words")
                continue
            for word in words:
                if word in group_owner:
                    c.error(
                        group_node,
                        f"synonym '{word}' is already in the group at line {group_owner[word]}",
                    )
            for word in words:
                group_owner.setdefault(word, group_node.start_mark.line + 1)
            synonyms.append(tuple(dict.fromkeys(words)))

    handoff = [t.strip() for _, t in c.texts(top["handoff"][1], "handoff")] if "handoff" in top else []

    entries: list[Entry] = []
    ids: dict[str, int] = {}
    phrasing_owner: dict[str, tuple[str, int]] = {}
    entry_nodes = c.sequence(top["entries"][1], "entries") if "entries" in top else None
    if entry_nodes is not None and not entry_nodes:
        c.error(top["entries"][1], "entries must list at least one entry")
    for node in entry_nodes or ():
        entry = _entry(c, node)
        if entry is None:
            continue
        keys = [_phrasing_key(p) for p in entry.all_phrasings]
        if entry.id in ids:
            c.error(node, f"duplicate id '{entry.id}' (first used at line {ids[entry.id]})")
            continue
        ids[entry.id] = entry.line
        mine = (entry.id, entry.line)
        for phrasing, key in zip(entry.all_phrasings, keys, strict=True):
            owner = phrasing_owner.setdefault(key, mine)
            if owner is not mine and owner[0] != entry.id:
                c.error(
                    node,
                    f"entry '{entry.id}': phrasing {phrasing!r} is also used by entry "
                    f"'{owner[0]}' (line {owner[1]})",
                )
        entries.append(entry)

    not_covered: list[str] = []
    if "not_covered" in top:
        seen: dict[str, int] = {}
        # the same question with or without its question mark is the same question
        answered = {key.rstrip("?!. "): owner for key, owner in phrasing_owner.items()}
        for node, text in c.texts(top["not_covered"][1], "not_covered"):
            line = node.start_mark.line + 1
            key = _phrasing_key(text).rstrip("?!. ")
            if key in seen:
                c.error(node, f"not_covered question {text.strip()!r} is already listed at line "
                              f"{seen[key]}")
                continue
            seen[key] = line
            owner = answered.get(key)
            if owner is not None:
                c.error(node, f"not_covered question {text.strip()!r} is a phrasing of entry "
                              f"'{owner[0]}' (line {owner[1]}): an entry answers it")
                continue
            not_covered.append(" ".join(text.split()))

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


def _semantic(c: _Checker, node: yaml.Node, thresholds: Thresholds) -> SemanticSettings | None:
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


def _thresholds(c: _Checker, node: yaml.Node) -> Thresholds:
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


def _entry(c: _Checker, node: yaml.Node) -> Entry | None:
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


def load_knowledge(path: str | Path) -> KnowledgeBase:
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


def parse_knowledge_bytes(data: bytes, path: str = "<bytes>") -> KnowledgeBase:
    """:func:`parse_knowledge` of a file's bytes (UTF-8), through the compiled-knowledge cache.

    The same bytes loaded before (by any process of this user, with this code) come from the
    cache (``bot.kbcache``) without parsing; anything else is parsed and, when valid, stored
    there. Problems always come from a real parse, so they are the same either way.
    """
    cache_key = kbcache.key(data) if len(data) <= MAX_KNOWLEDGE_BYTES else None
    if cache_key is not None:
        cached = kbcache.load(cache_key, path, KnowledgeBase)
        if cached is not None:
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
