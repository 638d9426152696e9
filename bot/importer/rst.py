"""reStructuredText FAQs as blocks (see :mod:`bot.importer.common`), parsed with docutils.

Section titles are headings (top-level sections are level 1, theirs level 2, and so on; a lone
top-level section is the document's title); :func:`bot.importer.common.build` picks the level that holds the
questions. A question is its title as written (``literal`` markup kept, roles as their text).

Sphinx's roles and directives, unknown to docutils, are read sensibly rather than reported as
errors: a role such as :ref:`label <target>` or :doc:`/users/config` is its text (the label,
else the target); code-like roles (:option:, :envvar:, :file:, ...) are `code`. ``code-block``
and ``sourcecode`` are code blocks, ``seealso`` and ``versionadded`` and their kind become a
paragraph ("See also: ..."), and any other directive keeps its content. ``image``, ``toctree``,
``contents``, comments and docutils' own error messages are left out and reported.

Answers are written as described in :mod:`bot.importer.common`: ``*strong*``, ``_emphasis_``,
`` `literal` ``, fenced code, ``•`` and ``1.`` lists, footnotes as ``[1]``.
"""

from __future__ import annotations

import io
import re
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Directive, Parser, directives, languages, roles
from docutils.utils import new_document, unescape

from bot.importer.common import Block, Document, Note, clip, link

__all__ = ["parse"]

# roles whose text reads as code; any other role unknown to docutils reads as plain text
_CODE_ROLES = {
    "option", "envvar", "file", "command", "program", "samp", "kbd", "makevar", "mailheader",
    "regexp", "func", "meth", "class", "attr", "data", "const", "exc", "obj", "mod", "opt",
}
_ROLE_USE = re.compile(r"(?<![\w`]):((?:[A-Za-z][\w.+-]*:)*[A-Za-z][\w.+-]*):`")
_DIRECTIVE_USE = re.compile(r"(?m)^\s*\.\.\s+([A-Za-z][\w:.+-]*)::")
_ROLE_TEXT = re.compile(r":(?:[A-Za-z][\w.+-]*:)+`((?:[^`\\]|\\.)+)`")
_EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]*)>$", re.S)


def _role_label(text: str) -> str:
    """A Sphinx role's visible text: the label of ``label <target>``, else the target."""
    text = unescape(text)
    explicit = _EXPLICIT.match(text)
    if explicit and explicit.group(1):
        return explicit.group(1).strip()
    text = text.lstrip("!")
    if text.startswith("~"):  # ~pkg.mod.func shows "func"
        text = text[1:].rsplit(".", 1)[-1]
    return text.strip()


def _sphinx_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                 options: Any = None, content: Any = None) -> tuple[list[nodes.Node], list]:
    label = _role_label(text)
    code = name.rsplit(":", 1)[-1] in _CODE_ROLES and not _EXPLICIT.match(unescape(text))
    node: nodes.Node = nodes.literal(rawtext, label) if code else nodes.inline(rawtext, label)
    return [node], []


class _AnyOptions(dict):
    """An option spec accepting every option (their values are not used)."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


class _CodeBlock(Directive):
    """``code-block``/``sourcecode``/``code``: the content as a literal block, options ignored."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = _AnyOptions()

    def run(self) -> list[nodes.Node]:
        text = "\n".join(self.content)
        node = nodes.literal_block(text, text)
        node.line = self.lineno
        return [node]


