"""What could come at a point of the grammar, in words an operator can type.

Input: the Lark parser and terminal names (what it could take where it stopped). Output: the
keywords they stand for, and the `expected …` hint of a syntax error, which never shows a
grammar-internal name (`NAME`, `MULDIV`, a rule). `lark_errors` builds its diagnostics on it.
"""

from __future__ import annotations

import difflib
import functools
import re

from lark import Lark
from lark.lexer import PatternRE, PatternStr

from sopdsl.syntax.parser import _BOUNDARY

# How a terminal that is no keyword is named in a hint. A quoted text of either kind is one thing
# to an operator, so both say the same (and are listed once).
PLAIN = {
    "NAME": "a name",
    "STRING": 'a quoted text "…"',
    "LONG_STRING": 'a quoted text "…"',
    "NUMBER": "a number",
    "PERCENT": "a percentage like 50%",
    "DATE": "a date like 2026-11-11",
    "TIME": "a time like 20:00",
    "ROOT": "a field like member.points",
    "COMPARATOR": "a comparison (==, !=, >=, <=, >, <)",
    "SIGN": "+ or -",
    "$END": "end of file",
}

# The rules whose alternatives each begin a statement: a declaration, a playbook's setting, a
# step. A word at the start of a line was meant to begin one, so the hint offers only these.
_STATEMENTS = ("_item", "_pb_item", "_step")

# A regex part made only of plain or escaped characters: a literal word.
_LITERAL = re.compile(r"(?:\\.|[^\\.^$*+?{}\[\]()|])+")

# More alternatives than this is a wall: the hint shows the ones closest to what was written.
MOST = 8


def keyword_of(parser: Lark, terminal: str) -> str | None:
    """The keyword a terminal stands for (`SEND` → `send`), or None for any other terminal."""
    return _keywords(parser).get(terminal)


@functools.cache
def _keywords(parser: Lark) -> dict[str, str]:
    # Keywords are regexes ending in a word boundary (`lark_lalr._word_boundary`).
    found: dict[str, str] = {}
    for terminal in parser.terminals:
        pattern = terminal.pattern
        if isinstance(pattern, PatternRE) and pattern.value.endswith(_BOUNDARY):
            found[terminal.name] = pattern.value[: -len(_BOUNDARY)].replace("\\", "")
    return found


def describe(parser: Lark, terminal: str) -> str | None:
    """A terminal in plain words: `'send'`, `'{'`, `'*' or '/'`, `a number`; None if it has none."""
    if terminal in PLAIN:
        return PLAIN[terminal]
    keyword = keyword_of(parser, terminal)
    if keyword is not None:
        return f"'{keyword}'"
    pattern = next((t.pattern for t in parser.terminals if t.name == terminal), None)
    if isinstance(pattern, PatternStr):
        return f"'{pattern.value}'"
    if isinstance(pattern, PatternRE):
        literals = _literals(pattern.value)
        if literals:
            return " or ".join(f"'{w}'" for w in literals)
    return None


def _literals(regex: str) -> list[str] | None:
    """The words of a regex that is only a choice of literal words (`(?:\\*|/)` → `*`, `/`)."""
    body = regex[3:-1] if regex.startswith("(?:") and regex.endswith(")") else regex
    parts = body.split("|")
    if not all(_LITERAL.fullmatch(part) for part in parts):
        return None
    return [re.sub(r"\\(.)", r"\1", part) for part in parts]


@functools.cache
def top_level(parser: Lark) -> frozenset[str]:
    """The terminals that open a top-level declaration (`PLAYBOOK`, `TEMPLATE`, ...)."""
    accepts = parser.parse_interactive("").accepts()  # type: ignore[no-untyped-call]  # Lark leaves it bare
    return frozenset(set(accepts) - {"$END"})


@functools.cache
def top_level_words(parser: Lark) -> frozenset[str]:
    """The keywords that open a top-level declaration (`playbook`, `template`, ...)."""
    return frozenset(k for k in (keyword_of(parser, t) for t in top_level(parser)) if k)


@functools.cache
def statement_starters(parser: Lark) -> frozenset[str]:
    """The terminals that can begin a statement (see `_STATEMENTS`), and `}` that ends a block."""
    first: dict[str, set[str]] = {}
    nullable: set[str] = set()
    changed = True
    while changed:  # the FIRST sets of the grammar, to a fixed point
        changed = False
        for rule in parser.rules:
            origin = rule.origin.name
            into = first.setdefault(origin, set())
            before = len(into)
            empty = True
            for symbol in rule.expansion:
                if symbol.is_term:
                    into.add(symbol.name)
                else:
                    into |= first.get(symbol.name, set())
                if symbol.is_term or symbol.name not in nullable:
                    empty = False
                    break
            if empty and origin not in nullable:
                nullable.add(origin)
                changed = True
            changed = changed or len(into) != before
    return frozenset(set().union(*(first.get(rule, set()) for rule in _STATEMENTS)) | closing_brace(parser))


@functools.cache
def closing_brace(parser: Lark) -> frozenset[str]:
    """The terminal of the `}` that ends a block (a set: Lark could name it more than once)."""
    return frozenset(
        t.name for t in parser.terminals if isinstance(t.pattern, PatternStr) and t.pattern.value == "}"
    )


def expected_hint(parser: Lark, expected: set[str], written: str, at_line_start: bool) -> str:
    """`expected …`: what the parser could take, in plain words, the likeliest first and few.

    A word that begins a line began a statement: only statement openers are offered then, not
    the words that could still continue the line before (`with`, `via`).
    """
    if at_line_start and expected & statement_starters(parser):
        expected = expected & statement_starters(parser)
    words = sorted({d for d in (describe(parser, t) for t in expected) if d})
    keywords = [w for w in words if w.startswith("'")]
    plain = [w for w in words if not w.startswith("'")]
    if len(words) > MOST and written:
        # Closest to what was written first: `hello` is likelier `help` than `dissolve`.
        def likeness(word: str) -> float:
            return difflib.SequenceMatcher(None, written.lower(), word.strip("'")).ratio()

        keywords.sort(key=likeness, reverse=True)
    room = max(MOST - len(plain), 3)
    shown = [*keywords[:room], *plain]
    if len(keywords) > room:
        shown.append("…")
    return "expected " + ", ".join(shown)
