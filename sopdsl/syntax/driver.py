"""The private LALR driver: Lark's own tables and contextual lexer, run in one loop.

It builds each node as its rule is reduced, with the spans Lark's `propagate_positions` would
give, and is well over twice as fast as Lark's parser with the same builders inline (numbers in
`bench/frontend.py --parser`). It reads Lark's private tables (and recognises builders that
only return their first child by their compiled code, which is safe: one not recognised is
simply called), so it checks the shape of what it reads and stops (`Unsupported`) if anything is not as it
expects; it also stops (`Fallback`) at the first thing out of the ordinary (a syntax error, a
tree nested too deep). In both cases `sopdsl.syntax.parser` parses with Lark's own parser, which
gives every diagnostic. tests/syntax/test_parser_paths.py checks that both give equal trees.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lark import Lark
from lark.lexer import PatternRE, TerminalDef
from lark.parsers.lalr_analysis import Shift

from sopdsl.gcpause import paused_gc
from sopdsl.source import Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.parser import _BOUNDARY, _KEYWORD, _KEYWORD_PRIORITY, MAX_DEPTH, lark_parser
from sopdsl.syntax.transformer import RULES, TOKENS, file_node

if TYPE_CHECKING:
    from collections.abc import Callable


class Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The fast path met something only the reference path may answer: an error, a deep tree."""


class Unsupported(Exception):  # noqa: N818
    """Lark's tables are not shaped as the fast path expects: always use the reference path."""


# What a reduction does, from the cheapest.
_SAME = 0  # a unit rule whose child stands for it as it is: only the parser state changes
_WRAP = 1  # `_rule` with one child: the child becomes a list to splice into the parent
_PASS1 = 2  # a one-symbol rule whose builder returns the child: one more tree level
_INLINE = 3  # `_rule`: its children are spliced into the parent's
_EXPAND1 = 4  # `?rule`: its only child stands for it, else a node as below
_PASS = 5  # a rule whose builder returns its (only kept) child
_NODE = 6  # a node, from the rule's builder
_START = 7  # the file

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

    def __init__(self, parser: Lark) -> None:
        options = parser.options
        if (
            options.parser != "lalr"
            or options.lexer != "contextual"
            or options.postlex is not None
            or options.transformer is not None
            or options.lexer_callbacks
            or options.propagate_positions is not True
            or not options.maybe_placeholders
        ):
            raise Unsupported("options")
        frontend: Any = parser.parser
        table = frontend.parser.parser.parse_table
        self.lexers: dict[int, Any] = frontend.lexer.lexers
        if set(parser.lexer_conf.ignore) != {"WS", "COMMENT"}:
            raise Unsupported("ignored terminals")
        self.ignore = frozenset(parser.lexer_conf.ignore)
        self.flags = parser.lexer_conf.g_regex_flags
        rules: list[_Rule] = []
        index: dict[Any, int] = {}
        for rule in parser.rules:
            index[rule] = len(rules)
            rules.append(_rule(rule))
        self.rules = tuple(rules)
        # Per state: terminal or nonterminal name -> next state (shift, goto) or ~rule (reduce).
        size = max(table.states) + 1
        actions: list[dict[str, int]] = [{} for _ in range(size)]
        for state, row in table.states.items():
            actions[state] = {
                symbol: (arg if action is Shift else ~index[arg]) for symbol, (action, arg) in row.items()
            }
        self.actions = tuple(actions)
        self.start = table.start_states["start"]
        terminals = {t.name: t for t in parser.terminals}
        self.newline_types = frozenset(
            name for name, t in terminals.items() if _has_newline(t.pattern.to_regexp())
        )
        # Keywords, as `_word_boundary` made them: one regex branch matches them all.
        self.keywords = {word: t.name for t in parser.terminals if (word := _keyword(t)) is not None}
        self.matchers: list[Callable[..., re.Match[str] | None] | None] = [None] * size
        self.span = _span_factory()

    def _matcher(self, state: int) -> Callable[..., re.Match[str] | None]:
        """The lexer of one parser state: Lark's, with its keywords merged into one branch."""
        lexer = self.lexers.get(state)
        if lexer is None:
            raise Fallback
        scanner = lexer.scanner
        if lexer.callback:
            raise Fallback  # a lexer this loop does not imitate: let Lark lex
        terminals = list(scanner.terminals)
        # The scanner tries its terminals in order. Keywords all have one priority, so they
        # stand together; each is a word followed by no word character, so at most one of
        # them matches anywhere, and one branch of all of them matches the same text.
        marks = [t.name in self.keywords.values() and _keyword(t) is not None for t in terminals]
        branches = []
        if any(marks):
            first = marks.index(True)
            last = len(marks) - 1 - marks[::-1].index(True)
            if not all(marks[first : last + 1]):
                raise Fallback
            words = sorted(
                (_keyword(t) or "" for t in terminals[first : last + 1]), key=lambda w: (-len(w), w)
            )
            initials = "".join(sorted({re.escape(w[0]) for w in words}))
            merged = f"(?=[{initials}])(?:{'|'.join(map(re.escape, words))}){_BOUNDARY}"
            branches = [(t.name, t.pattern.to_regexp()) for t in terminals[:first]]
            branches.append((_KEYWORD_GROUP, merged))
            branches += [(t.name, t.pattern.to_regexp()) for t in terminals[last + 1 :]]
        else:
            branches = [(t.name, t.pattern.to_regexp()) for t in terminals]
        pattern = "|".join(f"(?P<{name}>{regexp})" for name, regexp in branches)
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
                state = states[-1]
                match = matchers[state] or self._matcher(state)
                found = match(text, pos)
                if found is None:
                    raise Fallback
                kind = found.lastgroup  # type: ignore[assignment]
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
                if kind == _KEYWORD_GROUP:
                    kind = keywords[value]
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


