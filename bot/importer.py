"""Turn a plain-text or Markdown FAQ into knowledge YAML (``faqbot kb import FILE``).

Usage::

    yaml_text = faq_to_yaml(Path("faq.md").read_text(), source="faq.md")
    entries = entries_from_faq_text(Path("faq.txt").read_text())   # [{"id": ..., ...}, ...]

How questions are found:

* **Markdown headings.** When the document has ``##``/``###`` headings, each heading at the
  question level is a question. With both levels present, the level holding more headings that
  end in ``?`` is the question level; shallower headings are sections (they end an answer and are
  dropped), deeper ones are sub-headings inside an answer (rendered ``*bold*``). ``#`` is the
  document's title.
* **Plain text.** Otherwise a question is a paragraph of its own (one line, or a few wrapped
  lines) ending in ``?``; ``**bold**`` around it and ``Q:``/``1.`` before it are dropped.

The answer is everything up to the next question, converted to Slack mrkdwn: ``**bold**`` →
``*bold*``, ``[label](url)`` → ``<url|label>``, ``-``/``*``/``•`` bullets → ``• item``, numbered
lists kept as ``1.``, paragraphs kept, fenced code kept as a code block. Text before the first
question is ignored (a short line in it may become the title), and a last paragraph repeating a
line of that intro (a page header echoed as a footer) is dropped.

The result is a starting point: every entry gets ``phrasings: []`` with a comment asking the
maintainer to add some, because the matcher relies on them. Anything the importer had to guess
about is listed in comments at the top of the YAML.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from bot.knowledge import Thresholds

__all__ = ["ParsedFaq", "entries_from_faq_text", "faq_to_yaml", "parse_faq", "slugify"]

MAX_ID_CHARS = 40
# A "question" longer than this is a paragraph that happens to end in "?", not a question.
MAX_QUESTION_CHARS = 250
PHRASINGS_COMMENT = (
    "# TODO: add 5-10 other ways people ask this (replace [] with '- ...' lines)"
)

BlockKind = Literal["para", "heading", "code", "rule"]


@dataclass
class _Block:
    kind: BlockKind
    lines: list[str]
    line: int  # 1-based line of the block's first line in the source
    level: int = 0  # heading level (1-6)
    info: str = ""  # fenced code: the fence's indentation, to strip from its lines

    @property
    def text(self) -> str:
        return " ".join(part.strip() for part in self.lines).strip()


@dataclass
class ParsedFaq:
    """What the importer found: a title, YAML-ready entry dicts, and notes for the maintainer."""

    title: str | None
    entries: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- blocks

_FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_BULLET = re.compile(r"^(\s*)([-*+\u2022\u25e6\u25aa\u2023\u00b7\u25cf])\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d{1,3})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")


def _blocks(text: str) -> list[_Block]:
    """Split ``text`` into paragraphs, headings, fenced code blocks and rules."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").expandtabs(4)
    lines = text.split("\n")
    blocks: list[_Block] = []
    para: list[str] = []
    para_line = 0

    def flush() -> None:
        nonlocal para
        if para:
            blocks.append(_Block("para", para, para_line))
            para = []

    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        fence = _FENCE.match(raw)
        if fence:
            flush()
            marker, indent = fence.group(2), fence.group(1)
            body: list[str] = []
            start = i + 1
            i += 1
            while i < len(lines):
                closing = lines[i].strip()
                if closing.startswith(marker[0] * len(marker)) and not closing.strip(marker[0]):
                    break
                body.append(lines[i].rstrip())
                i += 1
            blocks.append(_Block("code", body, start, info=indent))
            i += 1  # past the closing fence (or the end)
            continue
        atx = _ATX.match(raw)
        if atx:
            flush()
            title = re.sub(r"\s+#+$", "", (atx.group(2) or "").strip()).strip()
            if title:
                blocks.append(_Block("heading", [title], i + 1, level=len(atx.group(1))))
            i += 1
            continue
        setext = _SETEXT.match(raw)
        if setext and len(para) == 1 and not _BULLET.match(para[0]) and not _NUMBERED.match(para[0]):
            # "Question?\n---------" is a level-2 heading, "Title\n=====" a level-1 heading
            title = para[0].strip()
            para = []
            blocks.append(_Block("heading", [title], para_line, level=1 if "=" in raw else 2))
            i += 1
            continue
        if _RULE.match(raw) and not para:
            blocks.append(_Block("rule", [], i + 1))
            i += 1
            continue
        if not raw.strip():
            flush()
        else:
            if not para:
                para_line = i + 1
            para.append(raw)
        i += 1
    flush()
    return blocks


