"""The words the grammar can take at the cursor, so completion offers those, not every keyword.

Input: the document's text up to the start of the word being typed. Output: the keywords the
parser could take next (and, where it takes a name, the words of the closed vocabulary that
place names: units after `wait 3`), or None when that cannot be read (a mistake earlier in the
declaration): completion then offers every word.
Only the declaration the cursor is in is parsed, so a keystroke in a long file stays cheap.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from sopdsl.lsp.context import keywords

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lark import Token

# A top-level declaration starts at the beginning of a line with its keyword.
_DECLARATION_START = r"^(?:{words})\b"

# Which closed vocabulary (`vocabulary.WORDS`) a name may come from, by the words just before
# it: the grammar takes all of them as a NAME, so the parser alone cannot tell `wait 3 ` (a
# unit) from `per ` (a subject or a period). `NUMBER` and `NAME` stand for any number and name;
# the longest match wins, and a match that starts with the declaration's own word (`policy`)
# before one that does not. A name anywhere else is a declared one (`send `, `via `, `at `), and
# no closed word is offered there. tests/lsp/test_next_words.py reaches every vocabulary.
_VOCABULARY_AFTER: dict[tuple[str, ...], tuple[str, ...]] = {
    ("NUMBER",): ("unit",),
    ("policy", "most", "NUMBER"): ("cap noun",),
    ("platform", "most", "NUMBER"): ("platform noun",),
    ("per",): ("cap subject", "period"),
    ("else",): ("overflow",),  # only a cap's `else` takes a name; a step's takes `{` or `if`
    (":",): ("type",),  # `do:` takes a step, never a name
    ("with",): ("attachment",),
    ("mentioning",): ("mentioning",),
    ("counting",): ("counting",),
    ("cannot",): ("platform cannot",),
    ("apply", "to"): ("apply to",),
    ("missed",): ("missed",),
    ("missed", "NAME"): ("missed",),
    ("change",): ("on change",),
    ("every",): ("weekday",),
    ("[",): ("weekday",),
    ("no",): ("absence",),
    # Where a condition starts, a name is what `… in last 7 days` counts.
    ("when",): ("window",),
    ("if",): ("window",),
    ("not",): ("window",),
    ("and",): ("window",),
    ("or",): ("window",),
    ("(",): ("window",),
}
_LONGEST = max(map(len, _VOCABULARY_AFTER))


def next_words(before: str) -> tuple[str, ...] | None:
    """The words that may come at the end of `before` (the text up to the typed word), or None."""
    from lark.exceptions import LarkError

    from sopdsl.syntax.expected import keyword_of
    from sopdsl.syntax.lark_lalr import lark_parser

    parser = lark_parser()
    starts = list(_declaration_start().finditer(before))
    text = before[starts[-1].start() :] if starts else before
    try:
        interactive = parser.parse_interactive(text)
        tokens = interactive.exhaust_lexer()
        accepted = set(interactive.accepts())  # type: ignore[no-untyped-call]  # Lark leaves it bare
    except LarkError:
        return None
    words = {word for word in (keyword_of(parser, t) for t in accepted) if word}
    if "NAME" in accepted:
        # A name here may be one of the closed vocabularies (`wait 3 天`, `per day`).
        words |= set(vocabulary_after(tokens))
    known = set(keywords())
    return tuple(sorted(w for w in words if w in known))


def vocabulary_after(tokens: Sequence[Token]) -> tuple[str, ...]:
    """The closed vocabularies' words a name after `tokens` may be (none where a declared name goes)."""
    from sopdsl.vocabulary import WORDS

    shown = [t.type if t.type in ("NUMBER", "NAME") else str(t) for t in tokens]
    while shown[-1:] == [","]:
        # A list goes on as it began: `every monday, ` is read as `every `, `cannot kick, ` as `cannot `.
        shown = shown[:-2]
    if not shown or (shown[-1:] == ["("] and shown[-2:-1] == ["NAME"]):
        return ()  # `call crm_note(`: an argument's name, declared with the action
    for size in range(min(_LONGEST, len(shown)), 0, -1):
        tail = tuple(shown[-size:])
        kinds = _VOCABULARY_AFTER.get((shown[0], *tail)) or _VOCABULARY_AFTER.get(tail)
        if kinds is not None:
            return tuple(w for kind in kinds for word in WORDS[kind] for w in word.split())
    return ()


@cache
def _declaration_start() -> re.Pattern[str]:
    from sopdsl.syntax.expected import top_level_words
    from sopdsl.syntax.lark_lalr import lark_parser

    words = "|".join(sorted(map(re.escape, top_level_words(lark_parser()))))
    return re.compile(_DECLARATION_START.format(words=words), re.MULTILINE)
