"""Lark's own LALR parser: building it (cached on disk), parsing with it, every diagnostic.

Input: a `Source`. Output: a `nodes.File`, or a `ParseError`. `sopdsl.syntax.parser` comes here
for every file the private driver (`sopdsl.syntax.driver`) leaves: a syntax error, a tree nested
too deep, or no driver at all. Two ways to parse: `parse_lark`, the node builders run inline as
Lark reduces each rule, and `_parse_reference`, Lark's plain tree turned into nodes afterwards
(`_ToNodes`: slower, and where a tree nested too deep is located). Lark's exceptions become
diagnostics in `sopdsl.syntax.lark_errors`. Importing this module imports Lark: the check of a
valid file does not (tests/cli/test_startup.py).
"""

from __future__ import annotations

import bisect
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
from sopdsl.syntax.braces import declaration_starts, lines_of_one_declaration, plain_line
from sopdsl.syntax.expected import top_level_words
from sopdsl.syntax.lark_errors import translate
from sopdsl.syntax.parser import _BOUNDARY, _KEYWORD, _KEYWORD_PRIORITY, MAX_DEPTH, cache_dir, grammar_text
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
        found, cut, mended = _diagnose(exc, source, parser)
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


# Syntax errors reported of one file at most: past this, the first ones are the ones to fix.
MAX_SYNTAX_ERRORS = 20
# Characters parsed again, in all, to find them: each start again parses the rest of the file,
# and a large broken file must not take twenty times as long to report as a good one to check.
RECOVERY_BUDGET = 2_000_000


def _diagnose(
    exc: UnexpectedInput, source: Source, parser: Lark
) -> tuple[list[Diagnostic], str | None, tuple[tuple[int, int], ...]]:
    """The first syntax error's diagnostic, then those after it; when every declaration with one
    is a playbook, the text to check the rest by (else None), and where the playbooks in it are
    that were read with their broken lines blanked (`ParseError.mended`).

    Lark's LALR parser stops at the first error. A line of statements that opens or closes no
    block is blanked (newlines kept, so every offset, line and column stays the user's) and the
    declaration parsed again, so a second mistake in one playbook shows too; if the parser then
    stops right after that line, the statement went on past it, and what it says is not another
    mistake: the declaration is left there. Each later declaration that opens a line (a keyword
    in column 1) is a safe place to start again, the text before it blanked. A file of several
    playbooks then shows every broken one at once, and the playbooks that parse are checked;
    one read whole but for its broken lines is kept in the text, the rest blanked.
    """
    found = [translate(exc, source, parser)]
    starts = declaration_starts(source.text, top_level_words(parser))
    text, at, budget = source.text, _error_offset(exc, source.text), RECOVERY_BUDGET
    broken: list[tuple[int | None, int]] = []  # declarations left out: where each starts and ends
    mended: dict[int, int] = {}  # declarations read but for lines blanked: start to end
    stuck: int | None = None  # a declaration whose lines are no longer blanked one by one
    complete = False
    while True:
        owner = _owner(starts, at)
        line = _statement_line(text, at, owner) if owner != stuck else None
        if line is not None and owner is not None and len(text) - owner > budget:
            line = None  # short of budget: on to the next declaration, which costs less
        if line is not None:
            assert owner is not None  # a line is only blanked inside a declaration
            restart = owner
            mended[owner] = next((s for s in starts if s > owner), len(text))
            text = text[: line[0]] + _BLANK.sub(" ", text[line[0] : line[1]]) + text[line[1] :]
        else:
            after = next((s for s in starts if s >= at and (owner is None or s > owner)), None)
            broken.append((owner, len(text) if after is None else after))
            if owner is not None:
                mended.pop(owner, None)
            if after is None:
                complete = True
                break
            restart = after
        if len(found) >= MAX_SYNTAX_ERRORS or len(text) - restart > budget:
            break
        budget -= len(text) - restart
        rest = Source(source.path, _BLANK.sub(" ", text[:restart]) + text[restart:])
        try:
            parser.parse(rest.text)
        except UnexpectedInput as again:
            next_at = _error_offset(again, rest.text)
            if line is not None and _ONLY_BLANKS.fullmatch(rest.text, line[1], next_at):
                # The statement went on past the blanked line: leave the declaration whole.
                at, stuck = line[0], owner
                continue
            # Translated against the blanked text: a `{` left open before `restart` is no longer
            # open there, so it is not blamed twice.
            found.append(translate(again, rest, parser))
            at = next_at
            continue
        complete = True
        break
    regions = [*broken, *mended.items()]
    if not complete or not all(_a_playbook(source.text, start, end) for start, end in regions):
        return found, None, ()
    cut = text  # its broken lines blanked
    for start, end in broken:
        assert start is not None  # `_a_playbook` holds
        cut = cut[:start] + _BLANK.sub(" ", cut[start:end]) + cut[end:]
    return found, cut, tuple(sorted(mended.items()))


def _owner(starts: list[int], at: int) -> int | None:
    """Where the declaration a syntax error at `at` belongs to starts (None: before any).

    An error met at a declaration's first word is the previous one's: it was still open."""
    index = bisect.bisect_left(starts, at) if at in starts else bisect.bisect_right(starts, at)
    return starts[index - 1] if index else None


def _statement_line(text: str, at: int, owner: int | None) -> tuple[int, int] | None:
    """The line of a syntax error at `at`, if it may be blanked to look further: a line after its
    declaration's first, opening and closing no block."""
    if owner is None or at >= len(text):
        return None
    start = text.rfind("\n", 0, at) + 1
    if start <= owner:
        return None
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    return (start, end) if plain_line(text[start:end]) else None


def _a_playbook(text: str, start: int | None, end: int) -> bool:
    """Whether `text[start:end]`, left out of the tree, is one playbook and nothing else."""
    if start is None or not text.startswith("playbook", start):
        return False
    return lines_of_one_declaration(text, start, end)


_ONLY_BLANKS = re.compile(r"(?:\s|#[^\n]*)*")
_BLANK = re.compile(r"[^\n]")


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    """Where a parse error was met (Lark's end-of-file token borrows the last token's place)."""
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        return len(text)
    if isinstance(token, Token) and token.start_pos is not None:
        return token.start_pos
    return exc.pos_in_stream or 0


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
        raise ParseError(_diagnose(exc, source, parser)[0]) from None
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
