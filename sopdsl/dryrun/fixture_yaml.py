"""The bounded YAML reading of a fixture: a loader that keeps times as text and refuses documents
past MAX_DEPTH or MAX_ALIAS_VALUES, and a reader from YAML nodes to plain values that notes where
each key and value is (see `sopdsl.dryrun.fixtures`)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from sopdsl.dryrun.fixture_times import MAX_ALIAS_VALUES, MAX_DEPTH
from sopdsl.source import Source


class _Refused(yaml.MarkedYAMLError):
    """A YAML fixture past one of the reader's limits (depth, aliases)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps times as text, so they are read in the fixture's zone, and refuses
    documents nested deeper than MAX_DEPTH or whose aliases repeat more than MAX_ALIAS_VALUES
    values (a "billion laughs" file), before anything is built from them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # a collection node's values, its aliases' counted in
        self._open: set[str] = set()  # anchors whose node is still being read
        self._repeated = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(
                    problem=f"the alias *{event.anchor} is inside its own anchor &{event.anchor}",
                    problem_mark=mark,
                )
            node = super().compose_node(parent, index)
            self._repeated += self._sizes.get(id(node), 1)
            if self._repeated > MAX_ALIAS_VALUES:
                raise _Refused(
                    problem=f"aliases repeat more than {MAX_ALIAS_VALUES:,} values in all; "
                    "write the values out instead",
                    problem_mark=mark,
                )
            return node
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                problem=f"lists and mappings are nested more than {MAX_DEPTH} deep here",
                problem_mark=mark,
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor or "")
        sizes = self._sizes
        if isinstance(node, yaml.MappingNode):
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) + sizes.get(id(v), 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            sizes[id(node)] = 1 + sum(sizes.get(id(item), 1) for item in node.value)
        return node


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

Path_ = tuple[Any, ...]
Where = dict[Path_, tuple[int, int]]


class _Reader:
    """YAML nodes to plain values, with where each key and value is; a key or value that cannot
    be read is noted (with its place) and left out, so the rest of the file is still checked."""

    def __init__(self, loader: _Loader, source: Source) -> None:
        self.loader = loader
        self.source = source
        self.keys: Where = {}  # each mapping entry's key; a list item's start
        self.values: Where = {}  # each value's start
        self.problems: list[tuple[str, tuple[int, int]]] = []
        self.broken: set[Path_] = set()  # where a noted value was left out

    def at(self, mark: Any) -> tuple[int, int]:
        """A YAML mark's line and column as the source counts them (YAML also breaks lines at
        U+0085, U+2028 and U+2029; the source, and so the caret, only at newlines)."""
        return self.source.position(mark.index)

    def read(self, node: yaml.Node, path: Path_) -> Any:
        self.keys[path] = self.values[path] = self.at(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                at = self.at(key_node.start_mark)
                shown = ".".join(str(p) for p in path)
                if not isinstance(key_node, yaml.ScalarNode):
                    what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                    self.problems.append(
                        (f"{shown + ': ' if shown else ''}a key is a word, not {what} (`? [a, b]`)", at)
                    )
                    continue  # the entry is left out; the rest of the mapping is still checked
                key = self._scalar(key_node, path, key=True)
                if key is _UNREADABLE:
                    continue
                if not isinstance(key, str | int | float | bool | None):  # `!!set k`, `!!timestamp ...`
                    self.problems.append((f"{shown + ': ' if shown else ''}a key is a word, not {key!r}", at))
                    continue
                result[key] = self.read(value_node, (*path, key))
                self.keys[(*path, key)] = at
                if result[key] is _UNREADABLE:
                    del result[key]
            return result
        if isinstance(node, yaml.SequenceNode):
            items = [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
            return [None if item is _UNREADABLE else item for item in items]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_, key: bool = False) -> Any:
        try:
            value = self.loader.construct_object(node)
        except Exception as exc:
            # An explicit tag the text does not fit (`!!float abc`, `!!int ''`, `!!timestamp x`),
            # or a tag with no constructor (`<<` outside a mapping, `!!python/...`).
            shown = ".".join(str(p) for p in path)
            problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self.problems.append(
                (
                    f"{shown + ': ' if shown else ''}cannot read '{node.value}' as {node.tag}: {problem}",
                    self.at(node.start_mark),
                )
            )
            if not key:
                self.broken.add(path)
            return _UNREADABLE
        if isinstance(value, str) and _SURROGATE.search(value):
            # `"\ud800"` escapes half of a UTF-16 pair: no text can hold it, nor can any bot send it.
            shown = ".".join(str(p) for p in path)
            self.problems.append(
                (
                    f"{shown + ': ' if shown else ''}the text holds a lone surrogate (an escape such as "
                    "'\\ud800' that is half of a character); write the character itself",
                    self.at(node.start_mark),
                )
            )
            # Kept, with the halves replaced, so no follow-on error hides this one.
            return _SURROGATE.sub("\ufffd", value)
        return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_UNREADABLE = object()  # a value the reader could not build (its problem is noted)


def _lookup(where: Where, path: Path_) -> tuple[int, int]:
    while path and path not in where:
        path = path[:-1]
    return where.get(path, (1, 1))