def _keyword(terminal: TerminalDef) -> str | None:
    """The word of a keyword terminal as `_word_boundary` left it, else None."""
    pattern = terminal.pattern
    if (
        terminal.priority == _KEYWORD_PRIORITY
        and isinstance(pattern, PatternRE)
        and not pattern.flags
        and pattern.value.endswith(_BOUNDARY)
    ):
        word = pattern.value[: -len(_BOUNDARY)]
        if _KEYWORD.fullmatch(word) and re.escape(word) == word:
            return word
    return None


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


def _rule(rule: Any) -> _Rule:
    """The reduction of one Lark rule, mirroring lark's `ParseTreeBuilder` for it."""
    options = rule.options
    if options.template_source is not None:
        raise Unsupported("templates")
    expansion = rule.expansion
    origin = rule.origin.name
    if origin.startswith("_"):
        if rule.alias or options.expand1:
            raise Unsupported("inlined rule with alias")
        how = _INLINE
    elif origin == "start":
        how = _START
    elif options.expand1 and not rule.alias:
        # An expanded child carries its own meta only if it is a tree, never a token.
        if any(s.is_term and not s.filter_out for s in expansion):
            raise Unsupported("expanded terminal")
        how = _EXPAND1
    else:
        how = _NODE
    if not expansion and how in (_NODE, _EXPAND1):
        raise Unsupported("empty rule")
    # As lark's maybe_create_child_filter, with maybe_placeholders.
    empty = options.empty_indices
    if empty:
        counts = [len(ones) for ones in "".join(str(int(b)) for b in empty).split("0")]
    else:
        counts = [0] * (len(expansion) + 1)
    spec: list[tuple[int, bool, int]] = []
    nones = 0
    for i, symbol in enumerate(expansion):
        nones += counts[i]
        if options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            spec.append((i, not symbol.is_term and symbol.name.startswith("_"), nones))
            nones = 0
    trailing = nones + counts[len(expansion)]
    keep: tuple[int, ...] | list[tuple[int, bool, int]] | None
    if trailing or any(splice or before for _, splice, before in spec):
        keep = spec
    elif len(spec) == len(expansion):
        keep = None
    else:
        keep = tuple(i for i, _, _ in spec)
    build = None
    if how in (_NODE, _EXPAND1):
        build = RULES.get(rule.alias or origin)
        if build is None:
            raise Unsupported(f"no builder for {rule.alias or origin}")
        if how == _NODE and _is_first_child(build) and len(spec) == 1:
            how = _PASS
    # The cheapest cases: one symbol, kept as it is.
    if len(expansion) == 1 and len(spec) == 1 and not trailing and spec[0][2] == 0:
        splice = spec[0][1]
        if (how == _EXPAND1 and not splice) or (how == _INLINE and splice):
            how = _SAME
        elif how == _INLINE:
            how = _WRAP
        elif how == _PASS and not splice:
            how = _PASS1
    return _Rule(len(expansion), origin, how, keep, trailing, build)


def _has_newline(regexp: str) -> bool:
    # lark.lexer._regexp_has_newline: which tokens the line counter looks into.
    return (
        "\n" in regexp
        or "\\n" in regexp
        or "\\s" in regexp
        or "[^" in regexp
        or ("(?s" in regexp and "." in regexp)
    )


@functools.cache
def fast_parser() -> FastParser | None:
    try:
        return FastParser(lark_parser())
    except (Unsupported, AttributeError, KeyError, TypeError):
        return None  # a Lark whose insides moved: the reference path still parses everything
