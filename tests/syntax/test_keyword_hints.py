"""Syntax errors in an operator's words: a misspelt keyword gets `did you mean`, a hint never shows
a grammar-internal name and stays short, a missing `}` points at the `{` left open, and a file of
several playbooks reports the syntax errors of each at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.parser import PARSERS, lark_parser, parse

WELCOME = 'template welcome "欢迎" = "欢迎加入"\n'


def diagnostics(text: str, via: str | None = None) -> list[Diagnostic]:
    with pytest.raises(ParseError) as caught:
        parse(Source("t.sop", text), via)
    return list(caught.value.diagnostics)


def only(text: str) -> Diagnostic:
    (diagnostic,) = diagnostics(text)
    return diagnostic


# ---- 1. a misspelt keyword -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word", "meant"),
    [
        (
            WELCOME + 'playbok welcome "欢迎" {\n    on member joins\n    do: send welcome to member\n}\n',
            "playbok",
            "playbook",
        ),
        (
            WELCOME
            + "playbook welcome {\n    on member joins\n    do {\n        sned welcome to member\n    }\n}\n",
            "sned",
            "send",
        ),
        (
            WELCOME + "playbook welcome {\n    on member jion\n    do: send welcome to member\n}\n",
            "jion",
            "joins",
        ),
        (
            WELCOME + "playbook welcome {\n    on member joins\n    do: send welcome to membr\n}\n",
            "membr",
            "member",
        ),
        (
            WELCOME + "playbook welcome {\n    on member joins\n    do {\n        wiat 1 day\n    }\n}\n",
            "wiat",
            "wait",
        ),
    ],
)
def test_a_misspelt_keyword_is_told_the_keyword_meant(text: str, word: str, meant: str) -> None:
    diagnostic = only(text)
    assert diagnostic.code == "SOP100"
    assert diagnostic.message == f"unexpected name '{word}'"
    assert diagnostic.hint == f"did you mean '{meant}'?"
    assert text[diagnostic.span.start : diagnostic.span.end] == word


def test_a_keyword_in_capitals_is_told_keywords_are_lower_case() -> None:
    assert only('Template t = "x"').hint == "keywords are written in lower case: 'template'"


def test_a_word_near_no_keyword_gets_no_did_you_mean() -> None:
    hint = only(WELCOME + "hello\n").hint
    assert hint is not None and hint.startswith("expected ") and "did you mean" not in hint


def test_did_you_mean_is_shown_with_the_source_line_by_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.sop").write_text(
        WELCOME + "playbook welcome {\n    on member joins\n    do: sned welcome to member\n}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["check", "w.sop"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert (
        "w.sop:4:9: error[SOP100]: unexpected name 'sned'\n"
        "   4 |     do: sned welcome to member\n"
        "     |         ^^^^\n"
        "   hint: did you mean 'send'?\n"
    ) in result.output


# ---- 2. hints in plain words, and few ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "playbook p { on member joins when member.points }",
        "playbook p { on member joins when member.points do: stop }",
        "playbook p { on member joins do: set member.x = (member.y }",
        "playbook p { on member joins when member.points > 1 and }",
        "playbook p { on member joins do: send }",
        "timezone",
        "@",
    ],
)
def test_a_hint_shows_no_grammar_name(text: str) -> None:
    hint = only(text).hint or ""
    assert not re.search(r"\b[A-Z_]{2,}\b", hint), hint  # NAME, _NL, MULDIV
    assert not re.search(r"muldiv|lbrace|rbrace|__anon|\b_", hint, re.IGNORECASE), hint


def test_arithmetic_operators_are_named_as_typed() -> None:
    hint = only("playbook p { on member joins when member.points }").hint or ""
    assert "'*' or '/'" in hint and "+ or -" in hint


def test_every_terminal_of_the_grammar_has_plain_words() -> None:
    from sopdsl.syntax.expected import describe

    parser = lark_parser()
    ignored = set(parser.lexer_conf.ignore)  # whitespace and comments, never expected
    for terminal in parser.terminals:
        if terminal.name in ignored:
            continue
        words = describe(parser, terminal.name)
        assert words, terminal.name
        assert terminal.name not in words and not re.search(r"\b[A-Z_]{2,}\b", words), (terminal.name, words)


def test_quoted_text_is_called_so() -> None:
    assert only("timezone").hint == 'expected a quoted text "…"'


def test_a_new_line_is_offered_only_words_that_begin_a_statement() -> None:
    # After a template, `with` and `mentioning` could still continue it; a word at the start of a
    # new line was meant to begin a declaration.
    hint = only(WELCOME + "hello\n").hint or ""
    assert "'playbook'" in hint
    assert "'mentioning'" not in hint and "'with'" not in hint


def test_the_words_that_begin_a_statement_are_read_from_the_grammar() -> None:
    from sopdsl.syntax.expected import statement_starters

    starters = statement_starters(lark_parser())
    # A declaration, a playbook's setting, a step, and the `}` that ends a block.
    assert {"PLAYBOOK", "TEMPLATE", "ON", "DO", "SEND", "WAIT", "RBRACE"} <= starters
    assert not {"WITH", "MENTIONING", "VIA", "TO"} & starters


def test_a_long_list_of_possibilities_is_cut_to_the_few_closest() -> None:
    from sopdsl.syntax.expected import MOST

    hint = only(WELCOME + "playbook p {\n    on member joins\n    do {\n        plok\n    }\n}\n").hint or ""
    shown = hint.removeprefix("expected ").split(", ")
    assert len(shown) <= MOST + 1 and shown[-1] == "…"
    assert shown[0] == "'split'"  # the step most like `plok`


def test_a_semicolon_is_told_to_go() -> None:
    assert only('timezone "Asia/Shanghai";').hint == "a statement ends by itself, with no ';': remove it"


# ---- 3. a missing `}` ----------------------------------------------------------------------------

MISSING_IN_FIRST = (
    WELCOME
    + 'playbook welcome "欢迎" {\n'  # 2
    + "    on member joins\n"
    + "    do {\n"  # 4: never closed
    + "        send welcome to member\n"
    + "\n"
    + "}\n"  # 7: closes `do {` for the parser, though it is written where the playbook's goes
    + "\n"
    + 'playbook bye "再见" {\n'  # 9
    + "    on member leaves\n"
    + "    do: send welcome to member\n"
    + "}\n"
)


def test_a_missing_brace_before_the_next_playbook_points_at_the_brace_left_open() -> None:
    diagnostic = only(MISSING_IN_FIRST)
    assert diagnostic.code == "SOP100"
    assert diagnostic.message == "the '{' opened at line 4, column 8 in playbook 'welcome' is never closed"
    assert (diagnostic.span.line, diagnostic.span.column) == (4, 8)
    assert MISSING_IN_FIRST[diagnostic.span.start] == "{"
    assert (
        diagnostic.hint == "add a '}' where its block ends (noticed at line 9, where playbook 'bye' begins)"
    )


def test_a_missing_brace_at_the_end_of_the_file_points_at_the_brace_left_open() -> None:
    text = (
        WELCOME + 'playbook welcome "欢迎" {\n    on member joins\n    do {\n        send welcome to member\n'
    )
    diagnostic = only(text)
    assert diagnostic.code == "SOP102"
    assert diagnostic.message == "the '{' opened at line 4, column 8 in playbook 'welcome' is never closed"
    assert (diagnostic.span.line, diagnostic.span.column) == (4, 8)
    assert (
        diagnostic.hint
        == "add a '}' where its block ends (the file ends with it still open); 2 '}' are missing in all"
    )


def test_braces_in_text_do_not_count() -> None:
    text = 'template t = "{{ member.name }} {"\npolicy {\n    quiet hours 22:00 - 08:00\n'
    diagnostic = only(text)
    assert diagnostic.message == "the '{' opened at line 2, column 8 in policy is never closed"


def test_a_statement_cut_off_at_the_end_is_told_unfinished_not_unclosed() -> None:
    diagnostic = only("playbook p { on member joins do: set member.x = 2 *")
    assert diagnostic.message == "unexpected end of file"
    assert diagnostic.hint == "expected '(', + or -, a field like member.points, a number"


# ---- 4. every broken playbook at once ------------------------------------------------------------

SEVERAL = (
    WELCOME
    + 'playbook a "一" {\n    on member joins\n    do: sned welcome to member\n}\n'  # 2-5
    + 'playbook b "二" {\n    on member jion\n    do: send welcome to member\n}\n'  # 6-9
    + 'playbook c "三" {\n    on member joins\n    do {\n        send welcome to member\n}\n'  # 10-14
    + 'playbook d "四" {\n    on member leaves\n    do: send welcome to membr\n}\n'  # 15-18
    + 'playbook e "五" {\n    on member leaves\n    do: send welcome to member\n}\n'  # 19-22: fine
)


@pytest.mark.parametrize("via", PARSERS)
def test_each_broken_playbook_is_reported_in_one_run(via: str) -> None:
    found = [(d.code, d.span.line, d.span.column, d.hint) for d in diagnostics(SEVERAL, via)]
    assert found == [
        ("SOP100", 4, 9, "did you mean 'send'?"),
        ("SOP100", 7, 15, "did you mean 'joins'?"),
        ("SOP100", 12, 8, "add a '}' where its block ends (noticed at line 15, where playbook 'd' begins)"),
        ("SOP100", 17, 25, "did you mean 'member'?"),
    ]


def test_a_declaration_line_inside_a_text_block_is_no_place_to_start_again() -> None:
    text = (
        WELCOME
        + "playbook a {\n    on member joins\n    do: sned welcome to member\n}\n"
        + 'template notes = """\nplaybook 不是声明 {\n"""\n'
    )
    assert [d.span.line for d in diagnostics(text)] == [4]


def test_one_error_is_one_diagnostic() -> None:
    assert (
        len(diagnostics(WELCOME + "playbook a {\n    on member joins\n    do: sned welcome to member\n}\n"))
        == 1
    )


def test_parsing_again_stops_at_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from sopdsl.syntax import lark_lalr

    # Room for the rest of the file after `b` once: `c`'s error is not looked for.
    monkeypatch.setattr(lark_lalr, "RECOVERY_BUDGET", len(SEVERAL) - SEVERAL.index('playbook b "'))
    assert [d.span.line for d in diagnostics(SEVERAL, "lark")] == [4, 7]
