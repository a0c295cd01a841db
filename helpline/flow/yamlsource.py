"""YAML with positions: plain Python data plus the line and column of every key and value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class Located:
    """Data read from one YAML document and where each piece of it stands in the file."""

    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    duplicates: list[tuple[Path, Position]] = field(default_factory=list)

    def position(self, path: Path) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:cut]))
            if found is not None:
                return found
        return Position(1, 1)


class YamlSyntaxError(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# libyaml's parser when PyYAML has it (its wheels do): the same nodes and marks, several
# times faster than the pure-Python one.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


_KEY_LINE = re.compile(r"^\s*(?:- )?[A-Za-z_][A-Za-z0-9_]*:(?:\s|$)")


def _unclosed_quote(text: str, exc: yaml.MarkedYAMLError) -> Position | None:
    """Where a quote that is never closed opens. PyYAML reports where it gave up: the end of
    the file, or (when a later quote "closes" it) some key further down."""
    if exc.context == "while scanning a quoted scalar" and exc.context_mark is not None:
        return Position(exc.context_mark.line + 1, exc.context_mark.column + 1)
    failed = exc.problem_mark
    if failed is None:
        return None
    # The quoted text that swallowed the lines after it: it runs over several lines, and
    # one of them looks like a key. Tokens are read up to the error only.
    suspect: Position | None = None
    lines = text.splitlines()
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line > failed.line:
                break
            if (isinstance(token, yaml.ScalarToken) and token.style in ("'", '"')
                    and token.end_mark.line > token.start_mark.line
                    and any(_KEY_LINE.match(line)
                            for line in lines[token.start_mark.line + 1:token.end_mark.line + 1])):
                suspect = Position(token.start_mark.line + 1, token.start_mark.column + 1)
    except yaml.YAMLError:
        pass
    return suspect


def load_located(text: str) -> Located:
    """Parse one YAML document safely, keeping positions and noticing duplicate keys."""
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = exc.problem or exc.context or "not valid YAML"
        opened = _unclosed_quote(text, exc)
        if opened is not None:
            raise YamlSyntaxError("YAML syntax: a quote opened here is never closed (or it "
                                  "closes lines later, taking the keys in between as text); "
                                  "add the closing quote", opened) from exc
        raise YamlSyntaxError(f"YAML syntax: {problem}", where) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax: {exc}", Position(1, 1)) from exc
    located = Located(data=None)
    if root is None:
        return located
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, path: Path) -> Any:
        located.positions.setdefault(path, _pos(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    key = str(key)
                child: Path = (*path, str(key) if not isinstance(key, int) else key)
                if key in out:
                    located.duplicates.append((child, _pos(key_node)))
                located.positions[child] = _pos(key_node)
                out[key] = build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node, deep=True)

    try:
        located.data = build(root, ())
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML: {exc}", _pos(root)) from exc
    return located