class _Labelled(Directive):
    """``seealso``, ``versionadded``..: a paragraph "Label: argument content"."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    labels = {
        "seealso": "See also", "versionadded": "New in version", "versionchanged":
        "Changed in version", "deprecated": "Deprecated since version",
        "versionremoved": "Removed in version",
    }

    def run(self) -> list[nodes.Node]:
        container = nodes.container(classes=["labelled"])
        container["label"] = self.labels.get(self.name, self.name)
        text = self.arguments[0] if self.arguments else ""
        if self.name != "seealso":  # "versionadded:: 1.2 text": the version, then text
            version, text = ([*text.split(None, 1), "", ""])[:2]
            container["argument"] = version
        if text.strip():
            inline, messages = self.state.inline_text(" ".join(text.split()), self.lineno)
            container += nodes.paragraph(text, "", *inline, *messages)
        self.state.nested_parse(self.content, self.content_offset, container)
        container.line = self.lineno
        return [container]


class _Lenient(Directive):
    """A directive that takes any arguments, options and content."""

    has_content = True
    optional_arguments = 99
    final_argument_whitespace = True
    option_spec = _AnyOptions()


class _Dropped(_Lenient):
    """``toctree``, ``index``, ``highlight``...: nothing a reader of the answer needs."""

    def run(self) -> list[nodes.Node]:
        node = nodes.comment("", "")
        node["dropped_directive"] = self.name
        node.line = self.lineno
        return [node]


class _Generic(_Lenient):
    """Any other directive docutils does not know: its content, parsed as body text."""

    def run(self) -> list[nodes.Node]:
        container = nodes.container(classes=["generic"])
        self.state.nested_parse(self.content, self.content_offset, container)
        container.line = self.lineno
        return [container]


_DIRECTIVES: dict[str, type[Directive]] = {
    "code-block": _CodeBlock, "sourcecode": _CodeBlock, "code": _CodeBlock,
    "seealso": _Labelled, "versionadded": _Labelled, "versionchanged": _Labelled,
    "deprecated": _Labelled, "versionremoved": _Labelled,
    "toctree": _Dropped, "index": _Dropped, "highlight": _Dropped, "literalinclude": _Dropped,
    "tabularcolumns": _Dropped, "sectionauthor": _Dropped, "moduleauthor": _Dropped,
    "currentmodule": _Dropped, "module": _Dropped, "default-domain": _Dropped,
}


def _register(text: str) -> None:
    """Make docutils read the Sphinx roles and directives ``text`` uses (a process-wide
    registration, as docutils has no other): the ones above, and every name docutils does not
    know as a role or a directive."""
    for name, cls in _DIRECTIVES.items():
        directives.register_directive(name, cls)
    settings = get_default_settings(Parser)
    settings.report_level, settings.warning_stream = 5, io.StringIO()
    probe = new_document("<probe>", settings)
    english = languages.get_language("en", probe.reporter)
    for name in set(_ROLE_USE.findall(text)):
        if roles.role(name, english, 0, probe.reporter)[0] is None:
            roles.register_local_role(name, _sphinx_role)
    for name in set(_DIRECTIVE_USE.findall(text)):
        if directives.directive(name, english, probe)[0] is None:
            directives.register_directive(name, _Generic)


_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": io.StringIO(),
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "syntax_highlight": "none",
    "input_encoding": "unicode",
    "output_encoding": "unicode",
    "doctitle_xform": False,  # the title is found in document(); docutils' would also
    # promote a lone question under it to a subtitle
    "sectsubtitle_xform": False,
    "docinfo_xform": False,
    "footnote_references": "brackets",
    "smart_quotes": False,
}


def _line(node: nodes.Node) -> int | None:
    for candidate in node.findall(include_self=True):
        line = getattr(candidate, "line", None)
        if line:
            return int(line)
    parent = node.parent
    while parent is not None:
        if getattr(parent, "line", None):
            return int(parent.line)
        parent = parent.parent
    return None


class _Renderer:
    """Walks the doctree, yielding blocks and notes."""

    def __init__(self, base_url: str | None, lines: list[str]) -> None:
        self.base_url = base_url
        self.lines = lines
        self.blocks: list[Block] = []
        self.notes: list[Note] = []

    def directive_line(self, name: str, node: nodes.Node) -> int | None:
        """The line of the ``.. name::`` nearest above the line docutils gives ``node``."""
        line = _line(node) or len(self.lines)
        pattern = re.compile(rf"^\s*\.\.\s+{re.escape(name)}::")
        for n in range(min(line, len(self.lines)) - 1, -1, -1):
            if pattern.match(self.lines[n]):
                return n + 1
        return _line(node)

    # ---- structure

    def document(self, doc: nodes.document) -> str | None:
        """Walk ``doc``; return its title: the title of its one top-level section, if any."""
        for child in doc.children:
            self.body(child, 1)
        top = [child for child in doc.children if isinstance(child, nodes.section)]
        if len(top) == 1 and isinstance(top[0].children[0], nodes.title):
            return _title_text(top[0].children[0])
        return None

    def body(self, node: nodes.Node, depth: int) -> None:
        if isinstance(node, nodes.section):
            for child in node.children:
                if isinstance(child, nodes.title):
                    self.blocks.append(Block("heading", _title_text(child), _title_line(child), level=depth))
                else:
                    self.body(child, depth + 1)
            return
        if isinstance(node, nodes.title):
            return  # the document title, already a heading
        text = self.block(node, 0)
        if text is not None and text.strip():
            code = isinstance(node, nodes.literal_block | nodes.doctest_block)
            self.blocks.append(Block("text", text.strip("\n"), _line(node), code=code))

    # ---- body elements: text, or None for nothing

    def dropped(self, node: nodes.Node) -> bool:
        """True for a node that gives no text: markup without content (targets, substitution
        definitions, raw output, transitions) and what is noted as skipped (comments, the
        table of contents, the document's field list, docutils' own errors)."""
        if isinstance(node, nodes.target | nodes.substitution_definition | nodes.pending | nodes.raw
                      | nodes.transition):
            return True
        if isinstance(node, nodes.system_message):
            if node["level"] >= 3:
                message = node.children[0].astext() if node.children else node.astext()
                line = node.get("line") or _line(node)
                self.notes.append(Note(line, f"reStructuredText: {clip(message, 100)}"))
            return True
        if isinstance(node, nodes.comment):
            if node.get("dropped_directive"):
                self.notes.append(Note(_line(node), f"dropped the {node['dropped_directive']!r} directive"))
            elif node.astext().strip():
                line = _line(node)
                if line:  # docutils gives the line after a comment's last one
                    line = max(1, line - node.astext().count("\n") - 1)
                self.notes.append(Note(line, f"skipped a comment: {clip(node.astext())!r}"))
            return True
        if isinstance(node, nodes.topic) and "contents" in node.get("classes", []):
            self.notes.append(Note(self.directive_line("contents", node), "dropped the table of contents"))
            return True
        if isinstance(node, nodes.docinfo | nodes.field_list) and isinstance(node.parent, nodes.document):
            self.notes.append(Note(_line(node), "skipped the document's field list (metadata)"))
            return True
        return False

    def block(self, node: nodes.Node, indent: int) -> str | None:
        if self.dropped(node):
            return None
        if isinstance(node, nodes.image | nodes.figure):
            uri = node.get("uri") or (node.next_node(nodes.image) or {}).get("uri", "")
            caption = node.next_node(nodes.caption) if isinstance(node, nodes.figure) else None
            line = self.directive_line("figure" if isinstance(node, nodes.figure) else "image", node)
            self.notes.append(Note(line, f"dropped the image {uri!r}"))
            return self.inline(caption) if caption is not None else None
        if isinstance(node, nodes.paragraph | nodes.rubric | nodes.caption):
            return self.inline(node)
        if isinstance(node, nodes.literal_block | nodes.doctest_block):
            return "```\n" + node.astext().strip("\n") + "\n```"
        if isinstance(node, nodes.bullet_list | nodes.enumerated_list):
            return self.list(node, indent)
        if isinstance(node, nodes.definition_list):
            items = []
            for item in node.children:
                term = " ".join(self.inline(t) for t in item.children if isinstance(t, nodes.term))
                definition = item.next_node(nodes.definition)
                body = self.children(definition, indent + 4) if definition is not None else ""
                items.append(f"*{term}*" + ("\n" + _indent(body, 4) if body else ""))
            return "\n".join(items)
        if isinstance(node, nodes.field_list):
            items = []
            for field in node.children:
                name = self.inline(field.children[0])
                body = self.children(field.children[1], indent)
                items.append(f"*{name}:* {body}")
            return "\n".join(items)
        if isinstance(node, nodes.option_list):
            return "\n".join(
                f"`{self.inline(item.children[0])}`: {self.children(item.children[1], indent)}"
                for item in node.children
            )
        if isinstance(node, nodes.line_block):
            return "\n".join(self.inline(line) if isinstance(line, nodes.line) else
                             (self.block(line, indent) or "") for line in node.children)
        if isinstance(node, nodes.block_quote):
            body = self.children(node, indent)
            return "\n".join("> " + line if line else ">" for line in body.split("\n"))
        if isinstance(node, nodes.footnote | nodes.citation):
            label = node.children[0].astext() if node.children else ""
            body = self.children(node, indent, skip=nodes.label)
            return f"[{label}] {body}"
        if isinstance(node, nodes.Admonition):
            kind = type(node).__name__.capitalize()
            title = node.next_node(nodes.title)
            if isinstance(node, nodes.admonition) and title is not None:
                kind = self.inline(title)
            body = self.children(node, indent, skip=nodes.title)
            return f"*{kind}:* {body}"
        if isinstance(node, nodes.container) and "label" in node:
            body = self.children(node, indent)
            argument = node.get("argument", "")
            head = f"{node['label']} {argument}".strip()
            return f"{head}: {body}" if body else head
        if isinstance(node, nodes.table):
            rows = []
            for row in node.findall(nodes.row):
                rows.append(" | ".join(self.children(entry, indent) for entry in row.children))
            return "\n".join(rows)
        if isinstance(node, nodes.Element):
            return self.children(node, indent)
        return node.astext()

    def children(self, node: nodes.Node, indent: int, skip: type | None = None) -> str:
        parts = []
        for child in node.children:
            if skip is not None and isinstance(child, skip):
                continue
            text = self.block(child, indent)
            if text is not None and text.strip():
                parts.append(text.strip("\n"))
        return "\n\n".join(parts)

    def list(self, node: nodes.Element, indent: int) -> str:
        numbered = isinstance(node, nodes.enumerated_list)
        start = int(node.get("start", 1))
        level = sum(1 for a in _ancestors(node) if isinstance(a, nodes.bullet_list | nodes.enumerated_list))
        items = []
        for n, item in enumerate(node.children):
            marker = f"{start + n}." if numbered else ("\u2022" if level == 0 else "\u25e6")
            body = self.children(item, indent)
            pad = " " * (len(marker) + 1)
            lines = body.split("\n")
            items.append(f"{marker} {lines[0]}" + "".join(
                "\n" + (pad + line if line else "") for line in lines[1:]
            ))
        separator = "\n\n" if any("\n\n" in item for item in items) else "\n"
        return separator.join(items)  # a nested list is indented by its item already

    # ---- inline

    def inline(self, node: nodes.Node) -> str:
        text = "".join(self.span(child) for child in node.children)
        return re.sub(r" *\n *", "\n", re.sub(r" {2,}", " ", text)).strip()

    def span(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.Text):
            return re.sub(r"\s+", " ", str(node))
        if isinstance(node, nodes.emphasis):
            return _wrap(self.inline(node), "_")
        if isinstance(node, nodes.strong):
            return _wrap(self.inline(node), "*")
        if isinstance(node, nodes.literal):
            return _wrap(node.astext(), "`")
        if isinstance(node, nodes.reference):
            label = self.inline(node)
            href = node.get("refuri")
            if href:
                return link(label, href, self.base_url)
            return label
        if isinstance(node, nodes.footnote_reference | nodes.citation_reference):
            return f"[{node.astext()}]"
        if isinstance(node, nodes.target | nodes.system_message):
            return "" if isinstance(node, nodes.system_message) else self.inline(node)
        if isinstance(node, nodes.problematic):
            return _ROLE_TEXT.sub(lambda m: _role_label(m.group(1)), node.astext())
        if isinstance(node, nodes.image):
            return node.get("alt", "")
        if isinstance(node, nodes.Element):
            return self.inline(node) if node.children else ""
        return node.astext()


def _wrap(text: str, mark: str) -> str:
    text = text.strip()
    return f"{mark}{text}{mark}" if text else ""


def _indent(text: str, width: int) -> str:
    return "\n".join((" " * width + line) if line else line for line in text.split("\n"))


def _ancestors(node: nodes.Node) -> list[nodes.Node]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def _title_line(title: nodes.title) -> int | None:
    line = _line(title)  # docutils gives the underline's line
    return line - 1 if line and line > 1 else line


def _title_text(title: nodes.title) -> str:
    """A section title as written, with roles as their text."""
    raw = title.rawsource or title.astext()
    return " ".join(_ROLE_TEXT.sub(lambda m: _role_label(m.group(1)), raw).split())


def parse(text: str, *, base_url: str | None = None) -> Document:
    """The blocks of a reStructuredText FAQ."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    _register(text)
    doc = publish_doctree(text, settings_overrides=dict(_SETTINGS, warning_stream=io.StringIO()))
    renderer = _Renderer(base_url, text.split("\n"))
    title = renderer.document(doc)
    return Document(renderer.blocks, title=title, notes=renderer.notes)
