"""What every FAQ format shares: the blocks a parser yields, the choice of questions, entries,
links and the YAML.

A format parser (``markdown``, ``rst``, ``htmlpage``) turns a document into a flat list of
:class:`Block` objects: headings with their level, explicit questions (an HTML ``<dt>`` or
``<summary>``), and text blocks already written as answer text. :func:`build` decides which
blocks are the questions, gathers each one's answer, and reports what it could not place.

Answer text is plain, readable text: ``*bold*``, ``_italic_``, `` `code` ``, fenced code blocks,
``•`` bullets and ``1.`` lists. Entities are decoded and nothing is escaped (escaping for Slack
happens when a message is sent). A link to an absolute ``http(s)``/``mailto`` address is written
``[label](url)`` (the bare URL when the label is the URL); a relative link is resolved against the
base URL when one is given, and is its label alone otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

import yaml

MAX_ID_CHARS = 40
# A "question" longer than this is a paragraph that happens to end in "?", not a question.
MAX_QUESTION_CHARS = 250
# The bot answers an imported file without phrasings (the calibrated blend reads each entry's
# question and answer); they help the lexical matcher, and the tuned one if `thresholds:` is set.
PHRASINGS_COMMENT = "# optional: other ways people ask this, as '- ...' lines (knowledge/README.md)"

BlockKind = Literal["heading", "question", "text"]


@dataclass
class Note:
    """Something the importer could not place or had to guess about, with its source line."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class Block:
    """One piece of a parsed FAQ.

    * ``heading``: a heading of ``level`` 1-6; ``text`` is its text without markup.
    * ``question``: a question the format marks as one (``<dt>``, ``<summary>``).
    * ``text``: answer text (a paragraph, a list, a code block). ``ask`` is set when the block
      stands alone the way a question does in a plain-text FAQ (``Q: ...``, a bold line ending
      in ``?``); it is then the question's text.
    """

    kind: BlockKind
    text: str
    line: int | None
    level: int = 0
    ask: str | None = None
    code: bool = False  # a code block: never compared with the intro, never a question


@dataclass
class ParsedFaq:
    """What the importer found: a title, YAML-ready entry dicts, and notes for the maintainer."""

    title: str | None
    entries: list[dict[str, Any]]
    notes: list[Note] = field(default_factory=list)
    format: str = "markdown"


@dataclass
class Document:
    """A format parser's result: the blocks, the document's own title, and its notes."""

    blocks: list[Block]
    title: str | None = None
    notes: list[Note] = field(default_factory=list)


# --------------------------------------------------------------------------- text helpers


