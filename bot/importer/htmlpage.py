"""HTML FAQ pages (as saved from a browser) as blocks (see :mod:`bot.importer.common`).

Read with the standard library's :class:`html.parser.HTMLParser`, which copes with what browsers
accept (unclosed ``<p>`` and ``<li>``, stray end tags) and decodes entities.

* Page chrome is dropped: ``<head>`` (its ``<title>`` is the knowledge title), ``<nav>``,
  ``<header>`` and ``<footer>`` (the page's, not an ``<article>``'s), ``<aside>``,
  ``<script>``, ``<style>``, ``<noscript>``, ``<template>``, forms, buttons outside questions,
  and elements whose role (navigation, banner, contentinfo, complementary, search) or class/id
  (toc, sidebar, breadcrumb, menu, navbar, sr-only...) says they are.
  When the page has a ``<main>``, only its content is read.
* Questions: ``<h1>``..``<h6>`` headings (the level is chosen as for Markdown), ``<dt>`` terms
  with their ``<dd>`` definitions, and ``<details>`` with their ``<summary>``. A paragraph that
  is only a bold question (``<p><strong>Is it free?</strong></p>``) counts as a question in a
  page without headings.
* Answers: paragraphs, lists (``•``, ``1.``), ``<pre>`` as code blocks, ``<code>`` as
  `` `code` ``, ``<strong>``/``<b>`` as ``*bold*``, ``<em>``/``<i>`` as ``_italic_``, ``<br>`` as a
  line break, table rows as ``cell | cell`` lines, links as in :mod:`bot.importer.common`. Images
  are dropped. HTML comments are reported.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from bot.importer.common import Block, Document, Note, ask_of, clip, link

__all__ = ["parse"]

_CHROME_TAGS = {
    "head", "nav", "header", "footer", "aside", "script", "style", "noscript", "template",
    "form", "button", "select", "svg", "iframe", "object", "canvas", "dialog", "menu",
}
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu",
                 "menubar", "toolbar"}
_CHROME_NAMES = re.compile(
    r"(?:^|[\s_-])(?:toc|table-of-contents|tableofcontents|sidebar|side-bar|breadcrumbs?|"
    r"menu|navbar|nav|navigation|skip-link|skiplink|site-header|site-footer|masthead|"
    r"cookie-banner|cookies?|sr-only|visually-hidden|screen-reader-text)(?:$|[\s_-])",
    re.I,
)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}
_BLOCKS = {"p", "div", "section", "article", "main", "blockquote", "figure", "figcaption",
           "address", "center", "body", "html", "fieldset", "hgroup"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_MARKS = {"strong": "*", "b": "*", "em": "_", "i": "_", "code": "`", "kbd": "`", "samp": "`",
          "tt": "`", "var": "_", "cite": "_", "del": "~", "s": "~", "strike": "~"}


class _Parser(HTMLParser):
    def __init__(self, base_url: str | None, only_main: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.only_main = only_main
        self.main_depth = 0
        self.articles = 0  # open <article>/<section> elements
        self.quotes = 0  # open <blockquote> elements
        self.blocks: list[Block] = []
        self.notes: list[Note] = []
        self.title: str | None = None
        self.in_title = False
        self.title_parts: list[str] = []
        self.skip: list[str] = []  # the chrome element being skipped, and nested same tags
        self.buf: list[str] = []  # inline text of the current paragraph
        self.buf_line: int | None = None
        self.marks: list[tuple[str, int, str]] = []  # open inline markup: (tag, buf index, href)
        self.heading: int = 0  # level of the open heading
        self.question = False  # inside <dt> or <summary>
        self.pre = 0
        self.pre_parts: list[str] = []
        self.pre_line: int | None = None
        self.lists: list[list] = []  # open lists: [tag, next number]
        self.item_prefix = ""  # "• " / "1. " waiting for the item's first text
        self.list_lines: list[str] = []
        self.list_line: int | None = None
        self.row: list[str] = []
        self.in_cell = False
        self.table_lines: list[str] = []
        self.table_line: int | None = None

    # ---- helpers

    @property
    def active(self) -> bool:
        return not self.skip and (not self.only_main or self.main_depth > 0)

    def line(self) -> int:
        return self.getpos()[0]

    def flush(self) -> None:
        """End the current paragraph (or heading, question, list item, cell)."""
        self.marks.clear()
        text = "".join(self.buf)
        self.buf = []
        line = self.buf_line
        self.buf_line = None
        text = "\n".join(" ".join(part.split()) for part in text.split("\n")).strip()
        text = re.sub(r"\n{3,}", "\n\n", text)
        if self.heading:
            text = text.rstrip("¶#§🔗 ").strip()
            self.blocks.append(Block("heading", text.replace("\n", " "), line, level=self.heading))
            return
        if self.question:
            text = re.sub(r"^\*(.+)\*$", r"\1", text.replace("\n", " ")).strip()
            if text:
                self.blocks.append(Block("question", text, line))
            return
        if self.in_cell:
            if text:
                self.row.append(text)
            return
        if not text:
            return  # a list item's marker waits for the item's first text
        if self.lists:
            depth = len(self.lists) - 1
            indent = "    " * depth
            if self.item_prefix:
                text = self.item_prefix + text
                self.item_prefix = ""
            else:
                text = "  " + text
            self.list_lines.append(indent + text.replace("\n", "\n" + indent + "  "))
            if self.list_line is None:
                self.list_line = line
            return
        if text and self.quotes:
            self.blocks.append(Block("text", "\n".join("> " + part for part in text.split("\n")), line))
        elif text:
            self.blocks.append(Block("text", text, line, ask=ask_of(text)))

    def end_list(self) -> None:
        self.flush()
        if self.lists:
            self.lists.pop()
        if not self.lists and self.list_lines:
            self.blocks.append(Block("text", "\n".join(self.list_lines), self.list_line))
            self.list_lines, self.list_line = [], None

    def end_table(self) -> None:
        self.end_row()
        if self.table_lines:
            self.blocks.append(Block("text", "\n".join(self.table_lines), self.table_line))
            self.table_lines, self.table_line = [], None

    def end_row(self) -> None:
        self.flush_cell()
        if self.row:
            if self.table_line is None:
                self.table_line = self.line()
            self.table_lines.append(" | ".join(self.row))
            self.row = []

    def flush_cell(self) -> None:
        if self.in_cell:
            self.flush()
            self.in_cell = False

    def text(self, data: str) -> None:
        if not data:
            return
        if self.buf_line is None and data.strip():
            self.buf_line = self.line()
        self.buf.append(data)

    # ---- events

    def is_chrome(self, tag: str, attr: dict[str, str], names: str) -> bool:
        """Whether the element is page chrome (navigation, banners, hidden parts): skipped with
        everything inside it."""
        chrome = tag in _CHROME_TAGS
        if tag in ("header", "footer") and self.articles:
            chrome = False  # an article's own header holds its heading
        if tag == "button" and (self.heading or self.question):
            chrome = False  # accordion FAQs put the question in a button
        return bool(chrome or attr.get("role") in _CHROME_ROLES
                    or attr.get("aria-hidden") == "true" or "hidden" in attr
                    or (tag not in _HEADINGS and tag not in ("p", "li", "dt", "dd", "a", "span")
                        and _CHROME_NAMES.search(names)))

    def start_item(self) -> None:
        """A list item: its number in an ordered list, else a bullet (a hollow one when nested)."""
        self.flush()
        if not self.lists:
            self.lists.append(["ul", 1])
        kind = self.lists[-1]
        if kind[0] == "ol":
            self.item_prefix = f"{kind[1]}. "
            kind[1] += 1
        else:
            self.item_prefix = "\u2022 " if len(self.lists) == 1 else "\u25e6 "

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "title" and self.title is None:
            self.in_title = True
            return
        if self.skip:
            if tag == self.skip[0] and tag not in _VOID:
                self.skip.append(tag)
            return
        if tag == "main":
            self.main_depth += 1
            return
        if self.only_main and not self.main_depth:
            return
        names = f"{attr.get('class', '')} {attr.get('id', '')}"
        if tag in ("article", "section"):
            self.articles += 1
        if tag == "blockquote":
            self.flush()
            self.quotes += 1
        if self.is_chrome(tag, attr, names):
            if tag not in _VOID:
                self.flush()
                self.skip.append(tag)
            return
        if self.pre:
            if tag == "pre":
                self.pre += 1
            elif tag == "br":
                self.pre_parts.append("\n")
            return
        if tag in _HEADINGS:
            self.close_paragraph()
            self.heading = _HEADINGS[tag]
        elif tag in ("dt", "summary"):
            self.close_paragraph()
            self.question = True
        elif tag == "dd":
            self.close_paragraph()
        elif tag in ("ul", "ol", "menu"):
            self.flush()
            start = attr.get("start", "1")
            self.lists.append([tag, int(start) if start.isdigit() else 1])
        elif tag == "li":
            self.start_item()
        elif tag == "pre":
            self.flush()
            self.pre = 1
            self.pre_parts = []
            self.pre_line = self.line()
        elif tag == "table":
            self.close_paragraph()
            self.table_line = None
        elif tag == "tr":
            self.end_row()
        elif tag in ("td", "th"):
            self.flush_cell()
            self.in_cell = True
        elif tag in _BLOCKS or tag in ("dl", "details", "hr"):
            self.flush()
        elif tag == "br":
            self.text("\n")
        elif tag == "img":
            return
        elif tag == "a":
            self.marks.append((tag, len(self.buf), attr.get("href", "")))
        elif tag in _MARKS:
            self.marks.append((tag, len(self.buf), ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def close_paragraph(self) -> None:
        """Before a heading, question or block that ends lists and tables too."""
        self.flush()
        self.heading = 0  # an unclosed heading or question ends here
        self.question = False
        while self.lists:
            self.end_list()
        self.end_table()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.title = " ".join("".join(self.title_parts).split()) or None
            return
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if tag == "main":
            self.flush()
            self.main_depth = max(0, self.main_depth - 1)
            return
        if tag in ("article", "section"):
            self.articles = max(0, self.articles - 1)
        if tag == "blockquote" and not self.pre:
            self.flush()
            self.quotes = max(0, self.quotes - 1)
        if self.only_main and not self.main_depth:
            return
        if self.pre:
            if tag == "pre":
                self.pre -= 1
                if not self.pre:
                    code = "".join(self.pre_parts).strip("\n")
                    if code.strip():
                        self.flush()
                        text = "```\n" + code + "\n```"
                        if self.lists:
                            self.list_lines.append(text)
                        else:
                            self.blocks.append(Block("text", text, self.pre_line, code=True))
            return
        if tag in _HEADINGS and self.heading:
            self.flush()
            self.heading = 0
        elif tag in ("dt", "summary") and self.question:
            self.flush()
            self.question = False
        elif tag in ("ul", "ol", "menu"):
            self.end_list()
        elif tag == "li":
            self.flush()
        elif tag == "table":
            self.end_table()
        elif tag == "tr":
            self.end_row()
        elif tag in ("td", "th"):
            self.flush_cell()
        elif tag in _BLOCKS or tag in ("dd", "dl", "details"):
            self.flush()
        elif tag == "a" or tag in _MARKS:
            self.close_mark(tag)

    def close_mark(self, tag: str) -> None:
        for n in range(len(self.marks) - 1, -1, -1):
            if self.marks[n][0] == tag:
                break
        else:
            return
        _, start, href = self.marks.pop(n)
        del self.marks[n:]
        inner = "".join(self.buf[start:])
        del self.buf[start:]
        lead = inner[: len(inner) - len(inner.lstrip())]
        trail = inner[len(inner.rstrip()):]
        core = " ".join(inner.split())
        if self.heading or self.question:
            out = core  # a question is plain text
        elif tag == "a":
            out = link(core, href, self.base_url) if href else core
        elif core:
            mark = _MARKS[tag]
            out = f"{mark}{core}{mark}"
        else:
            out = ""
        self.buf.append(lead + out + trail)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if not self.active:
            return
        if self.pre:
            self.pre_parts.append(data)
            return
        self.text(data.replace("\n", " "))

    def handle_comment(self, data: str) -> None:
        if not self.skip:
            self.notes.append(Note(self.line(), f"skipped an HTML comment: {clip(data.strip())!r}"))


def parse(text: str, *, base_url: str | None = None) -> Document:
    """The blocks of an HTML FAQ page."""
    text = text.lstrip("\ufeff")
    parser = _read(text, base_url, only_main=re.search(r"<main[\s>]", text, re.I) is not None)
    if parser.only_main and not any(b.kind != "text" for b in parser.blocks):
        parser = _read(text, base_url, only_main=False)  # the questions are outside <main>
    return Document(parser.blocks, title=parser.title, notes=parser.notes)


def _read(text: str, base_url: str | None, *, only_main: bool) -> _Parser:
    parser = _Parser(base_url, only_main)
    parser.feed(text)
    parser.close()
    parser.close_paragraph()
    return parser
