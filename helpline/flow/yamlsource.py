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


# Bounds for hostile files. A YAML alias repeats its anchor's whole subtree, so nine lines of
# aliases can stand for a billion values ("billion laughs"); an alias inside its own anchor
# never ends. What aliases add is capped (their count and the values they expand to), as
# are nesting and the size of the text; past a bound the file is refused at its line.
MAX_CHARS = 16 * 1024 * 1024  # a flow file is a few KB; the directory's YAML form, < 1 MB
MAX_ALIASES = 1_000  # uses of an anchor (*name)
MAX_ALIAS_VALUES = 10_000  # values added by expanding aliases, all together
MAX_NESTING = 100  # mappings and lists inside each other (a flow needs about 8)


def load_located(text: str, max_chars: int = MAX_CHARS) -> Located:
    """Parse one YAML document safely, keeping positions and noticing duplicate keys.

    Only plain YAML is read (no Python objects, no tags beyond the standard ones), and a
    hostile file (an alias bomb, a self-referring alias, nesting or text past the bounds
    above) is refused with a YamlSyntaxError at its line, in time linear in its size."""
    if len(text) > max_chars:
        raise YamlSyntaxError(f"YAML: the file is larger than {max_chars // (1024 * 1024)} MB; "
                              "split it into smaller files", Position(1, 1))
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
    except RecursionError as exc:  # PyYAML's pure-Python composer, without libyaml
        raise YamlSyntaxError(f"YAML: nested more than {MAX_NESTING} levels deep; "
                              "flatten the file", Position(1, 1)) from exc
    located = Located(data=None)
    if root is None:
        return located
    constructor = yaml.SafeLoader("")
    built: set[int] = set()  # nodes built once; building one again is an alias use
    open_nodes: set[int] = set()  # the mappings and lists being built, outermost first
    budget = _AliasBudget()

    def scalar(node: yaml.Node) -> Any:
        return constructor.construct_object(node, deep=True)

    def build(node: yaml.Node, path: Path, depth: int, expanding: bool) -> Any:
        key = id(node)
        if key in open_nodes:
            raise YamlSyntaxError("YAML: an alias refers to the value it is part of, which "
                                  "never ends; write the value out instead", _pos(node))
        if key in built and not expanding:  # an alias (inside one, its anchor's values)
            expanding = True
            budget.use(node)
        built.add(key)
        if expanding:
            budget.expand(node)
        located.positions.setdefault(path, _pos(node))
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return scalar(node)
        if depth >= MAX_NESTING:
            raise YamlSyntaxError(f"YAML: nested more than {MAX_NESTING} levels deep; "
                                  "flatten this part", _pos(node))
        open_nodes.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                return [build(item, (*path, i), depth + 1, expanding)
                        for i, item in enumerate(node.value)]
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlSyntaxError("YAML: a key must be plain text, not a list or a "
                                          "mapping; write it as text", _pos(key_node))
                name = scalar(key_node)
                if not isinstance(name, (str, int, float, bool)) or name is None:
                    name = str(name)
                child: Path = (*path, str(name) if not isinstance(name, int) else name)
                if name in out:
                    located.duplicates.append((child, _pos(key_node)))
                located.positions[child] = _pos(key_node)
                out[name] = build(value_node, child, depth + 1, expanding)
            return out
        finally:
            open_nodes.discard(key)

    try:
        located.data = build(root, (), 0, False)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML: {exc}", _pos(root)) from exc
    return located


@dataclass
class _AliasBudget:
    aliases: int = 0
    values: int = 0

    def use(self, node: yaml.Node) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise YamlSyntaxError(f"YAML: more than {MAX_ALIASES} aliases (*name); write the "
                                  "values out instead of repeating an anchor", _pos(node))

    def expand(self, node: yaml.Node) -> None:
        self.values += 1
        if self.values > MAX_ALIAS_VALUES:
            raise YamlSyntaxError(f"YAML: aliases here expand to more than {MAX_ALIAS_VALUES} "
                                  "values (an alias bomb?); write the values out instead of "
                                  "repeating an anchor", _pos(node))
