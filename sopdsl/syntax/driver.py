"""The private LALR driver: Lark's own tables and contextual lexer, run in one loop.

It builds each node as its rule is reduced, with the spans Lark's `propagate_positions` would
give, and is well over twice as fast as Lark's parser with the same builders inline (numbers in
`bench/frontend.py --parser`). It runs on `driver_tables.Tables`, what it reads of Lark's
private tables as plain data, cached on disk so that a valid file parses without importing
Lark; that module checks the shape of what it reads and gives up (`Unsupported`) if anything
is not as it expects. The driver recognises builders that only return their first child by
their compiled code (safe: one not recognised is simply called). It lexes with one scanner of
every terminal, asking the parser state's own lexer only when the state does not accept what
that scanner found, and stops (`Fallback`) at the first thing out of the ordinary (a syntax
error, a tree nested too deep). Then, as when it gave up, `sopdsl.syntax.parser` parses with
Lark's own parser, which gives every diagnostic. tests/syntax/test_parser_paths.py checks that
both give equal trees.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sopdsl.gcpause import paused_gc
from sopdsl.source import Span
from sopdsl.syntax import driver_tables
from sopdsl.syntax import nodes as n
from sopdsl.syntax.driver_tables import EXPAND1, INLINE, NODE, START, RuleShape, Tables, Unsupported
from sopdsl.syntax.parser import _BOUNDARY, MAX_DEPTH
from sopdsl.syntax.transformer import RULES, TOKENS, file_node

if TYPE_CHECKING:
    from collections.abc import Callable


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The fast path met something only the reference path may answer: an error, a deep tree."""


# What a reduction does, from the cheapest (INLINE, EXPAND1, NODE and START as Lark's rule
# tells, in `driver_tables`; the others are what the builders make of them).
_SAME = 0  # a unit rule whose child stands for it as it is: only the parser state changes
_WRAP = 1  # `_rule` with one child: the child becomes a list to splice into the parent
_PASS1 = 2  # a one-symbol rule whose builder returns the child: one more tree level
_INLINE = INLINE  # `_rule`: its children are spliced into the parent's
_EXPAND1 = EXPAND1  # `?rule`: its only child stands for it, else a node as below
_PASS = 5  # a rule whose builder returns its (only kept) child
_NODE = NODE  # a node, from the rule's builder
_START = START  # the file

