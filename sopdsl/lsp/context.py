"""What kind of name belongs at the cursor, read from the text of its line before it.

Input: the part of a line before the cursor. Output: a `Wanted` (the kind of name, and where
the partly typed word starts) or None where nothing should be offered (a comment, a string that
is not a tag, the name a declaration is introducing). A cheap, line-local reading: good enough
to offer the right names while typing, including in a file that does not parse yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

Kind = Literal[
    "template",
    "calendar",
    "coupon",
    "group",
    "event",
    "action",
    "tag",
    "keyword",
    "member field",
    "group field",
    "coupon field",
]

_STRING = r'"(?:[^"\\\n]|\\.)*"'
_STRINGS = re.compile(_STRING)
# Strings, text blocks and comments, each closed or (the named groups) open to the end of the
# text: a regex scan in C, cheap over a whole document up to the cursor.
_LEXEMES = re.compile(
    rf'"""[\s\S]*?"""|(?P<block>"""[\s\S]*\Z)|{_STRING}|(?P<string>"(?:[^"\\\n]|\\.)*\\?\Z)|(?P<comment>#[^\n]*\Z)|#[^\n]*'
)
_PARTIAL = re.compile(r"\w*\Z")
_FIELD = re.compile(r"\b(member|referrer|group)\.\w*\Z")
# A field being typed in a template's `{{ … }}` or `{% … %}` still open at the cursor: the one
# place inside a text where a name is written.
_PLACEHOLDER_FIELD = re.compile(r"\{[{%][^}\n]*?\b(member|referrer|group|coupon)\.\w*\Z")
# `set member.x = coupon.|`: outside a text, the one place a coupon's field is written (the
# checker sets only a member's attribute from it).
_SET_COUPON_FIELD = re.compile(r"\bset\s+(?:member|referrer)\.\w+\s*=\s*coupon\.\w*\Z")
_FIELD_KINDS: dict[str, Kind] = {
    "member": "member field",
    "referrer": "member field",
    "group": "group field",
    "coupon": "coupon field",
}
_TOKEN = re.compile(r"[^\W\d]\w*|\S")
# Before a tag's opening quote: `tagged`, `untagged`, `any of`/`all of`, `tag member`,
# `untag member`, then any tags already listed (`"a", "b", `).
_BEFORE_TAG = re.compile(
    rf"(?:\b(?:un)?tagged|\b(?:un)?tag\s+\w+|\b(?:any|all)\s+of)\s*(?:{_STRING}\s*,\s*)*\Z"
)
# The words that introduce a new name at the start of a line: nothing to complete after them.
_DECLARING = {
    "template",
    "calendar",
    "coupon",
    "group",
    "event",
    "action",
    "attribute",
    "counter",
    "playbook",
}


@dataclass(frozen=True)
class Wanted:
    """The kind of name wanted at the cursor, and the index in the line where the partly
    typed word (or tag) starts, which a completion replaces."""

    kind: Kind
    start: int


def wanted(before: str) -> Wanted | None:
    """What to offer at the end of `before`: the document's text up to the cursor (or just the
    cursor's line, where no text block or comment spans lines up to it)."""
    line_start = before.rfind("\n") + 1
    lexeme = _open_lexeme(before)
    if lexeme is not None:
        if lexeme.lastgroup == "string" and _BEFORE_TAG.search(before, 0, lexeme.start()):
            return Wanted("tag", lexeme.start() + 1 - line_start)
        if lexeme.lastgroup in ("string", "block"):
            placeholder = _PLACEHOLDER_FIELD.search(before, lexeme.start())
            if placeholder is not None:
                return Wanted(_FIELD_KINDS[placeholder.group(1)], placeholder.end(1) + 1 - line_start)
        return None
    line = before[line_start:]
    coupon_field = _SET_COUPON_FIELD.search(line)
    if coupon_field is not None:
        return Wanted("coupon field", line.rindex(".") + 1)
    field = _FIELD.search(line)
    if field is not None:
        return Wanted("group field" if field.group(1) == "group" else "member field", field.end(1) + 1)
    partial = _PARTIAL.search(line)
    start = partial.start() if partial is not None else len(line)
    kind = _kind_after(_TOKEN.findall(_STRINGS.sub('""', line[:start])))
    return Wanted(kind, start) if kind is not None else None


