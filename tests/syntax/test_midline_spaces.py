"""Full-width (and pasted) spaces in the middle of a line of code, on lines that open or close a
block: every one told in one run, as indented lines are, never one inside a text, and nothing
invented after them."""

from __future__ import annotations

import pytest

from sopdsl.checker import check_program
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.lark_lalr import MAX_SYNTAX_ERRORS
from sopdsl.syntax.loader import load_text
from sopdsl.syntax.parser import PARSERS, parse
from sopdsl.syntax.spaces import stray_in_code

W = "\u3000"  # the full-width space
NBSP = "\u00a0"
MESSAGE = "full-width space (U+3000) where the language expects an ordinary space"
HINT = "type an ordinary space instead (switch the input method to half-width 半角, or to English)"

HEAD = f'timezone "Asia/Shanghai"\ntemplate welcome "欢迎" = "欢迎{W}{{{{ member.name }}}}"\n'  # 1-2


def typed(space: str) -> str:
    """A playbook with `space` between words on lines 3, 5, 6, 8 and 10, each opening or closing
    a block (a text and a comment with one too, lines 2 and 4, which are no mistake)."""
    return HEAD + (
        f'playbook{space}one "一" {{\n'  # 3
        f"    on member joins  # 欢迎{W}新人\n"  # 4
        f"    do{space}{{\n"  # 5
        f'        if member.name starts with "A{W}"{space}{{\n'  # 6
        "            send welcome to member\n"  # 7
        f"        }}{space}else {{\n"  # 8
        '            tag member "vip"\n'  # 9
        f"        }}{space}\n"  # 10
        "    }\n"
        "}\n"
    )


def found(text: str) -> list[tuple[str, int, int, str]]:
    """What `sopdsl check` reports of a file: (code, line, column, message), in order."""
    result = check_program(load_text(text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message) for d in result.diagnostics]


@pytest.mark.parametrize("via", PARSERS)
def test_every_full_width_space_between_words_is_told_at_once(via: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(Source("a.sop", typed(W)), via)
    told = caught.value.diagnostics
    lines = typed(W).splitlines()
    assert [(d.code, d.span.line, d.span.column) for d in told] == [
        ("SOP101", line, lines[line - 1].rindex(W) + 1) for line in (3, 5, 6, 8, 10)
    ]
    assert {d.message for d in told} == {MESSAGE}
    assert {d.hint for d in told} == {HINT}
    assert all(d.span.end - d.span.start == 1 for d in told)


def test_a_pasted_no_break_space_is_told_the_same_way() -> None:
    assert [(line, message) for _, line, _, message in found(typed(NBSP))] == [
        (line, "no-break space (U+00A0) where the language expects an ordinary space")
        for line in (3, 5, 6, 8, 10)
    ]


def test_spaces_inside_texts_and_comments_are_text_and_kept() -> None:
    # The same file typed with ordinary spaces between words: the full-width ones left in the
    # template, the `"A　"` test and the comment are no mistake, and stay as written.
    text = typed(" ")
    assert found(text) == []
    assert stray_in_code(text) == []


def test_nothing_follows_from_them_but_the_real_mistakes_still_show() -> None:
    text = typed(W).replace("send welcome", "send welcom") + (
        'playbook two "二" {\n    on member joins\n    do {\n        tag member vip\n    }\n}\n'  # 13-18
    )
    assert [(code, line) for code, line, _, _ in found(text)] == [
        ("SOP101", 3),
        ("SOP101", 5),
        ("SOP101", 6),
        ("SOP104", 7),
        ("SOP101", 8),
        ("SOP101", 10),
        ("SOP100", 16),
    ]


def test_a_line_with_a_quote_left_open_is_not_guessed_at() -> None:
    # Line 9's quote is never closed: which of its spaces are text is a guess, so none of them is
    # taken as a stray space; the parser stops at the first (before any quote) on its own, once.
    text = typed(W).replace('tag member "vip"', f'tag{W}member "v{W}ip')
    line_9 = text.index("tag")
    assert [start for start, _ in stray_in_code(text)] == [
        start for start, _ in stray_in_code(typed(W)) if start < line_9 or start > text.index("ip", line_9)
    ]
    assert [(line, column) for _, line, column, _ in found(text)] == [
        (3, 9),
        (5, 7),
        (6, 40),
        (8, 10),
        (9, len("            tag") + 1),
        (10, 10),
    ]


def test_after_a_long_text_left_open_nothing_more_is_told() -> None:
    text = typed(W).replace("tag member", 'tag member """')
    # Line 10's space may be text: the parser's own error at the open text is the last word.
    assert [(code, line) for code, line, _, _ in found(text)] == [
        ("SOP101", 3),
        ("SOP101", 5),
        ("SOP101", 6),
        ("SOP101", 8),
        ("SOP100", 9),
    ]


def test_past_the_cap_the_rest_are_told_in_one_diagnostic() -> None:
    steps = "".join(f'        tag{W}member "t{i}"\n' for i in range(30))
    text = f'timezone "Asia/Shanghai"\nplaybook one "一" {{\n    on member joins\n    do{W}{{\n{steps}    }}\n}}\n'
    told = check_program(load_text(text, "a.sop")).diagnostics
    assert len(told) == MAX_SYNTAX_ERRORS + 1
    assert [d.span.line for d in told[:-1]] == list(range(4, 4 + MAX_SYNTAX_ERRORS))
    assert {d.message for d in told[:-1]} == {MESSAGE}
    more = told[-1]
    assert (more.code, more.span.line, more.span.column) == ("SOP101", 24, 12)
    assert more.message == "and 11 more lines with a full-width space (U+3000) in the code: lines 24 to 34"
    assert "find and replace" in (more.hint or "")


def test_a_zero_width_space_inside_a_word_is_left_to_the_parser() -> None:
    # An ordinary space in its place would split the word: only Lark's own error, at it.
    text = typed(" ").replace("send welcome", "send wel\u200bcome")
    assert stray_in_code(text) == []
    assert [(code, line) for code, line, _, _ in found(text)] == [("SOP101", 7)]