# Span information carried with each value: (start, line, column, end, end_line, end_column,
# height). The first six are what `propagate_positions` puts in a tree's meta (for a value that
# stands for an inlined or expanded rule: its `container_*` fields); height counts the tree
# levels Lark's tree would have below, so a tree nested too deep is caught without it. None is
# an empty meta: a rule that matched no text.
_Meta = tuple[int, int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Rule:
    """What to do when a rule is reduced."""

    size: int  # symbols popped
    origin: str  # the nonterminal to go to afterwards
    how: int
    # Children kept, as lark's child filter keeps them: None keeps all; a tuple of ints keeps
    # those positions; a list of (position, splice, Nones before) does it all.
    keep: tuple[int, ...] | list[tuple[int, bool, int]] | None
    trailing: int  # Nones after the last child (`[x]` placeholders)
    build: Callable[..., Any] | None


class FastParser:
    """Lark's LALR tables and contextual lexer, driven in one loop that builds nodes directly."""

    def __init__(self, tables: Tables) -> None:
        self.rules = tuple(_rule(shape) for shape in tables.rules)
        self.actions = tuple(tables.actions)
        self.start = tables.start
        self.ignore = frozenset(tables.ignore)
        self.flags = tables.flags
        self.newline_types = frozenset(tables.newline_types)
        self.keywords = tables.keywords
        self.terminals = tables.terminals
        self.callback_states = frozenset(tables.callback_states)
        # One scanner over every terminal, tried first (see `_parse`); a state's own, built on
        # first use, only where its token is one the state does not accept.
        whole = _pattern(self.terminals, self.keywords)
        if whole is None:
            raise Unsupported("keywords apart")
        self.match_any: Callable[..., re.Match[str] | None] = re.compile(whole, self.flags).match
        self.matchers: list[Callable[..., re.Match[str] | None] | None] = [None] * len(self.actions)
        self.span = _span_factory()

    def _matcher(self, state: int) -> Callable[..., re.Match[str] | None]:
        """The lexer of one parser state: Lark's, with its keywords merged into one branch."""
        if state in self.callback_states:
            raise Fallback  # a lexer this loop does not imitate: let Lark lex
        row = self.actions[state]
        pattern = _pattern([t for t in self.terminals if t[0] in row or t[0] in self.ignore], self.keywords)
        if pattern is None:
            raise Fallback
        match: Callable[..., re.Match[str] | None] = re.compile(pattern, self.flags).match
        self.matchers[state] = match
        return match

    @paused_gc
    def parse(self, path: str, text: str) -> n.File:
        """Parse `text` into a file node; raise `Fallback` if the reference path must answer."""
        return self._parse(path, text)

    def _parse(self, path: str, text: str) -> n.File:
        actions = self.actions
        rules = self.rules
        matchers = self.matchers
        match_any = self.match_any
        callback_states = self.callback_states
        ignore = self.ignore
        keywords = self.keywords
        newline_types = self.newline_types
        tokens = TOKENS
        new_span = self.span
        states: list[int] = [self.start]
        values: list[Any] = []
        metas: list[_Meta | None] = []
        comments: list[n.Comment] = []
        pos = 0
        line = 1
        line_start = 0
        length = len(text)
        kind = "$END"
        value: Any = None
        meta: _Meta | None = None
        made: _Meta | None
        result: Any
        span: Span
        while True:
            if pos < length:
                # The scanner of every terminal, in the order each state's lexer tries its
                # own: its first match is the state's whenever the state accepts it.
                found = match_any(text, pos)
                if found is None:
                    raise Fallback
                kind = found.lastgroup  # type: ignore[assignment]
                if kind == _KEYWORD_GROUP:
                    kind = keywords[found.group()]
                state = states[-1]
                if (kind not in actions[state] and kind not in ignore) or state in callback_states:
                    found = (matchers[state] or self._matcher(state))(text, pos)
                    if found is None:
                        raise Fallback
                    kind = found.lastgroup  # type: ignore[assignment]
                    if kind == _KEYWORD_GROUP:
                        kind = keywords[found.group()]
                end = found.end()
                column = pos - line_start + 1
                end_line = line
                if kind in newline_types:
                    breaks = text.count("\n", pos, end)
                    if breaks:
                        end_line += breaks
                        line_start = text.rindex("\n", pos, end) + 1
                if kind in ignore:
                    if kind == "COMMENT":
                        span = new_span(path, pos, end, line, column, line, column + end - pos)
                        comments.append(n.Comment(text[pos:end], span))
                    pos = end
                    line = end_line
                    continue
                value = text[pos:end]
                end_column = end - line_start + 1
                build = tokens.get(kind)
                if build is not None:
                    value = build(value, new_span(path, pos, end, line, column, end_line, end_column))
                meta = (pos, line, column, end, end_line, end_column, 0)
                pos = end
                line = end_line
            else:
                kind = "$END"
            # Feed the token: reduce as long as the table says so, then shift it.
            row = actions[states[-1]]
            while True:
                act = row.get(kind)
                if act is None:
                    raise Fallback
                if act >= 0:
                    if kind == "$END":
                        raise Fallback
                    states.append(act)
                    values.append(value)
                    metas.append(meta)
                    break
                rule = rules[~act]
                how = rule.how
                if how == _SAME:
                    goto = actions[states[-2]][rule.origin]
                    states[-1] = goto
                    row = actions[goto]
                    continue
                if how == _WRAP:
                    values[-1] = [values[-1]]
                    goto = actions[states[-2]][rule.origin]
                    states[-1] = goto
                    row = actions[goto]
                    continue
                if how == _PASS1:
                    made = metas[-1]
                    if made is not None:
                        metas[-1] = (made[0], made[1], made[2], made[3], made[4], made[5], made[6] + 1)
                    goto = actions[states[-2]][rule.origin]
                    states[-1] = goto
                    row = actions[goto]
                    continue
                size = rule.size
                if size:
                    popped = values[-size:]
                    del values[-size:]
                    spans = metas[-size:]
                    del metas[-size:]
                    del states[-size:]
                else:
                    popped = []
                    spans = []
                keep = rule.keep
                if keep is None:
                    children = popped
                elif type(keep) is tuple:
                    children = [popped[i] for i in keep]
                else:
                    children = _filter(popped, keep, rule.trailing)  # type: ignore[arg-type]
                fresh = how >= _PASS or (how == _EXPAND1 and len(children) != 1)
                # The meta propagate_positions gives: from the first child with one to the last.
                if size == 1:
                    first = spans[0]
                    if first is None or not fresh:
                        made = first
                    else:
                        made = (first[0], first[1], first[2], first[3], first[4], first[5], first[6] + 1)
                elif size == 0:
                    made = None
                else:
                    first = last = None
                    height = 0
                    for item in spans:
                        if item is not None:
                            if first is None:
                                first = item
                            last = item
                            if item[6] > height:
                                height = item[6]
                    if first is None or last is None:
                        made = None
                    else:
                        made = (first[0], first[1], first[2], last[3], last[4], last[5], height + fresh)
                if how == _INLINE:
                    result = children
                elif not fresh or how == _PASS:
                    result = children[0]
                else:
                    if made is None:
                        span = Span.point(path)
                    else:
                        span = new_span(path, made[0], made[3], made[1], made[2], made[4], made[5])
                    if how == _START:
                        if made is not None and made[6] > MAX_DEPTH + 1:
                            raise Fallback  # too deep: the reference path reports where
                        return file_node(path, span or Span.point(path), children, tuple(comments))
                    result = rule.build(span, children)  # type: ignore[misc]
                states.append(actions[states[-1]][rule.origin])
                values.append(result)
                metas.append(made)
                row = actions[states[-1]]


_KEYWORD_GROUP = "keyword"  # lark's terminal names are upper case: this one never clashes


def _pattern(terminals: list[tuple[str, str]], keywords: dict[str, str]) -> str | None:
    """One regex of terminals tried in order, the keywords among them merged into one branch;
    None if the keywords do not stand together."""
    # The scanner tries its terminals in order. Keywords all have one priority, so they stand
    # together; each is a word followed by no word character, so at most one of them matches
    # anywhere, and one branch of all of them matches the same text.
    names = set(keywords.values())
    marks = [name in names for name, _ in terminals]
    branches = terminals
    if any(marks):
        first = marks.index(True)
        last = len(marks) - 1 - marks[::-1].index(True)
        if not all(marks[first : last + 1]):
            return None
        kept = {name for name, _ in terminals[first : last + 1]}
        words = sorted((w for w, name in keywords.items() if name in kept), key=lambda w: (-len(w), w))
        initials = "".join(sorted({re.escape(w[0]) for w in words}))
        merged = f"(?=[{initials}])(?:{'|'.join(map(re.escape, words))}){_BOUNDARY}"
        branches = [*terminals[:first], (_KEYWORD_GROUP, merged), *terminals[last + 1 :]]
    return "|".join(f"(?P<{name}>{regexp})" for name, regexp in branches)


def _span_factory() -> Callable[[str, int, int, int, int, int, int], Span]:
    """`Span(...)`, made about three times faster by setting its slots directly.

    `Span` is a frozen dataclass: its `__init__` sets each field through `object.__setattr__`.
    Slot descriptors do the same work with less overhead. Checked against the real constructor,
    and not used if `Span` ever stops being a plain slotted class.
    """
    names = ("path", "start", "end", "line", "column", "end_line", "end_column")
    try:
        setters = [Span.__dict__[name].__set__ for name in names]
    except (KeyError, AttributeError):
        return Span
    if [f.name for f in dataclasses.fields(Span)] != list(names) or hasattr(Span, "__post_init__"):
        return Span
    new = object.__new__
    path_, start_, end_, line_, column_, end_line_, end_column_ = setters

    def make(path: str, start: int, end: int, line: int, column: int, end_line: int, end_column: int) -> Span:
        span: Span = new(Span)
        path_(span, path)
        start_(span, start)
        end_(span, end)
        line_(span, line)
        column_(span, column)
        end_line_(span, end_line)
        end_column_(span, end_column)
        return span

    sample = ("p", 1, 2, 3, 4, 5, 6)
    if make(*sample) != Span(*sample) or repr(make(*sample)) != repr(Span(*sample)):
        return Span
    return make


def _filter(popped: list[Any], keep: list[tuple[int, bool, int]], trailing: int) -> list[Any]:
    # lark's ChildFilterLALR: anonymous tokens dropped, `_rule` children spliced in, `[x]`
    # placeholders inserted as None.
    children: list[Any] = []
    for i, splice, nones in keep:
        if nones:
            children.extend([None] * nones)
        if splice:
            if children:
                children.extend(popped[i])
            else:
                children = popped[i]  # reuse the spliced list: cheap left recursion
        else:
            children.append(popped[i])
    if trailing:
        children.extend([None] * trailing)
    return children


def _first_child(self: object, span: Span | None, children: list[Any]) -> Any:
    return children[0]


def _is_first_child(build: Any) -> bool:
    """Whether a builder is just `return children[0]` (compared by its compiled code)."""
    code = getattr(getattr(build, "__func__", build), "__code__", None)
    reference = _first_child.__code__
    return code is not None and (code.co_code, code.co_consts, code.co_names) == (
        reference.co_code,
        reference.co_consts,
        reference.co_names,
    )


def _rule(shape: RuleShape) -> _Rule:
    """The reduction of one rule: its shape in Lark's tables, joined with its builder."""
    size, origin, how, spec, trailing, name = shape
    keep: tuple[int, ...] | list[tuple[int, bool, int]] | None
    if trailing or any(splice or before for _, splice, before in spec):
        keep = spec
    elif len(spec) == size:
        keep = None
    else:
        keep = tuple(i for i, _, _ in spec)
    build = None
    if how in (_NODE, _EXPAND1):
        build = RULES.get(name)
        if build is None:
            raise Unsupported(f"no builder for {name}")
        if how == _NODE and _is_first_child(build) and len(spec) == 1:
            how = _PASS
    # The cheapest cases: one symbol, kept as it is.
    if size == 1 and len(spec) == 1 and not trailing and spec[0][2] == 0:
        splice = spec[0][1]
        if (how == _EXPAND1 and not splice) or (how == _INLINE and splice):
            how = _SAME
        elif how == _INLINE:
            how = _WRAP
        elif how == _PASS and not splice:
            how = _PASS1
    return _Rule(size, origin, how, keep, trailing, build)


@functools.cache
def fast_parser() -> FastParser | None:
    """The driver, over `driver_tables.tables()`; None if Lark's tables are not as it expects."""
    found = driver_tables.tables()
    if found is None:
        return None
    try:
        return FastParser(found)
    except (Unsupported, KeyError, TypeError, ValueError, IndexError, re.error):
        return None  # tables the driver cannot run: Lark's own parser still parses everything
