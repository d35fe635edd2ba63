"""Lark's exceptions to diagnostics: the one module that reads them.

Input: an exception of Lark's own LALR parser (`sopdsl.syntax.lark_lalr`), the source and the
parser. Output: a located `Diagnostic` (SOP100 unexpected token, SOP101 unexpected character,
SOP102 unexpected end of file), with a hint: `did you mean` for a misspelt keyword, else
what the grammar could take there, in plain words (`sopdsl.syntax.expected`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.lang.durations import UNITS
from sopdsl.source import Source, Span
from sopdsl.syntax.braces import declaration_named, starts_line, unclosed_brace
from sopdsl.syntax.expected import closing_brace, expected_hint, keyword_of, top_level, top_level_words
from sopdsl.syntax.spaces import unseen

_NO_SEMICOLON = "a statement ends by itself, with no ';': remove it"

# Text written where a declared name goes: what to write instead, by the keyword before it. Ops
# write `send "欢迎！" to member` first; "expected a name" alone does not say what the name is of.
_NAME_NOT_TEXT = {
    "send": 'send takes a template\'s name, not its text: declare `template welcome "欢迎语" = """…"""` '
    "and write `send welcome to member`",
    "message": 'with message takes a template\'s name, not its text: declare `template follow_up = """…"""` '
    "and write `with message follow_up`",
    "grant": 'grant takes a coupon\'s name: declare `coupon gift_50 "¥50 见面礼" worth 50` '
    "and write `grant gift_50 to member`",
}

# What the name after a keyword is of, for a hint better than "expected a name".
_NAME_AFTER = {
    "send": 'a template\'s name (declared as `template welcome = "…"`), as in `send welcome to member`',
    "grant": "a coupon's name (declared as `coupon gift_50 worth 50`), as in `grant gift_50 to member`",
    "call": "an action's name (declared with `action`)",
}
_KEYWORD_BEFORE = re.compile(r"\b(send|grant|call)[ \t]*\Z")
# `wait 3 }`, and `wait 3 send …`, where the parser took `send` for the unit and stopped after it.
_WAIT_NUMBER = re.compile(r"\bwait[ \t]+\d+(?:\.\d+)?[ \t]*(?:(?P<word>[^\W\d]\w*)[ \t]+)?\Z")
_UNIT_EXAMPLES = "分钟, 小时, 天, 周, minutes, hours, days, weeks"

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
    "、": ",",
    "—": "-",
    "－": "-",
    "–": "-",
    "＞": ">",
    "＜": "<",
    "！": "!",
}

# Comparison signs a Chinese input method or a pasted formula types as one character.
_MATH_SIGNS = {"≥": ">=", "≤": "<=", "≠": "!="}

# Words ops write for a keyword, from other languages or plain speech, that are too far from it
# for `did you mean` to find (`give` is closest to `invite`, `elif` to `if`): the keyword meant,
# offered only where the parser could take its first word.
_OPS_WORDS = {
    "elif": "else if",
    "elsif": "else if",
    "elseif": "else if",
    "give": "grant",
    "gives": "grant",
    "buys": "orders",
    "purchases": "orders",
    "pays": "orders",
    "says": "posts",
    "speaks": "posts",
    "chats": "posts",
    "quits": "leaves",
    "exits": "leaves",
    "enters": "joins",
    "remove": "kick",
}


def translate(exc: UnexpectedInput, source: Source, parser: Lark) -> Diagnostic:
    """The diagnostic of a Lark parse error in `source`."""
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = source.text[pos] if pos < len(source.text) else ""
        span = source.span(pos, pos + 1)
        if char in _FULL_WIDTH:
            return _full_width(char, span)
        if char == '"':
            return Diagnostic(
                "SOP101",
                Severity.ERROR,
                "unterminated string",
                span,
                'close the string with " on the same line, or use """...""" for text over several lines',
            )
        if char in (";", "；"):
            # The Chinese input method types `；`: it ends nothing either.
            return Diagnostic("SOP101", Severity.ERROR, f"unexpected character '{char}'", span, _NO_SEMICOLON)
        if not char.isprintable():
            return unseen(char, span)
        if char in _MATH_SIGNS:
            return Diagnostic(
                "SOP101",
                Severity.ERROR,
                f"unexpected character '{char}'",
                span,
                f"type '{_MATH_SIGNS[char]}' instead: comparisons are written ==, !=, >=, <=, >, <",
            )
        expected = _accepted(exc) or set(exc.allowed or ())
        return Diagnostic(
            "SOP101",
            Severity.ERROR,
            f"unexpected character '{char}'",
            span,
            expected_hint(parser, expected, "", starts_line(source.text, pos)) if expected else None,
        )
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        end = len(source.text)
        expected = _accepted(exc) or set(getattr(exc, "expected", ()) or ())
        unclosed = _unclosed(source, parser, expected, end, None)
        if unclosed is not None:
            return unclosed
        return Diagnostic(
            "SOP102",
            Severity.ERROR,
            "unexpected end of file",
            source.span(end, end),
            expected_hint(parser, expected, "", False) if expected else "is a '}' missing?",
        )
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    start = token.start_pos or 0
    end = token.end_pos if token.end_pos is not None else start + len(token)
    after = source.text[end : end + 1]
    if after in _FULL_WIDTH:
        # `22：00`: the lexer took 22 as a number, and the parser met it where a time goes; the
        # full-width character just after it is the mistake.
        return _full_width(after, source.span(end, end + 1))
    expected = _accepted(exc) or set(exc.expected)
    at_line_start = starts_line(source.text, start)
    if at_line_start and (token.type in top_level(parser) or str(token) in top_level_words(parser)):
        # The contextual lexer reads `playbook` as a name where no declaration can start.
        unclosed = _unclosed(source, parser, expected, start, token)
        if unclosed is not None:
            return unclosed
    return Diagnostic(
        "SOP100",
        Severity.ERROR,
        f"unexpected {_describe_token(token)}",
        source.span(start, end),
        _text_for_name(token, expected, getattr(exc, "token_history", None) or ())
        or _wait_unit(source.text[source.text.rfind("\n", 0, start) + 1 : start])
        or _name_of(source.text[source.text.rfind("\n", 0, start) + 1 : start], expected)
        or _ops_word(parser, str(token), expected)
        or _misspelt(parser, str(token), expected)
        or expected_hint(parser, expected, str(token), at_line_start),
    )


def _accepted(exc: UnexpectedInput) -> set[str]:
    """What the parser could take where it stopped, tried one terminal at a time.

    Lark's own `expected` is the LALR table's look-ahead set (with terminals a merged state only
    seems to take) or, when the token was read by the fallback lexer, every terminal of the
    lexer's state: `end of file` and `'appid'` offered after `member.points`.
    """
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is None:
        return set()
    try:
        return set(interactive.accepts())
    except Exception:  # a hint is not worth a crash: fall back to Lark's own list
        return set()


def _misspelt(parser: Lark, word: str, expected: set[str]) -> str | None:
    """`did you mean 'send'?` for a word close to a keyword the parser could take here."""
    if not word[:1].isalpha():
        return None
    keywords = {k for k in (keyword_of(parser, name) for name in expected) if k}
    if word != word.lower() and word.lower() in keywords:
        return f"keywords are written in lower case: '{word.lower()}'"
    return did_you_mean(word.lower(), keywords)


def _ops_word(parser: Lark, word: str, expected: set[str]) -> str | None:
    """`did you mean 'else if'?` for `elif`: a word of `_OPS_WORDS` where its keyword could go."""
    meant = _OPS_WORDS.get(word.lower())
    if meant is None:
        return None
    keywords = {keyword_of(parser, name) for name in expected}
    # After an `if` block's `}` the parser has already closed the `if` when it meets `elif`, so
    # it takes a new step there (`if`), not `else`: the last word is the one to look for.
    return f"did you mean '{meant}'?" if meant.split()[-1] in keywords else None


def _unclosed(
    source: Source, parser: Lark, expected: set[str], at: int, token: Token | None
) -> Diagnostic | None:
    """A `{` never closed, when the parser met the end of file or the next declaration inside it.

    Only where a `}` is what the parser could take (`expected`): a statement cut off before the
    end of the file is told as unfinished, with what could complete it.
    """
    if not expected & closing_brace(parser):
        return None
    found = unclosed_brace(source.text, at)
    if found is None:
        return None
    brace, missing = found
    line, column = source.position(brace)
    keywords = top_level_words(parser)
    owner = declaration_named(source.text, brace, keywords)
    where = f" in {owner}" if owner else ""
    if token is None:
        noticed = "the file ends with it still open"
    else:
        line_end = source.text.find("\n", at)
        next_one = declaration_named(source.text, len(source.text) if line_end < 0 else line_end, keywords)
        noticed = f"noticed at line {token.line}, where {next_one or 'the next declaration'} begins"
    also = f"; {missing} '}}' are missing in all" if missing > 1 else ""
    return Diagnostic(
        "SOP102" if token is None else "SOP100",
        Severity.ERROR,
        f"the '{{' opened at line {line}, column {column}{where} is never closed",
        source.span(brace, brace + 1),
        f"add a '}}' where its block ends ({noticed}){also}",
    )


def _full_width(char: str, span: Span) -> Diagnostic:
    return Diagnostic(
        "SOP101",
        Severity.ERROR,
        f"full-width character '{char}' where the language expects '{_FULL_WIDTH[char]}'",
        span,
        f"type the ASCII '{_FULL_WIDTH[char]}' instead (switch the input method to English)",
    )


def _text_for_name(token: Token, expected: set[str], before: Sequence[Token]) -> str | None:
    """The hint for text written where only a declared name may go, after a keyword that says
    which (`before`: the parser's tokens before this one), or for a bare word where only text may
    go (`tag member vip`)."""
    if token.type == "NAME" and expected and expected <= {"STRING", "LONG_STRING"}:
        return f'text goes in quotes here: "{token}"'
    if token.type not in {"STRING", "LONG_STRING"} or expected != {"NAME"} or not before:
        return None
    return _NAME_NOT_TEXT.get(str(before[-1]))


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


def _name_of(before: str, expected: set[str]) -> str | None:
    """`expected a template's name …` where only a name may follow `send`, `grant` or `call`
    (`before`: the line up to the unexpected token)."""
    found = _KEYWORD_BEFORE.search(before)
    if found is None or expected != {"NAME"}:
        return None
    return f"expected {_NAME_AFTER[found.group(1)]}"


def _wait_unit(before: str) -> str | None:
    """The hint for a `wait` whose number has no unit (`before`: the line up to the token)."""
    found = _WAIT_NUMBER.search(before)
    if found is None:
        return None
    word = found.group("word")
    if word is None:
        return f"a wait needs a unit after its number: {_UNIT_EXAMPLES}, as in `wait 3 天`"
    if word in UNITS:
        return None
    return f"'{word}' was read as the unit of the wait: write one after the number ({_UNIT_EXAMPLES}), as in `wait 3 天`"