def in_text(before: str) -> bool:
    """Whether the end of `before` (a document's text up to a place) is inside a string, a text
    block or a comment, where no name is written."""
    return _open_lexeme(before) is not None


def _open_lexeme(before: str) -> re.Match[str] | None:
    """The string, text block or comment still open at the end of `before`, if any."""
    last = None
    for last in _LEXEMES.finditer(before):  # noqa: B007 (only the last one matters)
        pass
    if last is None or last.end() != len(before) or last.lastgroup is None:
        return None
    return last if last.lastgroup in ("string", "block", "comment") else None


def _kind_after(tokens: list[str]) -> Kind | None:
    last = tokens[-1] if tokens else ""
    if last == "send":
        return "template"
    if last == "grant":
        return "coupon"
    if last == "call":
        return "action"
    if last in _DECLARING and len(tokens) == 1:
        return None  # `coupon |` at the start of a line declares a new coupon
    if last == "coupon" and tokens[-2:-1] != ["="]:
        return "coupon"  # `when coupon |`: a stock test (`set member.x = coupon` wants a `.`)
    if last == "event":
        return "event"  # `on event |`
    if last == "at" and len(tokens) == 1:
        return "calendar"  # a playbook's `at |` entry (`every mon at |` wants a time)
    if last == "to" and len(tokens) >= 3 and tokens[-3] == "invite":
        return "group"
    if _in_named_groups(tokens):
        return "group"
    return "keyword"


def _in_named_groups(tokens: list[str]) -> bool:
    """Whether the tokens end inside `in groups a, b, |` (a scope naming groups)."""
    for index in range(len(tokens) - 1, 0, -1):
        if tokens[index] == "groups" and tokens[index - 1] == "in":
            rest = tokens[index + 1 :]
            # Names and commas alternate, and the last is a comma (or nothing yet).
            return all((t == ",") == (i % 2 == 1) for i, t in enumerate(rest)) and len(rest) % 2 == 0
    return False


# A word as a playbook writes one (a regexp that is a word matches only itself).
_WORD = re.compile(r"[^\W\d]\w*")


@cache
def keywords() -> tuple[str, ...]:
    """Every word a playbook may write outside a name it declares: the grammar's words, as the
    parser lexes them, and the closed vocabularies it takes as names (`vocabulary.WORDS`: units,
    weekdays, periods, attachment types...). Derived, not listed, so a new keyword or word is
    offered as soon as the grammar or the vocabulary has it."""
    from sopdsl.vocabulary import WORDS

    words = set(grammar_words())
    for vocabulary in WORDS.values():
        words.update(w for word in vocabulary for w in word.split())
    return tuple(sorted(words))


def grammar_words() -> tuple[str, ...]:
    """The words of the grammar: its keyword terminals and any other terminal that is a plain
    word, read from the parser's tables (cached on disk: no Lark import when they are current)."""
    from sopdsl.syntax import driver_tables

    found = driver_tables.tables()
    if found is not None:
        terminals, bounded = found.terminals, set(found.keywords)
    else:  # a Lark the driver cannot read: its own parser's terminals
        from sopdsl.syntax.lark_lalr import lark_parser

        lark_terminals = lark_parser().terminals
        terminals = [(str(t.name), str(t.pattern.to_regexp())) for t in lark_terminals]
        bounded = {w for t in lark_terminals if (w := driver_tables.keyword_of(t)) is not None}
    return tuple(sorted(bounded | {regexp for _, regexp in terminals if _WORD.fullmatch(regexp)}))
