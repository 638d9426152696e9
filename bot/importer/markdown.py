"""Markdown and plain-text FAQs as blocks (see :mod:`bot.importer.common`).

How questions are found (the choice itself is :func:`bot.importer.common.build`'s):

* **Headings.** ``#``..``######`` and setext headings; a lone ``#`` heading is the title.
  Shallower headings than the question level are sections, deeper ones sub-headings inside an
  answer (written ``*bold*``). Headings may be statements rather than questions.
* **Plain text.** A paragraph of its own (one line, or a few wrapped lines) ending in ``?``;
  ``**bold**`` around it and ``Q:``/``1.`` before it are dropped. ``Q:``/``A:`` pairs may sit
  on adjacent lines.
* **Collapsible sections.** A ``<summary>Question?</summary>`` line (GitHub's ``<details>``).

Before that, a YAML (``---``), TOML (``+++``) or Pelican (``Title: ...``) front matter at the top
and HTML comments are taken out and reported. Hugo ``{{< ref "..." >}}`` shortcodes become site
paths (resolved against the base URL when there is one); other shortcodes are dropped, keeping
the text between them. Inline HTML is read as text (``<br>`` a line break, ``<a href>`` a link,
``<code>``/``<b>``/``<i>`` as their Markdown), entities are decoded, and a text block before the
first question is reported rather than imported.

Answers keep Markdown readable: ``**bold**`` -> ``*bold*``, ``*italic*`` -> ``_italic_``,
``-``/``*``/``•`` bullets -> ``• item``, numbered lists as ``1.``, paragraphs joined from their
wrapped lines (plain-text FAQs keep their line breaks), fenced code and text indented four
spaces as code blocks, table rows as ``a | b`` lines, inline and reference links
(``[label][ref]`` with a ``[ref]: url`` line) as described in :mod:`bot.importer.common`.
"""

from __future__ import annotations

import html
import re
import tomllib
from dataclasses import dataclass, field
from typing import Literal

import yaml

from bot.importer.common import (
    MAX_QUESTION_CHARS,
    Block,
    Document,
    Note,
    clip,
    link,
    question_mode,
)

__all__ = ["parse"]

BlockKind = Literal["para", "heading", "code", "rule", "summary"]


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


# --------------------------------------------------------------------------- front matter, comments

_PELICAN_KEYS = {
    "title", "author", "authors", "date", "modified", "category", "tags", "slug", "summary",
    "lang", "status", "template", "save_as", "url", "license", "description", "keywords",
    "layout", "permalink", "subtitle", "linktitle", "weight",
}
_META_LINE = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$")
_SHORTCODE = re.compile(r"\{\{([<%])\s*(/?)\s*([\w./-]+)((?:[^}]|\}(?!\}))*?)\s*[>%]\}\}")


@dataclass
class _Prepared:
    lines: list[str]
    title: str | None = None
    notes: list[Note] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # link reference definitions


def _front_matter(lines: list[str], prepared: _Prepared) -> None:
    """Blank out a front matter block at the top (after blank lines), noting it."""
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        return
    first = lines[start].strip()
    end = None
    kind = ""
    if first in ("---", "+++"):
        closing = ("---", "...") if first == "---" else ("+++",)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() in closing), None)
        if end is None:
            return
        body = "\n".join(lines[start + 1 : end])
        kind = "YAML" if first == "---" else "TOML"
        meta: object = None
        try:
            meta = yaml.safe_load(body) if kind == "YAML" else tomllib.loads(body)
        except (yaml.YAMLError, tomllib.TOMLDecodeError):
            # front matter with template syntax may not parse; it still has "key:" lines
            if not re.search(r"(?m)^\w[\w-]*\s*[:=]", body):
                return
        else:
            if meta is not None and not isinstance(meta, dict):
                return  # "---" rules around a paragraph, not front matter
        if isinstance(meta, dict) and isinstance(meta.get("title"), str):
            prepared.title = meta["title"].strip() or None
    else:
        match = _META_LINE.match(first)
        if not match or match.group(1).lower() not in _PELICAN_KEYS:
            return
        end = start
        while end + 1 < len(lines) and lines[end + 1].strip():
            if not _META_LINE.match(lines[end + 1].strip()) and not lines[end + 1][:1].isspace():
                return  # not a metadata block: a paragraph that starts with "Title: ..."
            end += 1
        kind = "metadata"
        for line in lines[start : end + 1]:
            meta_line = _META_LINE.match(line.strip())
            if meta_line and meta_line.group(1).lower() == "title":
                prepared.title = meta_line.group(2).strip() or None
    span = f"lines {start + 1}-{end + 1}" if end > start else f"line {start + 1}"
    used = f"; its title {prepared.title!r} is the knowledge title" if prepared.title else ""
    prepared.notes.append(Note(start + 1, f"skipped the {kind} front matter ({span}){used}"))
    for i in range(start, end + 1):
        lines[i] = ""


