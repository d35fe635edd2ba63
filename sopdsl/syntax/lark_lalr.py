"""Lark's own LALR parser: building it (cached on disk), parsing with it, every diagnostic.

Input: a `Source`. Output: a `nodes.File`, or a `ParseError`. `sopdsl.syntax.parser` comes here
for every file the private driver (`sopdsl.syntax.driver`) leaves: a syntax error, a tree nested
too deep, or no driver at all. Two ways to parse: `parse_lark`, the node builders run inline as
Lark reduces each rule, and `_parse_reference`, Lark's plain tree turned into nodes afterwards
(`_ToNodes`: slower, and where a tree nested too deep is located). Lark's exceptions become
diagnostics in `sopdsl.syntax.lark_errors`; those past the first are found by parsing on
(`sopdsl.syntax.recovery`). Importing this module imports Lark: the check of a valid file does
not (tests/cli/test_startup.py).
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

import lark
from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedInput, VisitError
from lark.lexer import PatternRE, PatternStr, TerminalDef
from lark.tree import Meta

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.errors import ParseError
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.parser import _BOUNDARY, _KEYWORD, _KEYWORD_PRIORITY, MAX_DEPTH, cache_dir, grammar_text
from sopdsl.syntax.recovery import diagnose
from sopdsl.syntax.transformer import RULES, TOKENS, file_node, token_span

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _word_boundary(terminal: TerminalDef) -> None:
    # A plain keyword would lex `tagvip` as `tag vip` in a state that expects `tag`.
    pattern = terminal.pattern
    if isinstance(pattern, PatternStr) and _KEYWORD.fullmatch(pattern.value):
        terminal.pattern = PatternRE(re.escape(pattern.value) + _BOUNDARY)
        terminal.priority = _KEYWORD_PRIORITY


# ---- the Lark parser, cached on disk -------------------------------------------------------------

# Bump when anything that shapes the built parser changes outside the grammar text and the
# options below (for example `_word_boundary`), so that old cache files are not used.
_CACHE_FORMAT = "2"

_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "strict": True,
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def _cache_file(text: str) -> Path | None:
    folder = cache_dir()
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
    """The Lark LALR parser for the playbook grammar (building trees), built once per process."""
    return _build_lark()


def _build_lark(**extra: Any) -> Lark:
    """A Lark LALR parser for the playbook grammar, with `extra` options (a transformer).

    Building it (the LALR tables and strict mode's check that no two terminals collide) takes
    about a second, so the built parser is also saved in the user's cache folder, keyed by the
    grammar text, the Lark and Python versions and this module's settings; Lark checks the key
    again when it loads the file, and rebuilds and rewrites it if it is stale or damaged. Lark
    writes the file under the name it is later read by (its key covers that name, so a file
    written under a temporary name and renamed would be rebuilt by the next process); a lock
    beside it keeps processes starting together from reading it half written.
    """
    text = grammar_text()
    path = _cache_file(text)

    def build(cache: str | bool) -> Lark:
        return Lark(
            text, **_OPTIONS, **extra, edit_terminals=_word_boundary, cache=cache, cache_grammar=bool(cache)
        )

    if path is None:
        return build(False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "ab")  # closed by the `with` below
    except OSError:  # a folder we may not write: read a cache someone else left there, if any
        return build(str(path)) if path.exists() else build(False)
    with lock:
        _lock(lock.fileno())
        return build(str(path))  # Lark logs, and carries on, if it cannot write the file


def _lock(handle: int) -> None:
    """Hold an exclusive lock on an open file until it is closed (where the system has `flock`)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no lock, Lark still rebuilds a torn file
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:  # a file system without locks
        pass


# ---- parsing ------------------------------------------------------------------------------------


def parse_lark(source: Source) -> n.File:
    """Parse with Lark's own LALR parser, the node builders run inline as Lark reduces each rule."""
    parser = inline_parser()
    try:
        return _parse_inline(parser, source)
    except UnexpectedInput as exc:
        found, cut, mended = diagnose(exc, source, parser, MAX_SYNTAX_ERRORS, RECOVERY_BUDGET)
        partial = _partial(parser, source, cut)
        raise ParseError(found, partial, mended if partial is not None else ()) from None


def _parse_inline(parser: Lark, source: Source) -> n.File:
    """The file's tree, or Lark's `UnexpectedInput` at its first syntax error."""
    local = _INLINE.local
    local.path = source.path
    try:
        top = parser.parse(source.text)
    finally:
        local.path = ""
    assert isinstance(top, _Pending)
    if top.height > MAX_DEPTH + 1:
        return _parse_reference(source)  # it finds where, as it always has
    comments = tuple(n.Comment(str(c), token_span(source.path, c)) for c in _comments(source.text))
    span = _meta_span(source.path, top.meta)
    return file_node(source.path, span, _built(source.path, top.children), comments)


def _partial(parser: Lark, source: Source, cut: str | None) -> n.File | None:
    """The tree of the file with its broken playbooks blanked (`cut`), to check the rest."""
    if cut is None:
        return None
    try:
        return _parse_inline(parser, Source(source.path, cut))
    except (UnexpectedInput, ParseError, RecursionError):
        return None  # not expected: the file is then reported as it always was, syntax alone


# What parsing on after a syntax error (`recovery.diagnose`) may take. Syntax errors reported of
# one file at most: past this, the first ones are the ones to fix. Lines indented with a stray
# space are told as many again, then in one diagnostic: past that, find and replace mends them.
MAX_SYNTAX_ERRORS = 20
# Characters parsed again, in all, to find them: each start again parses the rest of the file,
# and a large broken file must not take twenty times as long to report as a good one to check.
RECOVERY_BUDGET = 2_000_000


class _Pending(Tree[Any]):
    """A rule Lark has reduced, its children built, waiting for its parent to build its node.

    Lark's `propagate_positions` sets a rule's position (its meta) only after the rule's callback
    has returned, and only on a `Tree`; the node, which needs its span, is therefore built one
    step later, by the parent's callback. `height` counts the tree levels below, as Lark's tree
    would have them, so that nesting too deep is caught.
    """

    height: int


def _meta_span(path: str, meta: Any) -> Span:
    if getattr(meta, "empty", True):
        return Span.point(path)
    return Span(path, meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line, meta.end_column)


def _built(path: str, children: list[Any]) -> list[Any]:
    """Children as nodes: pending rules built now that their span is known, tokens made nodes."""
    built: list[Any] = []
    for child in children:
        if type(child) is _Pending:
            child = RULES[child.data](_meta_span(path, child.meta), child.children)
        elif isinstance(child, Token):
            build = TOKENS.get(child.type)
            if build is not None:
                child = build(str(child), token_span(path, child))
        built.append(child)
    return built


class _Inline:
    """The callbacks Lark runs as it reduces rules (`Lark(..., transformer=_Inline())`).

    Lark asks for one callback per rule by name: a `_rule` gives a plain tree, which Lark splices
    into its parent; any other rule a `_Pending`. Terminal names give none (they would become
    lexer callbacks). The file being parsed is per thread, for the spans.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    def __getattr__(self, name: str) -> Callable[[list[Any]], Tree[Any]]:
        if name.startswith("__") or name.isupper() or name == "local":
            raise AttributeError(name)
        if name.startswith("_"):
            return functools.partial(Tree, name)
        local = self.local

        def reduce(children: list[Any]) -> _Pending:
            height = max((c.height for c in children if type(c) is _Pending), default=0)
            pending = _Pending(name, _built(local.path, children))
            pending.height = height + 1
            return pending

        return reduce


_INLINE = _Inline()


@functools.cache
def inline_parser() -> Lark:
    """Lark's LALR parser with `_Inline` as its transformer; it shares `lark_parser`'s cache file."""
    return _build_lark(transformer=_INLINE)


def _parse_reference(source: Source) -> n.File:
    """Parse with `Lark.parse` and the transformer: slower, and the source of every diagnostic."""
    parser = lark_parser()
    comments: list[Token] = []
    try:
        tree = _parse(parser, source.text, comments)
    except UnexpectedInput as exc:
        raise ParseError(diagnose(exc, source, parser, MAX_SYNTAX_ERRORS, RECOVERY_BUDGET)[0]) from None
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


class _ToNodes(Transformer[Token, Any]):
    """Lark tree to nodes, by the same builders: the reference the fast path must agree with."""

    def __init__(self, path: str, comments: list[Token]) -> None:
        super().__init__(visit_tokens=True)
        self.path = path
        self.comments = comments

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.point(self.path)
        return Span(
            self.path, meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line, meta.end_column
        )

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Any:
        if data == "start":
            comments = tuple(n.Comment(str(c), token_span(self.path, c)) for c in self.comments)
            return file_node(self.path, self._span(meta), children, comments)
        return RULES[data](self._span(meta), children)

    def __default_token__(self, token: Token) -> Any:
        build = TOKENS.get(token.type)
        return token if build is None else build(str(token), token_span(self.path, token))


def to_file(path: str, tree: Tree[Token], comments: list[Token]) -> n.File:
    """Turn Lark's tree for one file into the typed syntax tree."""
    return _ToNodes(path, comments).transform(tree)  # type: ignore[no-any-return]
