"""Turn an FAQ document into knowledge YAML (``faqbot kb import FILE``).

Usage::

    yaml_text = faq_to_yaml(Path("faq.md").read_text(), filename="faq.md", source="faq.md")
    parsed = parse_faq(Path("faq.rst").read_text(), filename="faq.rst",
                       base_url="https://docs.example.com/faq.html")
    parsed.entries, parsed.notes        # [{"id": ..., "question": ..., "answer": ...}], [Note]
    entries = entries_from_faq_text(Path("faq.txt").read_text())

Formats, picked by the file name's extension and otherwise by the text itself
(:func:`detect_format`):

* ``markdown`` (also plain text): :mod:`bot.importer.markdown`;
* ``rst`` (reStructuredText, Sphinx roles and directives included): :mod:`bot.importer.rst`;
* ``html`` (a page saved from a browser): :mod:`bot.importer.htmlpage`.

Each parser yields blocks; :func:`bot.importer.common.build` picks the questions (headings at one
level, ``<dt>``/``<summary>``, or plain-text question lines), gathers their answers as plain
readable text and reports, as :class:`Note` objects with line numbers, whatever it could not place:
front matter, comments, text before the first question, questions without an answer. None of that
becomes an entry or a phrasing.

The result is served as it is (no ``thresholds:``: the calibrated blend decides from each
entry's question and answer). Every entry gets ``phrasings: []`` with a comment saying they are
optional, and the notes are repeated as comments at the top of the YAML for the maintainer's
review. The core is pure: text in, entries and YAML out; reading files is the CLI's.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from bot.importer.common import (
    MAX_ID_CHARS,
    MAX_QUESTION_CHARS,
    PHRASINGS_COMMENT,
    Note,
    ParsedFaq,
    build,
    render_yaml,
    slugify,
)

__all__ = [
    "FORMATS",
    "MAX_ID_CHARS",
    "MAX_QUESTION_CHARS",
    "PHRASINGS_COMMENT",
    "Note",
    "ParsedFaq",
    "detect_format",
    "entries_from_faq_text",
    "faq_to_yaml",
    "parse_faq",
    "render_yaml",
    "slugify",
]

FORMATS = ("markdown", "rst", "html", "text")

_EXTENSIONS = {
    ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown", ".mkd": "markdown",
    ".mdx": "markdown", ".rst": "rst", ".rest": "rst", ".html": "html", ".htm": "html",
    ".xhtml": "html", ".shtml": "html",
}

_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])", re.I | re.S)
_HTML_BLOCK_TAG = re.compile(r"<(?:p|h[1-6]|div|dt|dd|li|ul|ol|section|article|body|summary)[\s>]",
                             re.I)
_RST_MARKERS = (
    (re.compile(r"(?m)^\.\. [\w:-]+::"), 3),            # directives
    (re.compile(r"(?m)^\.\. _[^:\n]+:"), 3),             # targets
    (re.compile(r":[a-z][\w:.-]*:`[^`\n]+`"), 2),        # roles
    (re.compile(r"``[^`\n]+``"), 1),                     # literals
    (re.compile(r"(?m)^([~^\"'`+*#:])\1{3,}\s*$"), 2),  # title underlines Markdown never uses
    (re.compile(r"`[^`\n]+ <[^>\n]+>`_"), 3),            # links
)
_MD_MARKERS = (
    (re.compile(r"(?m)^#{1,6}\s+\S"), 2),
    (re.compile(r"(?m)^\s{0,3}(?:```|~~~)"), 2),
    (re.compile(r"\[[^\]\n]+\]\([^)\n]+\)"), 2),
    (re.compile(r"\*\*[^*\n]+\*\*"), 1),
)


def detect_format(text: str, filename: str | None = None) -> str:
    """``markdown``, ``rst`` or ``html`` by ``filename``'s extension, else ``text`` or one of
    those three by what ``text`` looks like (a plain-text FAQ parses as Markdown)."""
    if filename:
        fmt = _EXTENSIONS.get(PurePath(filename).suffix.lower())
        if fmt:
            return fmt
    head = text[:20_000]
    if _HTML_START.match(head) or len(_HTML_BLOCK_TAG.findall(head)) >= 5:
        return "html"
    rst = sum(weight * len(p.findall(head)) for p, weight in _RST_MARKERS)
    md = sum(weight * len(p.findall(head)) for p, weight in _MD_MARKERS)
    if rst >= 3 and rst > md:
        return "rst"
    return "markdown" if md else "text"


def parse_faq(
    text: str,
    *,
    fmt: str | None = None,
    filename: str | None = None,
    base_url: str | None = None,
) -> ParsedFaq:
    """Find the title, the questions and their answers in an FAQ.

    Args:
        text: the FAQ document.
        fmt: one of :data:`FORMATS`; by default :func:`detect_format` decides.
        filename: the document's file name, for its extension.
        base_url: where the document is published; relative links and Hugo ``ref``
            shortcodes are resolved against it. Without it they are written as their text.

    Raises:
        ValueError: no question was found, or ``fmt`` is unknown.
    """
    fmt = fmt or detect_format(text, filename)
    if fmt in ("markdown", "text"):
        from bot.importer import markdown

        document = markdown.parse(text, base_url=base_url)
    elif fmt == "rst":
        from bot.importer import rst

        document = rst.parse(text, base_url=base_url)
    elif fmt == "html":
        from bot.importer import htmlpage

        document = htmlpage.parse(text, base_url=base_url)
    else:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    parsed = build(document)
    parsed.format = fmt
    return parsed


def entries_from_faq_text(text: str, **options: Any) -> list[dict[str, Any]]:
    """The entries of an FAQ as knowledge dicts (see :func:`parse_faq` for ``options``)."""
    return parse_faq(text, **options).entries


def faq_to_yaml(
    text: str,
    *,
    title: str | None = None,
    source: str | None = None,
    fmt: str | None = None,
    filename: str | None = None,
    base_url: str | None = None,
) -> str:
    """Knowledge YAML for the FAQ in ``text``, ready for ``faqbot kb check``.

    Usage::

        Path("knowledge/faq.yaml").write_text(faq_to_yaml(Path("faq.md").read_text()))

    Args:
        text: the FAQ document.
        title: the knowledge base's title; by default the document's own (front matter,
            ``#`` heading, rst title or ``<title>``) or a short line of its introduction.
        source: where the FAQ came from (a file name or URL), recorded as ``source:``.
        fmt, filename, base_url: as for :func:`parse_faq`.

    Raises:
        ValueError: no question was found.
    """
    parsed = parse_faq(text, fmt=fmt, filename=filename, base_url=base_url)
    return render_yaml(parsed, title=title, source=source)
