"""Text to syntax tree: the only module that talks to Lark.

Input: a `Source`. Output: a `nodes.File`, or a `ParseError` carrying diagnostics. Every Lark
exception is caught and translated here, so nothing downstream ever sees `lark` types.

Two paths give the same result. The fast path drives Lark's own LALR tables and contextual
lexer in one loop and builds each node as its rule is reduced, with the spans Lark's
`propagate_positions` would give; it stops at the first thing out of the ordinary (a syntax
error, a tree nested too deep). The reference path (`Lark.parse`, then the transformer) then
runs on the same text, so every diagnostic comes from Lark exactly as before. The Lark parser
itself is cached on disk (see `lark_parser`): building it takes over a second.
"""

from __future__ import annotations

import dataclasses
import dis
import functools
import hashlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lark
from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import PatternRE, PatternStr, TerminalDef
from lark.parsers.lalr_analysis import Shift

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.errors import ParseError
from sopdsl.gcpause import paused_gc
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.transformer import RULES, TOKENS, file_node, to_file

if TYPE_CHECKING:
    from collections.abc import Callable

# Deeper nesting than this is surely a mistake, and later stages recurse over the tree.
MAX_DEPTH = 120

_KEYWORD = re.compile(r"[a-z_]+")
_BOUNDARY = r"(?!\w)"
_KEYWORD_PRIORITY = 2

# How a terminal is named in an "expected one of" hint.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": 'a """text block"""',
    "NUMBER": "a number",
    "PERCENT": "a percentage like 50%",
    "DATE": "a date like 2026-11-11",
    "TIME": "a time like 20:00",
    "ROOT": "member.… / group.… / event.…",
    "COMPARATOR": "a comparison (==, !=, >=, <=, >, <)",
    "SIGN": "+ or -",
    "$END": "end of file",
}

_FULL_WIDTH = {
    "，": ",",
    "：": ":",
    "｛": "{",
    "｝": "}",
    "（": "(",
    "）": ")",
    "“": '"',
    "”": '"',
    "＝": "=",
    "［": "[",
    "］": "]",
    "％": "%",
}


def _word_boundary(terminal: TerminalDef) -> None:
    # A plain keyword would lex `tagvip` as `tag vip` in a state that expects `tag`.
    pattern = terminal.pattern
    if isinstance(pattern, PatternStr) and _KEYWORD.fullmatch(pattern.value):
        terminal.pattern = PatternRE(re.escape(pattern.value) + _BOUNDARY)
        terminal.priority = _KEYWORD_PRIORITY


# ---- the Lark parser, cached on disk -------------------------------------------------------------

# Bump when anything that shapes the built parser changes outside the grammar text and the
# options below (for example `_word_boundary`), so that old cache files are not used.
_CACHE_FORMAT = "1"

