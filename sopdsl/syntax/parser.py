"""Text to syntax tree: with `sopdsl.syntax.driver`, the only module that talks to Lark.

Input: a `Source`. Output: a `nodes.File`, or a `ParseError` carrying diagnostics. Every Lark
exception is caught and translated here, so nothing downstream ever sees `lark` types.

Two paths give the same result (`PARSERS`). The private driver (`sopdsl.syntax.driver`) drives
Lark's LALR tables and contextual lexer in one loop; it is the default because it is over twice
as fast on large files. It stops at the first thing out of the ordinary (a syntax error, a tree
nested too deep), and Lark's own LALR parser, with the node builders run inline as it reduces
(`parse_lark`), then parses the same text, so every diagnostic comes from Lark. A tree nested
too deep is located on Lark's plain tree (`_parse_reference`). The Lark parser itself is cached
on disk (see `lark_parser`): building it takes over a second.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import threading
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

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.errors import ParseError
from sopdsl.gcpause import paused_gc
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.transformer import RULES, TOKENS, file_node, to_file, token_span

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
_CACHE_FORMAT = "2"

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
    text = resources.files("sopdsl.grammar").joinpath("sopdsl.lark").read_text(encoding="utf-8")
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


# The two ways to parse: the private driver over Lark's tables ("driver", the default, over
# twice as fast on large files: see bench/frontend.py --parser) and Lark's own LALR parser with
# the node builders run inline ("lark"). `SOPDSL_PARSER` chooses; both give equal trees and
# diagnostics (tests/syntax/test_parser_paths.py).
PARSERS = ("driver", "lark")


def default_parser() -> str:
    """The path `parse` takes when not told: $SOPDSL_PARSER if it names one, else the driver."""
    chosen = os.environ.get("SOPDSL_PARSER", "")
    return chosen if chosen in PARSERS else "driver"


@paused_gc
def parse(source: Source, via: str | None = None) -> n.File:
    """Parse one source into a syntax tree; raise `ParseError` with located diagnostics.

    `via` picks the path ("driver" or "lark", see `PARSERS`); by default `default_parser()`.
    """
    if (via or default_parser()) == "driver":
        from sopdsl.syntax.driver import Fallback, fast_parser  # it imports this module

        fast = fast_parser()
        if fast is not None:
            try:
                return fast.parse(source.path, source.text)
            except Fallback:
                pass
    return parse_lark(source)


def parse_lark(source: Source) -> n.File:
    """Parse with Lark's own LALR parser, the node builders run inline as Lark reduces each rule."""
    parser = inline_parser()
    local = _INLINE.local
    local.path = source.path
    try:
        top = parser.parse(source.text)
    except UnexpectedInput as exc:
        raise ParseError([_translate(exc, source, parser)]) from None
    finally:
        local.path = ""
    assert isinstance(top, _Pending)
    if top.height > MAX_DEPTH + 1:
        return _parse_reference(source)  # it finds where, as it always has
    comments = tuple(n.Comment(str(c), token_span(source.path, c)) for c in _comments(source.text))
    span = _meta_span(source.path, top.meta)
    return file_node(source.path, span, _built(source.path, top.children), comments)


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
            path: str = local.path
            height = 0
            built: list[Any] = []
            for child in children:
                if type(child) is _Pending:
                    if child.height > height:
                        height = child.height
                    child = RULES[child.data](_meta_span(path, child.meta), child.children)
                elif isinstance(child, Token):
                    build = TOKENS.get(child.type)
                    if build is not None:
                        child = build(str(child), token_span(path, child))
                built.append(child)
            pending = _Pending(name, built)
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