def _prepare(text: str) -> _Prepared:
    """Lines with front matter, HTML comments and shortcodes taken out (line numbers kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").expandtabs(4)
    lines = text.split("\n")
    prepared = _Prepared(lines)
    # comments first: a "<!-- Source: ... -->" line may sit above the front matter
    fenced = _fenced_lines(lines)
    masked = "\n".join("" if n in fenced else line for n, line in enumerate(lines))

    def comment(match: re.Match[str]) -> str:
        line_no = masked.count("\n", 0, match.start()) + 1
        prepared.notes.append(Note(line_no, f"skipped an HTML comment: {clip(match.group())!r}"))
        return "\n" * match.group().count("\n")

    unmasked = re.sub(r"<!--.*?-->", comment, masked, flags=re.S).split("\n")
    lines[:] = [line if n in fenced else unmasked[n] for n, line in enumerate(lines)]
    for n, line in enumerate(lines):
        if not line.strip():
            lines[n] = ""
    _front_matter(lines, prepared)
    fenced = _fenced_lines(lines)
    for i, line in enumerate(lines):
        definition = None if i in fenced else _LINK_DEF.match(line)
        if definition:  # "[label]: https://..." defines a link; it is no text of its own
            prepared.refs.setdefault(_ref_key(definition.group(1)), definition.group(2))
            lines[i] = ""
    dropped: set[str] = set()
    for i, line in enumerate(lines):
        if i in fenced or "{{" not in line:
            continue

        def shortcode(match: re.Match[str], line_no: int = i + 1) -> str:
            name, args = match.group(3), match.group(4)
            if name in ("ref", "relref") and not match.group(2):
                target = re.search(r"[\"']([^\"']+)[\"']", args) or re.search(r"(\S+)", args)
                return _hugo_path(target.group(1)) if target else ""
            if name not in dropped:
                dropped.add(name)
                prepared.notes.append(
                    Note(line_no, f"dropped the Hugo shortcode {name!r} (kept the text inside it)")
                )
            return ""

        lines[i] = _SHORTCODE.sub(shortcode, line)
    return prepared


def _ref_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _fenced_lines(lines: list[str]) -> set[int]:
    """The indexes of the lines of fenced code blocks, fences included."""
    fenced: set[int] = set()
    marker = ""
    for n, line in enumerate(lines):
        fence = _FENCE.match(line)
        if marker:
            fenced.add(n)
            closing = line.strip()
            if closing.startswith(marker[0] * len(marker)) and not closing.strip(marker[0]):
                marker = ""
        elif fence:
            fenced.add(n)
            marker = fence.group(2)
    return fenced


def _hugo_path(target: str) -> str:
    """A Hugo page reference ("/docs/x.md#y") as the site path it is published at."""
    path, _, fragment = target.partition("#")
    path = re.sub(r"(?:/?_?index)?(?:\.[a-z]{2})?\.(?:md|markdown|html)$", "", path)
    path = "/" + path.strip("/") + "/" if path.strip("/") else "/"
    return path + (f"#{fragment}" if fragment else "")


# --------------------------------------------------------------------------- blocks

_FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_BULLET = re.compile(r"^(\s*)([-*+\u2022\u25e6\u25aa\u2023\u00b7\u25cf])\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d{1,3})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_TABLE_ROW = re.compile(r"^\s{0,3}\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s{0,3}\|[\s:|-]*-[\s:|-]*\|\s*$")
_LINK_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*$")


def _blocks(lines: list[str]) -> list[_Block]:
    """Split ``lines`` into paragraphs, headings, fenced code blocks and rules."""
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
_Q_LINE = re.compile(r"^\s{0,3}Q\s*\d*\s*:\s+")
_A_LINE = re.compile(r"^\s{0,3}A\s*\d*\s*:\s+")
_SENTENCE_END = re.compile(r"[.!?:;]$")
_HEADING_ID = re.compile(r"\s*\{#[\w:.-]+\}\s*$")


def _plain_inline(text: str) -> str:
    """Markdown inline syntax and HTML tags removed: the question as people would type it."""
    text = _HEADING_ID.sub("", text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = _strip_tags(text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return " ".join(html.unescape(text).split())


def _question_text(text: str) -> str:
    text = _plain_inline(text)
    return _QUESTION_PREFIX.sub("", text).strip()


def _ask(block: _Block) -> str | None:
    """The question a paragraph standing alone asks, or None.

    Not indented and not a bullet; ending in "?" (or written ``Q: ...``)."""
    if block.kind != "para" or len(block.lines) > 3:
        return None
    first = block.lines[0]
    if len(first) - len(first.lstrip()) > 3 or _BULLET.match(first) or _QUOTE.match(first):
        return None
    if any(_SENTENCE_END.search(line.strip()) for line in block.lines[:-1]):
        return None
    question = _question_text(block.text)
    if not question or len(question) > MAX_QUESTION_CHARS:
        return None
    prefixed = bool(_Q_LINE.match(first))
    return question if question.endswith("?") or prefixed else None


def _split_qa(blocks: list[_Block]) -> list[_Block]:
    """``Q: ...`` and ``A: ...`` on adjacent lines become a question and an answer paragraph;
    the ``A:`` before an answer is dropped."""
    out: list[_Block] = []
    for block in blocks:
        if block.kind != "para":
            out.append(block)
            continue
        split_at = next(
            (n for n, line in enumerate(block.lines) if n and _A_LINE.match(line)), None
        ) if _Q_LINE.match(block.lines[0]) else None
        if split_at is not None:
            out.append(_Block("para", block.lines[:split_at], block.line))
            block = _Block("para", block.lines[split_at:], block.line + split_at)
        after_q = bool(out) and out[-1].kind == "para" and bool(_Q_LINE.match(out[-1].lines[0]))
        if after_q and _A_LINE.match(block.lines[0]):
            block = _Block("para", [_A_LINE.sub("", block.lines[0], count=1), *block.lines[1:]], block.line)
        out.append(block)
    return out


def _indented_code(blocks: list[_Block]) -> list[_Block]:
    """A paragraph indented by four spaces or more is a code block (as in CommonMark), unless
    it continues a list item."""
    out: list[_Block] = []
    for block in blocks:
        indented = block.kind == "para" and all(
            len(line) - len(line.lstrip()) >= 4 for line in block.lines if line.strip()
        )
        after_list = bool(out) and out[-1].kind == "para" and any(
            _BULLET.match(line) or _NUMBERED.match(line) for line in out[-1].lines
        )
        if indented and not after_list:
            block = _Block("code", block.lines, block.line,
                           info=" " * min(len(line) - len(line.lstrip()) for line in block.lines))
        out.append(block)
    return out


_SUMMARY = re.compile(r"^\s*(?:<details\b[^>]*>\s*)?<summary\b[^>]*>(.*?)</summary\s*>\s*$", re.I)


def _summaries(blocks: list[_Block]) -> list[_Block]:
    """A ``<summary>Question?</summary>`` line (GitHub's collapsible ``<details>``) is a
    question; the lines around it in its paragraph are paragraphs of their own."""
    out: list[_Block] = []
    for block in blocks:
        at = next((n for n, line in enumerate(block.lines) if _SUMMARY.match(line)), None) \
            if block.kind == "para" else None
        if at is None:
            out.append(block)
            continue
        if at:
            out.append(_Block("para", block.lines[:at], block.line))
        summary = _SUMMARY.match(block.lines[at])
        assert summary is not None
        out.append(_Block("summary", [_plain_inline(summary.group(1))], block.line + at))
        out.extend(_summaries([_Block("para", block.lines[at + 1 :], block.line + at + 1)])
                   if block.lines[at + 1 :] else [])
    return out


# --------------------------------------------------------------------------- inline text

_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"(!?)\[([^\]]+)\](?:\[([^\]]*)\])?(?!\()")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^<>\s]+)>")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_PLACEHOLDER = "\x00{}\x00"
# HTML elements whose tags are read as text markup; "<formula>" and the like stay as written
_HTML_TAGS = (
    "a|abbr|b|bdi|bdo|big|br|center|cite|code|data|del|details|dfn|div|em|figcaption|figure|"
    "font|hr|i|img|ins|kbd|mark|p|q|s|samp|section|small|span|strike|strong|sub|summary|sup|"
    "time|tt|u|var|wbr"
)
_HTML_TAG = re.compile(rf"</?(?:{_HTML_TAGS})\b(?:\s[^<>]*)?/?>", re.I)
_HTML_A = re.compile(r"<a\b([^<>]*)>(.*?)</a\s*>", re.I | re.S)
_HTML_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_HTML_CODE = re.compile(r"<(code|kbd|tt|samp)\b[^<>]*>(.*?)</\1\s*>", re.I | re.S)


def _strip_tags(text: str) -> str:
    """Known HTML tags replaced by their Markdown (``<br>`` a line break) or dropped."""
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
    text = re.sub(r"</?(?:strong|b)\b[^<>]*>", "**", text, flags=re.I)
    text = re.sub(r"</?(?:em|i)\b[^<>]*>", "*", text, flags=re.I)
    return _HTML_TAG.sub("", text)


@dataclass
class _Inline:
    """Renders one line of Markdown inline syntax as answer text."""

    base_url: str | None
    refs: dict[str, str] = field(default_factory=dict)

    def inline(self, text: str) -> str:
        kept: list[str] = []

        def keep(value: str) -> str:
            kept.append(value)
            return _PLACEHOLDER.format(len(kept) - 1)

        text = text.replace("\x00", "")
        text = _CODE_SPAN.sub(lambda m: keep("`" + m.group(2) + "`"), text)  # code as written

        def md_link(match: re.Match[str]) -> str:
            label = _plain_inline(match.group(2))
            return keep(link(label, match.group(3), self.base_url))

        def html_link(match: re.Match[str]) -> str:
            href = _HTML_HREF.search(match.group(1))
            label = _plain_inline(match.group(2))
            if not href:
                return label
            return keep(link(label, html.unescape(next(g for g in href.groups() if g is not None)),
                             self.base_url))

        text = _HTML_CODE.sub(lambda m: keep("`" + html.unescape(_HTML_TAG.sub("", m.group(2))) + "`"), text)
        text = _HTML_A.sub(html_link, text)
        text = _MD_LINK.sub(md_link, text)

        def ref_link(match: re.Match[str]) -> str:
            label = match.group(2)
            href = self.refs.get(_ref_key(match.group(3) or label))
            if href is None:
                return match.group()
            return keep(link(_plain_inline(label), href, self.base_url))

        text = _REF_LINK.sub(ref_link, text)
        text = _AUTOLINK.sub(lambda m: keep(m.group(1).removeprefix("mailto:")), text)
        text = html.unescape(_strip_tags(text))
        # *italic* -> _italic_ first, so that the *bold* produced next is not read as italic
        text = re.sub(r"(?<![\w*])\*(?![\s*])([^*]+?)(?<![\s*])\*(?![\w*])", r"_\1_", text)
        text = re.sub(r"(\*\*|__)(?!\s)(.+?)(?<!\s)\1", r"*\2*", text)
        text = re.sub(r"~~(?!\s)(.+?)(?<!\s)~~", r"~\1~", text)
        text = re.sub(r"\*\*|(?<!\w)__(?!\w)", "", text)  # an empty <b></b> pair
        text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
        for _ in range(3):  # a kept link label may hold a kept code span
            text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
        return text


def _render_para(block: _Block, ctx: _Inline, *, join_lines: bool) -> str:
    """A paragraph as answer lines: bullets as "• item", numbered items as "1. item".

    Wrapped lines are joined to their line (or list item) before inline syntax is read, so a
    link or emphasis may span them."""
    items = [m for line in block.lines if (m := _BULLET.match(line) or _NUMBERED.match(line))]
    base = min((len(m.group(1)) for m in items), default=0)
    logical: list[list[str]] = []  # [prefix, marker, text]
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
            logical.append([prefix, "    " * level + marker + " ", match.group(3).strip()])
            in_item = True
            hard_break = False
            continue
        if _TABLE_ROW.match(line):  # a GFM table row: one line per row, cells "a | b"
            if not _TABLE_RULE.match(line):
                cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
                logical.append([prefix, "", " | ".join(cells)])
            in_item = False
            hard_break = True  # the next line starts a line of its own
            continue
        wrapped = in_item and line[:1].isspace() or join_lines and not in_item and not hard_break
        hard_break = join_lines and line.endswith("\\")
        text = line.strip().removesuffix("\\") if hard_break else line.strip()
        if logical and not prefix and wrapped:
            # a wrapped line: Markdown renders it as part of the line above
            logical[-1][2] += " " + text
            continue
        logical.append([prefix, "", text])
        in_item = False
    return "\n".join(prefix + marker + ctx.inline(text) for prefix, marker, text in logical)


def _render(block: _Block, ctx: _Inline, *, join_lines: bool) -> str:
    if block.kind == "para":
        text = _render_para(block, ctx, join_lines=join_lines)
        return "\n".join(line.rstrip() for line in text.split("\n")).strip()
    if block.kind == "code":
        # drop the fence's own indentation (a fence inside a list item), no more
        indent = len(block.info)
        body = [
            line[indent:] if not line[:indent].strip() else line.lstrip()
            for line in block.lines
        ]
        return "```\n" + "\n".join(body).strip("\n") + "\n```"
    return ""


# --------------------------------------------------------------------------- document


def parse(text: str, *, base_url: str | None = None) -> Document:
    """The blocks of a Markdown or plain-text FAQ."""
    prepared = _prepare(text)
    raw = _indented_code(_summaries(_split_qa(_blocks(prepared.lines))))
    ctx = _Inline(base_url, prepared.refs)
    title = prepared.title
    draft: list[Block] = []
    for block in raw:
        if block.kind == "heading":
            heading = _plain_inline(block.text)
            if title is None and block.level == 1:
                title = heading
            heading = _QUESTION_PREFIX.sub("", heading)  # "## 2. How do I pay?"
            draft.append(Block("heading", heading, block.line, level=block.level))
        elif block.kind == "summary":
            draft.append(Block("question", block.text, block.line))
        elif block.kind in ("para", "code"):
            ask = _ask(block)
            draft.append(Block("text", "", block.line, ask=ask, code=block.kind == "code"))
    mode, _ = question_mode(draft)
    join_lines = mode != "plain"
    blocks: list[Block] = []
    texts = iter(b for b in raw if b.kind in ("para", "code"))
    for block in draft:
        if block.kind == "text":
            source = next(texts)
            block.text = _render(source, ctx, join_lines=join_lines)
            if not block.text.strip() and not block.ask:
                continue
        blocks.append(block)
    return Document(blocks, title=title, notes=prepared.notes)
