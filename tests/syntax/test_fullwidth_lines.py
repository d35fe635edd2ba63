"""Lines indented with a full-width space (what a Chinese input method types in full-width mode)
or a pasted no-break space: every one told in one run, by check and fmt, and nothing invented."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.checker import check_program
from sopdsl.cli import main
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.lark_lalr import MAX_SYNTAX_ERRORS
from sopdsl.syntax.loader import load_text
from sopdsl.syntax.parser import PARSERS, parse

W = "\u3000"  # the full-width space
NBSP = "\u00a0"
MESSAGE = "full-width space (U+3000) where the language expects an ordinary space"
HINT = "type an ordinary space instead (switch the input method to half-width 半角, or to English)"

HEAD = 'timezone "Asia/Shanghai"\ntemplate welcome "欢迎" = "欢迎 {{ member.name }}"\n'  # lines 1-2


def typed(space: str) -> str:
    """A playbook whose every line inside is indented with `space` (lines 4-8)."""
    return HEAD + (
        'playbook one "一" {\n'  # 3
        f"{space}on member joins\n"  # 4
        f"{space}do {{\n"  # 5
        f'{space * 2}tag member "vip"\n'  # 6
        f"{space * 2}send welcome to member\n"  # 7
        f"{space}}}\n"  # 8
        "}\n"
    )


def found(text: str) -> list[tuple[str, int, int, str]]:
    """What `sopdsl check` reports of a file: (code, line, column, message), in order."""
    result = check_program(load_text(text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message) for d in result.diagnostics]


@pytest.mark.parametrize("via", PARSERS)
def test_every_line_indented_with_a_full_width_space_is_told_at_once(via: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(Source("a.sop", typed(W)), via)
    told = caught.value.diagnostics
    assert [(d.code, d.span.line, d.span.column) for d in told] == [
        ("SOP101", line, 1) for line in range(4, 9)
    ]
    assert {d.message for d in told} == {MESSAGE}
    assert {d.hint for d in told} == {HINT}
    assert all(d.span.end - d.span.start == 1 for d in told)


def test_a_pasted_no_break_space_is_told_on_every_line_too() -> None:
    assert found(typed(NBSP)) == [
        ("SOP101", line, 1, "no-break space (U+00A0) where the language expects an ordinary space")
        for line in range(4, 9)
    ]


def test_the_column_is_that_of_the_first_stray_space_after_ordinary_ones() -> None:
    text = typed(W).replace(f"{W * 2}tag", f"    {W}tag")
    assert [(line, column) for _, line, column, _ in found(text)] == [(4, 1), (5, 1), (6, 5), (7, 1), (8, 1)]


def test_nothing_follows_from_them_but_the_real_mistakes_still_show() -> None:
    # Line 7's template is misspelt, and a second playbook has a syntax error of its own: both
    # are told with the spaces, once each; the spaces themselves lead to nothing more.
    text = typed(W).replace("send welcome", "send welcom") + (
        'playbook two "二" {\n    on member joins\n    do {\n        tag member vip\n    }\n}\n'  # 10-15
    )
    assert [(code, line, column) for code, line, column, _ in found(text)] == [
        ("SOP101", 4, 1),
        ("SOP101", 5, 1),
        ("SOP101", 6, 1),
        ("SOP101", 7, 1),
        ("SOP104", 7, 8),
        ("SOP101", 8, 1),
        ("SOP100", 13, 20),
    ]


def test_a_full_width_space_inside_a_long_string_is_text() -> None:
    text = typed(W).replace('"欢迎 {{ member.name }}"', f'"""\n{W * 2}欢迎 {{{{ member.name }}}}\n"""')
    assert [line for _, line, _, _ in found(text)] == [6, 7, 8, 9, 10]  # the playbook's, two lines on


def test_past_the_cap_the_rest_are_told_in_one_diagnostic() -> None:
    # Indented so throughout: the first lines one by one, then how many more and what to do.
    steps = "".join(f'{W * 2}tag member "t{i}"\n' for i in range(30))
    text = HEAD + f'playbook one "一" {{\n{W}on member joins\n{W}do {{\n{steps}{W}}}\n}}\n'
    told = check_program(load_text(text, "a.sop")).diagnostics
    assert len(told) == MAX_SYNTAX_ERRORS + 1
    assert [d.span.line for d in told[:-1]] == list(range(4, 4 + MAX_SYNTAX_ERRORS))
    assert {d.message for d in told[:-1]} == {MESSAGE}
    more = told[-1]
    assert (more.code, more.span.line, more.span.column) == ("SOP101", 24, 1)
    assert more.message == "and 13 more lines indented with a full-width space (U+3000): lines 24 to 36"
    assert "find and replace" in (more.hint or "")
    assert "half-width 半角" in (more.hint or "")


@pytest.mark.parametrize("command", [("check",), ("fmt",), ("fmt", "--check")])
def test_check_and_fmt_tell_every_line_and_leave_the_file(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "ime.sop"
    path.write_text(typed(W), encoding="utf-8")
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for line in range(4, 9):
        assert f"ime.sop:{line}:1: error[SOP101]: {MESSAGE}" in result.output
    assert result.output.count(f"hint: {HINT}") == 5
    assert path.read_text(encoding="utf-8") == typed(W)
