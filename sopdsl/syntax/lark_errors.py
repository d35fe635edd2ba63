"""Lark's exceptions to diagnostics: the one module that reads them.

Input: an exception of Lark's own LALR parser (`sopdsl.syntax.lark_lalr`), the source and the
parser. Output: a located `Diagnostic` (SOP100 unexpected token, SOP101 unexpected character,
SOP102 unexpected end of file), with a hint naming what the grammar expected.
"""

from __future__ import annotations

from collections.abc import Sequence

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternRE, PatternStr

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.source import Source, Span
from sopdsl.syntax.parser import _BOUNDARY

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
}


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
    end = token.end_pos if token.end_pos is not None else start + len(token)
    after = source.text[end : end + 1]
    if after in _FULL_WIDTH:
        # `22：00`: the lexer took 22 as a number, and the parser met it where a time goes; the
        # full-width character just after it is the mistake.
        return _full_width(after, source.span(end, end + 1))
    span = source.span(start, end)
    return Diagnostic(
        "SOP100",
        Severity.ERROR,
        f"unexpected {_describe_token(token)}",
        span,
        _text_for_name(token, set(exc.expected), getattr(exc, "token_history", None) or ())
        or f"expected {_describe_expected(parser, set(exc.expected))}",
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
