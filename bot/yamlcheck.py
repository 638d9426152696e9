"""Checking a YAML document node by node, with the line of every problem.

Usage::

    root = compose(text, path)          # KnowledgeError: not YAML, an alias, a non-core tag
    c = Checker(path)
    fields = c.mapping(root, "the file")
    title = c.text(fields["title"][1], "title")
    if c.problems:
        raise KnowledgeError(c.problems)

Only YAML's safe subset is accepted (no tags beyond the core schema); anchors and aliases are
refused, which also rules out "billion laughs" files. :mod:`bot.knowledge` builds the
knowledge file's schema on this.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from bot.errors import KnowledgeError, Problem

__all__ = ["Checker", "compose"]

try:  # libyaml's composer is several times faster; same safe semantics
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def compose(text: str, path: str) -> yaml.Node | None:
    """The node tree of ``text`` (None when it holds no document); raises
    :class:`KnowledgeError` (with the line) when it is not YAML or uses an alias or a tag
    outside the core schema."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise KnowledgeError.single(path, _yaml_line(exc), f"not valid YAML: {_yaml_reason(exc)}") from None
    if root is not None and _may_have_alias_or_tag(text):
        _refuse_aliases_and_tags(root, path)
    return root


class Checker:
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