_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "strict": True,
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def _cache_dir() -> Path | None:
    """Where the built parser is kept: $SOPDSL_CACHE_DIR (empty: no cache), else the user cache."""
    configured = os.environ.get("SOPDSL_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home folder to speak of
        return None
    return root / "sopdsl"


def _cache_file(text: str) -> Path | None:
    folder = _cache_dir()
    if folder is None:
        return None
    key = "\n".join(
        [
            _CACHE_FORMAT,
            lark.__version__,
            sys.version,
            repr(sorted(_OPTIONS.items())),
            _KEYWORD.pattern,
            _BOUNDARY,
            str(_KEYWORD_PRIORITY),
            text,
        ]
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return folder / f"parser-{digest}.lark"


@functools.cache
def lark_parser() -> Lark:
    """The Lark LALR parser for the playbook grammar, built once per process.

    Building it (the LALR tables and strict mode's check that no two terminals collide) takes
    over a second, so the built parser is also saved in the user's cache folder, keyed by the
    grammar text, the Lark and Python versions and this module's settings; Lark checks the key
    again when it loads the file. The file is written whole under a temporary name and then
    renamed, so processes starting together never read half of it.
    """
    text = resources.files("sopdsl.grammar").joinpath("sopdsl.lark").read_text(encoding="utf-8")
    path = _cache_file(text)

    def build(cache: str | bool) -> Lark:
        return Lark(text, **_OPTIONS, edit_terminals=_word_boundary, cache=cache, cache_grammar=bool(cache))

    if path is None:
        return build(False)
    if path.exists():
        return build(str(path))  # Lark rebuilds and rewrites the file if it is stale or damaged
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.unlink(temporary)  # Lark treats an existing file as a cache to load
    except OSError:
        return build(False)
    try:
        parser = build(temporary)
        os.replace(temporary, path)
    except OSError:
        pass
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return parser


# ---- parsing ------------------------------------------------------------------------------------


@paused_gc
def parse(source: Source) -> n.File:
    """Parse one source into a syntax tree; raise `ParseError` with located diagnostics."""
    fast = _fast_parser()
    if fast is not None:
        try:
            return fast.parse(source.path, source.text)
        except _Fallback:
            pass
    return _parse_reference(source)


def _parse_reference(source: Source) -> n.File:
    """Parse with `Lark.parse` and the transformer: slower, and the source of every diagnostic."""
    parser = lark_parser()
    comments: list[Token] = []
    try:
        tree = _parse(parser, source.text, comments)
    except UnexpectedInput as exc:
        raise ParseError([_translate(exc, source, parser)]) from None
    too_deep = _too_deep(tree)
    if too_deep is not None:
        raise ParseError(
            [
                Diagnostic(
                    "SOP103",
                    Severity.ERROR,
                    f"blocks or conditions nested more than {MAX_DEPTH} levels deep",
                    _token_span(source.path, too_deep),
                    "split the playbook into smaller ones",
                )
            ]
        )
    try:
        return to_file(source.path, tree, comments)
    except VisitError as exc:
        raise exc.orig_exc from None


def _parse(parser: Lark, text: str, comments: list[Token]) -> Tree[Token]:
    tree = parser.parse(text)
    # Lark drops %ignore'd comments; re-lex cheaply for them so the formatter can keep them.
    comments.extend(_comments(text))
    return tree


_COMMENT_OR_STRING = re.compile(r'"""(?:.|\n)*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def _comments(text: str) -> list[Token]:
    found: list[Token] = []
    # Count lines incrementally: recounting from the start for each comment is quadratic.
    line, line_start, counted_to = 1, 0, 0
    for match in _COMMENT_OR_STRING.finditer(text):
        if match.group().startswith("#"):
            start = match.start()
            breaks = text.count("\n", counted_to, start)
            if breaks:
                line += breaks
                line_start = text.rindex("\n", counted_to, start) + 1
            counted_to = start
            column = start - line_start + 1
            token = Token("COMMENT", match.group(), start, line, column)
            token.end_pos = match.end()
            token.end_line = line
            token.end_column = column + len(match.group())
            found.append(token)
    return found


def _too_deep(tree: Tree[Token]) -> Token | None:
    stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return _first_token(node)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


def _first_token(tree: Tree[Token]) -> Token:
    """The first token under a subtree, found without recursion (the subtree is too deep for it)."""
    pending: list[Tree[Token] | Token] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, Token):
            return node
        pending.extend(reversed(node.children))
    return Token("NAME", "", 0, 1, 1)


def _token_span(path: str, token: Token) -> Span:
    line = token.line or 1
    column = token.column or 1
    start = token.start_pos or 0
    end = token.end_pos if token.end_pos is not None else start + len(token)
    return Span(
        path, start, end, line, column, token.end_line or line, token.end_column or column + len(token)
    )


# ---- the fast path ------------------------------------------------------------------------------


class _Fallback(Exception):  # noqa: N818 - a signal, not an error
    """The fast path met something only the reference path may answer: an error, a deep tree."""


class _Unsupported(Exception):  # noqa: N818
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
    spanned: bool  # whether the builder reads its span (else it gets None)


class _FastParser:
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
            raise _Unsupported("options")
        frontend: Any = parser.parser
        table = frontend.parser.parser.parse_table
        self.lexers: dict[int, Any] = frontend.lexer.lexers
        if set(parser.lexer_conf.ignore) != {"WS", "COMMENT"}:
            raise _Unsupported("ignored terminals")
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
            raise _Fallback
        scanner = lexer.scanner
        if lexer.callback:
            raise _Fallback  # a lexer this loop does not imitate: let Lark lex
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
                raise _Fallback
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
        """Parse `text` into a file node; raise `_Fallback` if the reference path must answer."""
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
        span: Span | None
        while True:
            if pos < length:
                state = states[-1]
                match = matchers[state] or self._matcher(state)
                found = match(text, pos)
                if found is None:
                    raise _Fallback
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
                    raise _Fallback
                if act >= 0:
                    if kind == "$END":
                        raise _Fallback
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
                    if not rule.spanned:
                        span = None
                    elif made is None:
                        span = Span.point(path)
                    else:
                        span = new_span(path, made[0], made[3], made[1], made[2], made[4], made[5])
                    if how == _START:
                        if made is not None and made[6] > MAX_DEPTH + 1:
                            raise _Fallback  # too deep: the reference path reports where
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


def _reads_span(build: Any) -> bool:
    """Whether a builder reads its `span` argument at all (if not, it is given None)."""
    function = getattr(build, "__func__", build)
    try:
        instructions = list(dis.get_instructions(function))
    except TypeError:
        return True
    return any(i.argval == "span" and i.opname.startswith("LOAD") for i in instructions)


def _rule(rule: Any) -> _Rule:
    """The reduction of one Lark rule, mirroring lark's `ParseTreeBuilder` for it."""
    options = rule.options
    if options.template_source is not None:
        raise _Unsupported("templates")
    expansion = rule.expansion
    origin = rule.origin.name
    if origin.startswith("_"):
        if rule.alias or options.expand1:
            raise _Unsupported("inlined rule with alias")
        how = _INLINE
    elif origin == "start":
        how = _START
    elif options.expand1 and not rule.alias:
        # An expanded child carries its own meta only if it is a tree, never a token.
        if any(s.is_term and not s.filter_out for s in expansion):
            raise _Unsupported("expanded terminal")
        how = _EXPAND1
    else:
        how = _NODE
    if not expansion and how in (_NODE, _EXPAND1):
        raise _Unsupported("empty rule")
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
    spanned = True
    if how in (_NODE, _EXPAND1):
        build = RULES.get(rule.alias or origin)
        if build is None:
            raise _Unsupported(f"no builder for {rule.alias or origin}")
        spanned = _reads_span(build)
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
    return _Rule(len(expansion), origin, how, keep, trailing, build, spanned)


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
def _fast_parser() -> _FastParser | None:
    try:
        return _FastParser(lark_parser())
    except (_Unsupported, AttributeError, KeyError, TypeError):
        return None  # a Lark whose insides moved: the reference path still parses everything


# ---- diagnostics --------------------------------------------------------------------------------


def _describe_expected(parser: Lark, expected: set[str]) -> str:
    patterns = {t.name: t.pattern for t in parser.terminals}
    words: set[str] = set()
    for name in expected:
        if name in _TERMINAL_NAMES:
            words.add(_TERMINAL_NAMES[name])
            continue
        pattern = patterns.get(name)
        if isinstance(pattern, PatternRE) and pattern.value.endswith(_BOUNDARY):
            keyword = pattern.value[: -len(_BOUNDARY)].replace("\\", "")
            words.add(f"'{keyword}'")
        elif isinstance(pattern, PatternStr):
            words.add(f"'{pattern.value}'")
        else:
            words.add(name.lower())
    ordered = sorted(words, key=lambda w: (not w.startswith("'"), w))
    if len(ordered) > 12:
        ordered = [*ordered[:12], "…"]
    return ", ".join(ordered)


def _translate(exc: UnexpectedInput, source: Source, parser: Lark) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = source.text[pos] if pos < len(source.text) else ""
        span = source.span(pos, pos + 1)
        if char in _FULL_WIDTH:
            return Diagnostic(
                "SOP101",
                Severity.ERROR,
                f"full-width character '{char}' where the language expects '{_FULL_WIDTH[char]}'",
                span,
                f"type the ASCII '{_FULL_WIDTH[char]}' instead (switch the input method to English)",
            )
        if char == '"':
            return Diagnostic(
                "SOP101",
                Severity.ERROR,
                "unterminated string",
                span,
                'close the string with " on the same line, or use """...""" for text over several lines',
            )
        shown = char if char.isprintable() else repr(char)
        return Diagnostic(
            "SOP101",
            Severity.ERROR,
            f"unexpected character '{shown}'",
            span,
            f"expected {_describe_expected(parser, set(exc.allowed or ()))}" if exc.allowed else None,
        )
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        end = len(source.text)
        expected = set(getattr(exc, "expected", ()) or ())
        return Diagnostic(
            "SOP102",
            Severity.ERROR,
            "unexpected end of file",
            source.span(end, end),
            f"expected {_describe_expected(parser, expected)}" if expected else "is a '}' missing?",
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    start = token.start_pos or 0
    span = source.span(start, token.end_pos if token.end_pos is not None else start + len(token))
    return Diagnostic(
        "SOP100",
        Severity.ERROR,
        f"unexpected {_describe_token(token)}",
        span,
        f"expected {_describe_expected(parser, set(exc.expected))}",
    )


def _describe_token(token: Token) -> str:
    text = str(token)
    if len(text) > 40:
        text = text[:37] + "..."
    text = text.replace("\n", "\\n")
    if token.type in {"STRING", "LONG_STRING"}:
        return f"string {text}"
    if token.type == "NAME":
        return f"name '{text}'"
    return f"'{text}'"