# --------------------------------------------------------------------------- questions

_QUESTION_PREFIX = re.compile(r"^(?:Q\s*\d*\s*[:.)]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?:;]$")


def _plain_inline(text: str) -> str:
    """Markdown inline syntax removed: the question as people would type it."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return " ".join(text.split())


def _question_text(text: str) -> str:
    text = _plain_inline(text)
    return _QUESTION_PREFIX.sub("", text).strip()


def _is_plain_question(block: _Block) -> bool:
    """A paragraph of its own, not indented and not a bullet, ending in "?"."""
    if block.kind != "para" or len(block.lines) > 3:
        return False
    first = block.lines[0]
    if len(first) - len(first.lstrip()) > 3 or _BULLET.match(first) or _QUOTE.match(first):
        return False
    if any(_SENTENCE_END.search(line.strip()) for line in block.lines[:-1]):
        return False
    question = _question_text(block.text)
    return question.endswith("?") and len(question) <= MAX_QUESTION_CHARS


def _question_level(blocks: list[_Block]) -> int | None:
    """The heading level of questions (2 or 3), or None for a plain-text FAQ."""
    counts = {2: [0, 0], 3: [0, 0]}  # level -> [headings, headings ending in "?"]
    for block in blocks:
        if block.kind == "heading" and block.level in counts:
            counts[block.level][0] += 1
            counts[block.level][1] += block.text.endswith("?")
    if not counts[2][0] and not counts[3][0]:
        return None
    if not counts[2][0]:
        return 3
    if not counts[3][0]:
        return 2
    return 3 if counts[3][1] > counts[2][1] else 2


# --------------------------------------------------------------------------- mrkdwn

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^<>\s]+)>")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_PLACEHOLDER = "\x00{}\x00"


def _escape(text: str) -> str:
    # Slack reads "<...>" as a link or mention; the only "<" and ">" we emit on purpose are links
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn_inline(text: str) -> str:
    """One line of Markdown inline syntax as Slack mrkdwn (code spans left alone)."""
    out: list[str] = []
    pos = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_mrkdwn_text(text[pos : span.start()]))
        out.append("`" + _escape(span.group(2)) + "`")
        pos = span.end()
    out.append(_mrkdwn_text(text[pos:]))
    return "".join(out)


def _mrkdwn_text(text: str) -> str:
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return _PLACEHOLDER.format(len(kept) - 1)

    def link(match: re.Match[str]) -> str:
        label = _plain_inline(match.group(1)).replace("|", "/")
        url = match.group(2)
        return keep(f"<{url}|{_escape(label)}>" if label else f"<{url}>")

    text = text.replace("\x00", "")
    text = _MD_LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda m: keep(f"<{m.group(1)}>"), text)
    text = _escape(text)
    # *italic* -> _italic_ first, so that the *bold* produced next is not read as italic
    text = re.sub(r"(?<![\w*])\*(?![\s*])([^*]+?)(?<![\s*])\*(?![\w*])", r"_\1_", text)
    text = re.sub(r"(\*\*|__)(?!\s)(.+?)(?<!\s)\1", r"*\2*", text)
    text = re.sub(r"~~(?!\s)(.+?)(?<!\s)~~", r"~\1~", text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _render_para(block: _Block, *, join_lines: bool) -> str:
    """A paragraph as mrkdwn lines: bullets as "• item", numbered items as "1. item"."""
    items = [m for line in block.lines if (m := _BULLET.match(line) or _NUMBERED.match(line))]
    base = min((len(m.group(1)) for m in items), default=0)
    out: list[str] = []
    in_item = False
    hard_break = False  # the line above ended in "\\" (a Markdown line break)
    for line in block.lines:
        quote = _QUOTE.match(line)
        prefix = ""
        if quote:
            prefix, line = "> ", quote.group(1)
        bullet = _BULLET.match(line)
        numbered = None if bullet else _NUMBERED.match(line)
        if bullet or numbered:
            match = bullet or numbered
            assert match is not None
            level = min(max(len(match.group(1)) - base, 0) // 2, 3)
            marker = ("\u2022" if level == 0 else "\u25e6") if bullet else match.group(2) + "."
            out.append(prefix + "    " * level + f"{marker} {_mrkdwn_inline(match.group(3).strip())}")
            in_item = True
            continue
        wrapped = in_item and line[:1].isspace() or join_lines and not in_item and not hard_break
        hard_break = join_lines and line.endswith("\\")
        text = _mrkdwn_inline(line.strip().removesuffix("\\") if hard_break else line.strip())
        if out and not prefix and wrapped:
            # a wrapped line: Markdown renders it as part of the line above
            out[-1] = out[-1] + " " + text
            continue
        out.append(prefix + text)
        in_item = False
    return "\n".join(out)


def _render_answer(blocks: list[_Block], *, join_lines: bool) -> str:
    parts: list[str] = []
    for block in blocks:
        if block.kind == "para":
            parts.append(_render_para(block, join_lines=join_lines))
        elif block.kind == "heading":
            parts.append(f"*{_mrkdwn_inline(block.text)}*")
        elif block.kind == "code":
            # drop the fence's own indentation (a fence inside a list item), no more
            indent = len(block.info)
            body = [
                line[indent:] if not line[:indent].strip() else line.lstrip()
                for line in block.lines
            ]
            parts.append("```\n" + _escape("\n".join(body)).strip("\n") + "\n```")
        # rules ("---") separate questions in many Markdown FAQs; they carry no text
    return "\n\n".join(p for p in parts if p.strip()).strip()


# --------------------------------------------------------------------------- entries


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
    base = slugify(question) or "question"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        suffix = f"-{n}"
        candidate = slugify(base, MAX_ID_CHARS - len(suffix)) + suffix
    used.add(candidate)
    return candidate


def _pick_title(intro: list[_Block]) -> str | None:
    """A short intro line to use as the title, preferring one that says FAQ."""
    short = [
        b.text for b in intro
        if b.kind in ("para", "heading") and len(b.lines) == 1 and len(b.text) <= 80
        and not b.text.endswith((".", ":", "?"))
    ]
    for text in short:
        if re.search(r"\bfaqs?\b|frequently asked", text, re.I):
            return text
    return short[0] if short else None


def parse_faq(text: str) -> ParsedFaq:
    """Find the title, the questions and their answers in a plain-text or Markdown FAQ.

    Raises:
        ValueError: no question was found.
    """
    blocks = _blocks(text)
    level = _question_level(blocks)
    title: str | None = None
    for block in blocks:
        if block.kind == "heading" and block.level == 1:
            title = _plain_inline(block.text)
            break

    sections: list[tuple[_Block, list[_Block]]] = []  # (question block, answer blocks)
    intro: list[_Block] = []
    current: list[_Block] | None = None
    skipped: list[_Block] = []  # text between a section heading and its first question
    for block in blocks:
        if level is not None:
            is_question = block.kind == "heading" and block.level == level
            is_section = block.kind == "heading" and block.level < level
        else:
            is_question = _is_plain_question(block)
            is_section = block.kind == "heading" and block.level <= 3
        if is_question:
            current = []
            sections.append((block, current))
        elif is_section:
            current = None  # a section's own text before its first question is intro-like
        elif current is not None:
            current.append(block)
        elif not sections:
            intro.append(block)
        elif block.kind in ("para", "code"):
            skipped.append(block)
    if not sections:
        raise ValueError(
            "no questions found: expected Markdown '##'/'###' headings, or plain-text questions "
            "each on a line of its own ending in '?'"
        )

    notes = [
        f"line {b.line}: skipped text between a section heading and its first question"
        for b in skipped
    ]
    intro_lines = {" ".join(b.text.split()).casefold() for b in intro if b.kind != "code"}
    last_answer = sections[-1][1]
    while (
        last_answer
        and last_answer[-1].kind in ("para", "heading")
        and " ".join(last_answer[-1].text.split()).casefold() in intro_lines
    ):
        dropped = last_answer.pop()
        notes.append(
            f"line {dropped.line}: dropped {dropped.text!r} after the last answer "
            "(it repeats the page header)"
        )
    if title is None:
        title = _pick_title(intro)

    entries: list[dict[str, Any]] = []
    used_ids: set[str] = set()
    pending: list[tuple[int, str]] = []  # questions without an answer, folded into the next one
    seen_questions: dict[str, int] = {}
    for q_block, answer_blocks in sections:
        question = _question_text(q_block.text) if level is None else _plain_inline(q_block.text)
        answer = _render_answer(answer_blocks, join_lines=level is not None)
        if not answer:
            pending.append((q_block.line, question))
            continue
        key = _key(question)
        if key in seen_questions:
            notes.append(
                f"line {q_block.line}: question {question!r} is asked twice (also line "
                f"{seen_questions[key]}); 'faqbot kb check' rejects that: merge the two entries"
            )
        seen_questions.setdefault(key, q_block.line)
        for line, orphan in pending:
            notes.append(
                f"line {line}: {orphan!r} has no answer of its own; it became a phrasing of "
                f"{question!r}"
            )
        entries.append(
            {
                "id": _unique_id(question, used_ids),
                "question": question,
                "answer": answer,
                "phrasings": [orphan for _, orphan in pending],
                "tags": [],
            }
        )
        pending = []
    for line, orphan in pending:
        notes.append(f"line {line}: dropped {orphan!r}: no answer follows it")
    if not entries:
        raise ValueError("no questions found with an answer after them")
    _drop_shared_phrasings(entries, notes)
    return ParsedFaq(title=title, entries=entries, notes=notes)


def _key(text: str) -> str:
    """Phrasings the loader considers the same (see ``bot.knowledge``)."""
    return " ".join(text.lower().split())


def _drop_shared_phrasings(entries: list[dict[str, Any]], notes: list[str]) -> None:
    """Drop phrasings another entry also uses: the loader refuses them; questions win."""
    owner: dict[str, str] = {}
    for entry in entries:
        owner.setdefault(_key(entry["question"]), entry["id"])
    for entry in entries:
        kept: list[str] = []
        for phrasing in entry["phrasings"]:
            key = _key(phrasing)
            if owner.setdefault(key, entry["id"]) != entry["id"]:
                notes.append(
                    f"dropped the phrasing {phrasing!r} of {entry['question']!r}: another "
                    "entry asks the same"
                )
            elif key != _key(entry["question"]) and key not in map(_key, kept):
                kept.append(phrasing)
        entry["phrasings"] = kept


def entries_from_faq_text(text: str) -> list[dict[str, Any]]:
    """The entries of a plain-text or Markdown FAQ as knowledge dicts (see :func:`parse_faq`)."""
    return parse_faq(text).entries


# --------------------------------------------------------------------------- YAML


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings as literal ``|`` blocks, readable and diffable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _threshold_defaults() -> dict[str, float | int]:
    values = dataclasses.asdict(Thresholds())
    return {k: int(v) if float(v).is_integer() else v
            for k, v in values.items() if v is not None}  # unset optional ones stay out


def faq_to_yaml(text: str, *, title: str | None = None, source: str | None = None) -> str:
    """Knowledge YAML for the FAQ in ``text``, ready for ``faqbot kb check``.

    Usage::

        Path("knowledge/faq.yaml").write_text(faq_to_yaml(Path("faq.md").read_text()))

    Args:
        text: the FAQ, plain text or Markdown.
        title: the knowledge base's title; by default the FAQ's ``#`` heading or a short line
            of its introduction.
        source: where the FAQ came from (a file name or URL), recorded as ``source:``.

    Raises:
        ValueError: no question was found.
    """
    parsed = parse_faq(text)
    document: dict[str, Any] = {"version": 1, "title": title or parsed.title or "FAQ"}
    if source:
        document["source"] = source
    document["thresholds"] = _threshold_defaults()
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
        "# Review every answer, add phrasings (the matcher depends on them) and tags,",
        "# then run `faqbot kb check`.",
    ]
    header += [f"# note: {note}" for note in parsed.notes]
    return "\n".join(header) + "\n" + body