def clip(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis, for notes."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_ABSOLUTE = re.compile(r"^(?:https?://|mailto:)\S+$", re.I)


def resolve_href(href: str, base_url: str | None) -> str | None:
    """The absolute address ``href`` leads to, or None when there is none to give."""
    href = href.strip()
    if href.startswith("//"):
        href = "https:" + href
    if _ABSOLUTE.match(href):
        return href
    if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I):  # javascript:, tel:, ftp: ...
        return None
    if base_url and href:
        resolved = urljoin(base_url, href)
        return resolved if _ABSOLUTE.match(resolved) else None
    return None


def link(label: str, href: str, base_url: str | None) -> str:
    """A link as answer text: ``[label](url)``, the bare URL, or the label alone."""
    label = " ".join(label.split())
    url = resolve_href(href, base_url)
    if url is None:
        return label
    bare = url.removeprefix("mailto:")
    if not label or label in (url, bare) or re.sub(r"^https?://", "", url).rstrip("/") == label:
        return bare
    return f"[{label}]({url})"


def ask_of(text: str) -> str | None:
    """The question a stand-alone paragraph asks, or None when it does not read as one.

    ``text`` is answer text (``*bold*`` already single-starred). A ``Q:`` or ``1.`` prefix and bold
    around the whole line are dropped; what is left must end in ``?`` and be one sentence.
    """
    lines = text.strip().splitlines()
    if not lines or len(lines) > 3:
        return None
    if any(re.search(r"[.!?:;]$", line.strip()) for line in lines[:-1]):
        return None
    question = " ".join(" ".join(lines).split())
    prefixed = bool(re.match(r"^Q\s*\d*\s*[:.)]\s+", question))
    question = re.sub(r"^(?:Q\s*\d*\s*[:.)]|\d{1,3}[.)])\s+", "", question)
    question = re.sub(r"^\*(\S.*\S|\S)\*$", r"\1", question)
    question = re.sub(r"^(?:Q\s*\d*\s*[:.)]|\d{1,3}[.)])\s+", "", question).strip()
    if not question or len(question) > MAX_QUESTION_CHARS:
        return None
    if question.endswith("?") or prefixed:
        return question
    return None


# --------------------------------------------------------------------------- questions


def _question_level(blocks: list[Block]) -> int | None:
    """The heading level that holds the questions, or None when there are no headings.

    A lone level-1 heading is the document's title (unless it is the only heading and ends in
    ``?``: a one-question FAQ). Among the other levels, the one with the
    most headings ending in ``?`` wins; when none or equally many do (headings written as
    statements: "Apache projects do not release binaries"), the level with the most headings.
    """
    headings = [b for b in blocks if b.kind == "heading"]
    counts: dict[int, list[int]] = {}
    for block in headings:
        counts.setdefault(block.level, [0, 0])
        counts[block.level][0] += block.text.rstrip().endswith("?")
        counts[block.level][1] += 1
    if counts.get(1, [0, 0])[1] == 1 and (len(counts) > 1 or not counts[1][0]):
        del counts[1]  # the title, unless it is the document's one heading and asks something
    if not counts:
        return None
    return max(counts, key=lambda level: (counts[level][0], counts[level][1], -level))


def question_mode(blocks: list[Block]) -> tuple[str, int | None]:
    """How this document marks its questions: ``heading`` (headings at the returned level),
    ``explicit`` (``question`` blocks) or ``plain`` (stand-alone question paragraphs).

    The way with more candidates ending in ``?`` wins, then the one with more candidates, then
    headings before explicit questions before paragraphs: a ``<dl>`` inside one answer does not
    outweigh a page of question headings, nor a rhetorical "Why?" a page of statement headings.
    """
    level = _question_level(blocks)

    def tally(found: list[str]) -> tuple[int, int]:
        return sum(1 for q in found if q.rstrip().endswith("?")), len(found)

    ways = {
        "heading": tally([b.text for b in blocks if b.kind == "heading" and b.level == level]
                         if level is not None else []),
        "explicit": tally([b.text for b in blocks if b.kind == "question"]),
        "plain": tally([b.ask for b in blocks if b.kind == "text" and b.ask]),
    }
    order = list(ways)
    best = max(order, key=lambda way: (*ways[way], -order.index(way)))
    return best, level


def _heading_text(block: Block) -> str:
    return f"*{block.text}*" if block.text else ""


def _intro_key(text: str) -> str:
    return " ".join(text.replace("*", "").split()).casefold()


def build(document: Document) -> ParsedFaq:
    """Choose the questions among ``document``'s blocks and gather their answers.

    Raises:
        ValueError: no question with an answer was found.
    """
    notes = list(document.notes)
    sections, intro, skipped = _sections(document.blocks)
    if not sections:
        raise ValueError(
            "no questions found: expected headings ('##'/'###' in Markdown, section titles in "
            "reStructuredText, <h2>/<h3> in HTML), <dt>/<summary> questions, or plain-text "
            "questions each on a line of its own ending in '?'"
        )

    for block in intro:
        if block.kind == "text" and block.text.strip():
            notes.append(Note(block.line, f"skipped text before the first question: {clip(block.text)!r}"))
    notes.extend(
        Note(b.line, f"skipped text between a section heading and its first question: {clip(b.text)!r}")
        for b in skipped
    )

    intro_lines = {_intro_key(b.text) for b in intro if not b.code and b.text.strip()}
    intro_lines |= {_intro_key(b.text) for b in intro if b.kind == "heading"}
    last_answer = sections[-1][2]
    while (
        last_answer
        and not last_answer[-1].code
        and _intro_key(last_answer[-1].text) in intro_lines
    ):
        dropped = last_answer.pop()
        notes.append(Note(dropped.line, f"dropped {clip(dropped.text)!r} after the last answer "
                                        "(it repeats the page header)"))

    entries = _entries(sections, notes)
    if not entries:
        raise ValueError("no questions found with an answer after them")
    title = document.title if document.title not in {q for q, _, _ in sections} else None
    title = title or _pick_title(intro)
    return ParsedFaq(title=title, entries=entries, notes=notes)


_Section = tuple[str, int | None, list[Block]]  # (question, line, answer blocks)


def _sections(blocks: list[Block]) -> tuple[list[_Section], list[Block], list[Block]]:
    """The questions with their answer blocks, the blocks before the first question, and the
    text skipped between a section heading and its first question."""
    mode, level = question_mode(blocks)
    sections: list[_Section] = []
    intro: list[Block] = []
    skipped: list[Block] = []
    current: list[Block] | None = None
    for block in blocks:
        question: str | None = None
        is_section = False
        if mode == "heading":
            if block.kind == "heading" and block.level == level:
                question = block.text
            elif block.kind == "heading":
                is_section = level is not None and block.level < level
        elif mode == "explicit":
            if block.kind == "question":
                question = block.text
            elif block.kind == "heading":
                is_section = True
        else:  # plain
            if block.kind == "text" and block.ask:
                question = block.ask
            elif block.kind == "heading":
                is_section = block.level <= 3
            elif block.kind == "question":
                question = block.text
        if question is not None:
            current = []
            sections.append((question.strip(), block.line, current))
        elif is_section:
            current = None
        elif current is not None:
            current.append(block)
        elif not sections:
            intro.append(block)
        elif block.kind == "text" and block.text.strip():
            skipped.append(block)
    return sections, intro, skipped


def _entries(sections: list[_Section], notes: list[Note]) -> list[dict[str, Any]]:
    """One entry per question with an answer (a question asked twice: one entry, answers
    merged); what is skipped is noted."""
    entries: list[dict[str, Any]] = []
    by_key: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for question, line, answer_blocks in sections:
        parts = [
            _heading_text(b) if b.kind in ("heading", "question") else b.text
            for b in answer_blocks
        ]
        answer = "\n\n".join(p.strip("\n") for p in parts if p.strip()).strip()
        if not question:
            if answer:
                notes.append(Note(line, "skipped an empty heading and the text under it"))
            continue
        if not answer:
            notes.append(Note(line, f"skipped {clip(question)!r}: no answer follows it"))
            continue
        key = _key(question)
        if key in by_key:
            first = by_key[key]
            first["answer"] += "\n\n" + answer
            notes.append(Note(line, f"{clip(question)!r} is asked twice; its answers are merged "
                                    f"into entry {first['id']!r}"))
            continue
        entry = {
            "id": _unique_id(question, used_ids),
            "question": question,
            "answer": answer,
            "phrasings": [],
            "tags": [],
        }
        by_key[key] = entry
        entries.append(entry)
    return entries


def _key(text: str) -> str:
    """Questions the loader considers the same (see ``bot.knowledge``)."""
    return " ".join(text.lower().split())


def _pick_title(intro: list[Block]) -> str | None:
    """A short intro line to use as the title, preferring one that says FAQ."""
    short = [
        b.text.strip("*") for b in intro
        if not b.code and "\n" not in b.text.strip() and 0 < len(b.text) <= 80
        and not b.text.endswith((".", ":", "?"))
    ]
    for text in short:
        if re.search(r"\bfaqs?\b|frequently asked", text, re.I):
            return text
    return short[0] if short else None


# --------------------------------------------------------------------------- ids


def slugify(text: str, max_chars: int = MAX_ID_CHARS) -> str:
    """An id from ``text``: ASCII lower-case words joined by dashes, cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"(?<=\w)'(?=\w)", "", ascii_text.lower())  # what's -> whats
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_text))
    if len(slug) > max_chars:
        cut = slug[: max_chars + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[:max_chars] else slug[:max_chars]
    return slug.strip("-")


def _unique_id(question: str, used: set[str]) -> str:
    base = slugify(question.replace("\u2019", "'")) or "question"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        suffix = f"-{n}"
        candidate = slugify(base, MAX_ID_CHARS - len(suffix)) + suffix
    used.add(candidate)
    return candidate


# --------------------------------------------------------------------------- YAML


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings as literal ``|`` blocks, readable and diffable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_yaml(parsed: ParsedFaq, *, title: str | None = None, source: str | None = None) -> str:
    """Knowledge YAML for ``parsed``, ready for ``faqbot kb check``; notes become comments."""
    document: dict[str, Any] = {"version": 1, "title": title or parsed.title or "FAQ"}
    if source:
        document["source"] = source
    document["entries"] = parsed.entries
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        width=1_000_000,
        default_flow_style=False,
    )
    # safe_dump cannot write comments; entry keys sit at exactly two spaces, while answer text
    # in a literal block is indented further, so this only touches the keys
    body = re.sub(r"(?m)^(  phrasings: \[\])$", r"\1  " + PHRASINGS_COMMENT, body)
    header = [
        "# Knowledge imported by `faqbot kb import`"
        + (f" from {source}" if source else "") + ".",
        "# Review every answer, then run `faqbot kb check`. With no `thresholds:` the bot decides",
        "# with its calibrated blend (docs/matching.md); phrasings and tags help it further.",
    ]
    header += [f"# note: {' '.join(str(note).split())}" for note in parsed.notes]
    return "\n".join(header) + "\n" + body
