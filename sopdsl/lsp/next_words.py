"""The words the grammar can take at the cursor, so completion offers those, not every keyword.

Input: the document's text up to the start of the word being typed. Output: the keywords the
parser could take next (and the closed vocabularies' words where it takes a name), or None when
that cannot be read (a mistake earlier in the declaration): completion then offers every word.
Only the declaration the cursor is in is parsed, so a keystroke in a long file stays cheap.
"""

from __future__ import annotations

import re
from functools import cache

from sopdsl.lsp.context import keywords

# A top-level declaration starts at the beginning of a line with its keyword.
_DECLARATION_START = r"^(?:{words})\b"


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
        interactive.exhaust_lexer()
        accepted = set(interactive.accepts())  # type: ignore[no-untyped-call]  # Lark leaves it bare
    except LarkError:
        return None
    words = {word for word in (keyword_of(parser, t) for t in accepted) if word}
    if "NAME" in accepted:
        # A name here may be one of the closed vocabularies (`wait 3 天`, `per day`).
        words |= set(_vocabulary())
    known = set(keywords())
    return tuple(sorted(w for w in words if w in known)) or None


@cache
def _vocabulary() -> tuple[str, ...]:
    from sopdsl.vocabulary import WORDS

    return tuple(sorted({w for vocabulary in WORDS.values() for word in vocabulary for w in word.split()}))


@cache
def _declaration_start() -> re.Pattern[str]:
    from sopdsl.syntax.expected import top_level_words
    from sopdsl.syntax.lark_lalr import lark_parser

    words = "|".join(sorted(map(re.escape, top_level_words(lark_parser()))))
    return re.compile(_DECLARATION_START.format(words=words), re.MULTILINE)
