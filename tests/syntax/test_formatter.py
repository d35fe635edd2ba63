"""Tests for `sopdsl.syntax.formatter`, checked as black checks itself.

Every input is held to three properties: the output parses to the same syntax tree as the input
(`assert_equivalent`, spans aside), formatting the output again changes nothing (`assert_stable`)
and every comment survives (`assert_comments_kept`). Inputs: every playbook under `playbooks/`
(globbed when the tests are collected), the messy goldens in `tests/formatter_cases/` (`NAME.in`
formats to `NAME.expected`; set SOPDSL_UPDATE_GOLDENS=1 to rewrite them), grammar-generated
programs, and small cases that pin the layout rules one at a time.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from sopdsl.cli import main
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax import nodes, unparse
from sopdsl.syntax.formatter import format_file, format_source
from sopdsl.syntax.parser import lark_parser, parse

ROOT = Path(__file__).resolve().parent.parent.parent
PLAYBOOKS = ROOT / "playbooks"
CASES = Path(__file__).resolve().parent.parent / "formatter_cases"


# ---- the properties ---------------------------------------------------------------------------


def shape(value: object) -> object:
    """A syntax tree as plain data without spans: dataclasses become (type name, {field: ...})."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            {f.name: shape(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "span"},
        )
    if isinstance(value, tuple):
        return tuple(shape(item) for item in value)
    return value


def tree(text: str) -> nodes.File:
    return parse(Source("case.sop", text))


def fmt(text: str) -> str:
    return format_source(Source("case.sop", text))


def assert_equivalent(before: str, after: str) -> None:
    assert shape(tree(after).declarations) == shape(tree(before).declarations)


def assert_stable(formatted: str) -> None:
    assert fmt(formatted) == formatted


def comment_texts(text: str) -> Counter[str]:
    return Counter(c.text for c in tree(text).comments)


def assert_comments_kept(before: str, after: str) -> None:
    assert comment_texts(after) == comment_texts(before)


def assert_formats_well(text: str) -> str:
    """Format `text`, hold the result to every property, and return it."""
    out = fmt(text)
    assert_equivalent(text, out)
    assert_stable(out)
    assert_comments_kept(text, out)
    assert out == "" or (out.endswith("\n") and not out.endswith("\n\n"))
    return out


def test_shape_ignores_spans_but_not_values() -> None:
    a = tree('timezone "UTC"')
    b = tree('\n\n   timezone    "UTC"  ')
    c = tree('timezone "utc"')
    assert a.declarations != b.declarations  # the spans differ ...
    assert shape(a.declarations) == shape(b.declarations)  # ... and nothing else
    assert shape(a.declarations) != shape(c.declarations)
    assert shape(tree("counter n").declarations) != shape(tree('counter n "t"').declarations)


# ---- playbooks and goldens --------------------------------------------------------------------


PLAYBOOK_FILES = sorted(PLAYBOOKS.rglob("*.sop"))


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: str(p.relative_to(PLAYBOOKS)))
def test_playbooks_format_well(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        tree(text)
    except ParseError:
        pytest.skip("does not parse (yet): the checker's tests report it")
    assert_formats_well(text)


GOLDEN_INPUTS = sorted(CASES.glob("*.in"))


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_goldens(path: Path) -> None:
    out = assert_formats_well(path.read_text(encoding="utf-8"))
    expected = path.with_suffix(".expected")
    if os.environ.get("SOPDSL_UPDATE_GOLDENS"):
        expected.write_text(out, encoding="utf-8")
    assert out == expected.read_text(encoding="utf-8")


def test_goldens_exist() -> None:
    assert len(GOLDEN_INPUTS) >= 5
    assert all(p.with_suffix(".expected").exists() for p in GOLDEN_INPUTS)


# ---- layout -----------------------------------------------------------------------------------


def test_one_line_input_is_laid_out() -> None:
    text = (
        'timezone "UTC" policy { quiet hours 22:00-08:00 } playbook p { on member joins do { '
        'if member tagged "a" { stop } else if member.x==-5 { wait 2 days for member posts then '
        '{ tag member "x","y" } else { kick member } } else { split { red 50%: stop blue 50% { stop } } } } }'
    )
    assert assert_formats_well(text) == (
        'timezone "UTC"\n'
        "\n"
        "policy {\n"
        "    quiet hours 22:00 - 08:00\n"
        "}\n"
        "\n"
        "playbook p {\n"
        "    on member joins\n"
        "    do {\n"
        '        if member tagged "a" {\n'
        "            stop\n"
        "        } else if member.x == -5 {\n"
        "            wait 2 days for member posts then {\n"
        '                tag member "x", "y"\n'
        "            } else {\n"
        "                kick member\n"
        "            }\n"
        "        } else {\n"
        "            split {\n"
        "                red 50%: stop\n"
        "                blue 50% {\n"
        "                    stop\n"
        "                }\n"
        "            }\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def test_short_forms_stay_short_and_braces_stay_braces() -> None:
    text = "playbook p { do: stop at x: stop at y { stop } split { a 50%: stop b 50% { stop } } }"
    out = assert_formats_well(text.replace("split", "do { split") + " }")
    assert "    do: stop\n" in out
    assert "    at x: stop\n" in out
    assert "    at y {\n        stop\n    }\n" in out
    assert "a 50%: stop\n" in out
    assert "b 50% {\n" in out


def test_a_short_form_step_that_opens_a_block_continues_its_line() -> None:
    out = assert_formats_well("playbook p { do: if true { stop } else { stop } }")
    assert out == "playbook p {\n    do: if true {\n        stop\n    } else {\n        stop\n    }\n}\n"


def test_numbers_times_and_dates_as_written() -> None:
    out = assert_formats_well(
        "coupon c worth 007 stock 2.50 playbook p { do { set member.x = -0.50 add 010 to member.n } "
        "at 2026-01-02 9:05: stop }"
    )
    assert "worth 007 stock 2.50" in out
    assert "set member.x = -0.50" in out
    assert "add 010 to member.n" in out
    assert "at 2026-01-02 9:05: stop" in out


def test_conditions_keep_their_grouping_with_as_few_parentheses_as_possible() -> None:
    cases = {
        '(member tagged "a" or member tagged "b") and true': '(member tagged "a" or member tagged "b") and true',
        'member tagged "a" or (member tagged "b" and true)': 'member tagged "a" or member tagged "b" and true',
        "true or (false or true)": "true or (false or true)",
        "(true and false) and true": "(true and false) and true",
        "not (true or false)": "not (true or false)",
        "not ((true))": "not true",
    }
    for written, canonical in cases.items():
        out = assert_formats_well(f"playbook p {{ when {written} }}")
        assert out == f"playbook p {{\n    when {canonical}\n}}\n"


def test_silent_and_absence_triggers_are_written_as_the_user_did() -> None:
    out = assert_formats_well("playbook p { on member silent for 3 days on no message for 3 days }")
    assert "on member silent for 3 days\n" in out
    assert "on no message for 3 days\n" in out


def test_event_fields_and_group_options_stay_on_their_line() -> None:
    out = assert_formats_well(
        'event e "t" {a:text,b :number} action x {} group g{tagged "a","b" operator "o"} group h {}'
    )
    assert out == (
        'event e "t" { a: text, b: number }\naction x\ngroup g { tagged "a", "b" operator "o" }\ngroup h\n'
    )


# ---- strings ----------------------------------------------------------------------------------


def test_one_line_strings_are_re_escaped() -> None:
    text = r'template t = "a \"q\" b \\ c \n d \t e \x f"'
    out = assert_formats_well(text)
    assert out == 'template t = "a \\"q\\" b \\\\ c \\n d \\t e \\\\x f"\n'
    body = tree(out).declarations[0]
    assert isinstance(body, nodes.TemplateDecl)
    assert body.body.value == 'a "q" b \\ c \n d \t e \\x f'


def test_text_blocks_are_re_indented_without_changing_their_value() -> None:
    text = (
        "playbook p {\n"
        "do {\n"
        '            kick member because """\n'
        "  第一行\n"
        "      缩进\n"
        "\n"
        '  末行 "引号"\n'
        '  """ stop\n'
        "}}\n"
    )
    out = assert_formats_well(text)
    assert out == (
        "playbook p {\n"
        "    do {\n"
        '        kick member because """\n'
        "            第一行\n"
        "                缩进\n"
        "\n"
        '            末行 "引号"\n'
        '            """\n'
        "        stop\n"
        "    }\n"
        "}\n"
    )
    assert _kick_reason(text) == _kick_reason(out) == '第一行\n    缩进\n\n末行 "引号"'


def _kick_reason(text: str) -> str:
    playbook = tree(text).declarations[0]
    assert isinstance(playbook, nodes.PlaybookDecl)
    do = playbook.items[0]
    assert isinstance(do, nodes.DoSetting)
    kick = do.steps[0]
    assert isinstance(kick, nodes.Kick) and kick.reason is not None
    return kick.reason.value


@pytest.mark.parametrize(
    "raw",
    [
        '""""""',
        '"""\n"""',
        '"""x"""',
        '"""\n\n  a\n\n"""',
        '"""\n\ta\n\t  b\n  """',
        '"""  a"""',
        '"""a\n  b"""',
    ],
)
def test_text_block_values_survive(raw: str) -> None:
    text = f"template t = {raw}"
    out = assert_formats_well(text)
    assert out.endswith('    """\n')
    before = tree(text).declarations[0]
    after = tree(out).declarations[0]
    assert isinstance(before, nodes.TemplateDecl) and isinstance(after, nodes.TemplateDecl)
    assert after.body == dataclasses.replace(before.body, span=after.body.span)


# ---- comments ---------------------------------------------------------------------------------


def test_a_leading_comment_stays_before_its_node_at_its_indentation() -> None:
    text = "playbook p {\n# about the trigger\n  on member joins\n        # about do\ndo { stop }\n}"
    out = assert_formats_well(text)
    assert out == (
        "playbook p {\n"
        "    # about the trigger\n"
        "    on member joins\n"
        "    # about do\n"
        "    do {\n"
        "        stop\n"
        "    }\n"
        "}\n"
    )


def test_a_trailing_comment_stays_at_the_end_of_its_line() -> None:
    text = 'timezone "UTC"    # zone\nplaybook p {   # open\n on member joins#joins\n do: stop # short\n}  # close'
    out = assert_formats_well(text)
    assert out == (
        'timezone "UTC"  # zone\n'
        "\n"
        "playbook p {  # open\n"
        "    on member joins  #joins\n"
        "    do: stop         # short\n"
        "}  # close\n"
    )


def test_comments_at_the_end_of_a_block_stay_inside_it() -> None:
    text = (
        "policy { quiet hours 1:00 - 2:00\n # end of policy\n}\n"
        "playbook p {\n"
        "  do {\n"
        "    if true { stop\n # end of if\n } else if false { stop\n # end of else if\n } else {\n # only in else\n }\n"
        "    wait 1 day for member posts then { stop\n # end of then\n } else { stop\n # end of else\n }\n"
        "    split { a 50% { stop\n # end of arm\n }\n # end of split\n }\n"
        "    # end of do\n"
        "  }\n"
        "  # end of playbook\n"
        "}\n"
    )
    out = assert_formats_well(text)
    assert out == (
        "policy {\n"
        "    quiet hours 1:00 - 2:00\n"
        "    # end of policy\n"
        "}\n"
        "\n"
        "playbook p {\n"
        "    do {\n"
        "        if true {\n"
        "            stop\n"
        "            # end of if\n"
        "        } else if false {\n"
        "            stop\n"
        "            # end of else if\n"
        "        } else {\n"
        "            # only in else\n"
        "        }\n"
        "        wait 1 day for member posts then {\n"
        "            stop\n"
        "            # end of then\n"
        "        } else {\n"
        "            stop\n"
        "            # end of else\n"
        "        }\n"
        "        split {\n"
        "            a 50% {\n"
        "                stop\n"
        "                # end of arm\n"
        "            }\n"
        "            # end of split\n"
        "        }\n"
        "        # end of do\n"
        "    }\n"
        "    # end of playbook\n"
        "}\n"
    )


def test_comments_at_the_end_of_the_file_stay_at_the_end() -> None:
    out = assert_formats_well('timezone "UTC"\n   # one\n\n\n      # two')
    assert out == 'timezone "UTC"\n# one\n\n# two\n'
    assert assert_formats_well("# only\n  # comments\n") == "# only\n# comments\n"


def test_comments_between_braces_put_fields_on_lines_of_their_own() -> None:
    out = assert_formats_well("event e { a: text, # amount\n b: text }\ngroup g { # none yet\n}")
    assert out == "event e {\n    a: text,  # amount\n    b: text\n}\ngroup g {  # none yet\n}\n"


def test_a_reflowed_line_keeps_one_trailing_comment_and_lifts_the_others() -> None:
    text = 'playbook p {\n when member tagged "a" # one\n   # own line\n   and true # two\n}'
    out = assert_formats_well(text)
    assert out == 'playbook p {\n    # one\n    # own line\n    when member tagged "a" and true  # two\n}\n'


def test_trailing_comments_of_consecutive_lines_line_up() -> None:
    text = 'policy {\nquiet hours 1:00 - 2:00 # a\nat most 3 sends per member per day # b\n\nnever kick members tagged "核心" # c\n}'
    out = assert_formats_well(text)
    assert out == (
        "policy {\n"
        "    quiet hours 1:00 - 2:00             # a\n"
        "    at most 3 sends per member per day  # b\n"
        "\n"
        '    never kick members tagged "核心"  # c\n'
        "}\n"
    )


def test_comment_like_text_inside_strings_is_not_a_comment() -> None:
    out = assert_formats_well('template t = "# no" # yes\ntemplate u = """\n # no\n"""')
    assert comment_texts(out) == Counter({"# yes": 1})


def test_crlf_line_ends() -> None:
    text = 'timezone "UTC"  # zone\r\n\r\nplaybook p {\r\n    # about\r\n    on member joins\r\n}\r\n'
    out = fmt(text)
    assert "\r\n" not in out
    assert_equivalent(text, out)
    assert_stable(out)
    # The `\r` of a CRLF line end is not part of the comment.
    assert comment_texts(out) == Counter(t.removesuffix("\r") for t in comment_texts(text).elements())


# ---- blank lines ------------------------------------------------------------------------------


def test_blank_lines() -> None:
    text = (
        "\n\n# head\n\n\n\n"
        'timezone "UTC"\n'
        "counter a\n\n\n"
        "counter b\n"
        "playbook p {\n\n"
        "  on member joins\n\n\n"
        "  repeat once\n\n"
        "}\n"
        "# about the policy\n"
        "policy {\n}\n"
        "counter c\n\n\n"
    )
    out = assert_formats_well(text)
    assert out == (
        "# head\n"
        "\n"
        'timezone "UTC"\n'
        "counter a\n"
        "\n"
        "counter b\n"
        "\n"
        "playbook p {\n"
        "    on member joins\n"
        "\n"
        "    repeat once\n"
        "}\n"
        "\n"
        "# about the policy\n"
        "policy {\n"
        "}\n"
        "\n"
        "counter c\n"
    )


def test_empty_text_formats_to_empty_text() -> None:
    assert fmt("") == ""
    assert fmt("  \n\n ") == ""


# ---- the API ----------------------------------------------------------------------------------


def test_a_parse_error_is_raised() -> None:
    with pytest.raises(ParseError):
        fmt("playbook p {")


def test_format_file_without_source_matches_when_there_are_no_comments() -> None:
    text = (CASES / "odd_indentation.in").read_text(encoding="utf-8")
    assert format_file(tree(text)) == fmt(text)


def test_format_file_without_source_still_keeps_every_comment() -> None:
    text = (CASES / "comments.in").read_text(encoding="utf-8")
    out = format_file(tree(text))
    assert_equivalent(text, out)
    assert_comments_kept(text, out)


def test_a_formatter_bug_never_reaches_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unparse, "_names", lambda names: ", ".join(n.text for n in names[:1]))
    with pytest.raises(RuntimeError, match="bug in sopdsl fmt"):
        fmt("playbook p { scenario A, B }")


# ---- grammar-generated programs ---------------------------------------------------------------

_BOUNDARY = r"(?!\w)"


def _padded(*tokens: str) -> st.SearchStrategy[str]:
    # Spaces around every token, so that neighbours never glue into one token.
    return st.sampled_from([f" {t} " for t in tokens])


_LINE = st.lists(
    st.sampled_from(["x", "中文", " ", "# not a comment", '"q" r', "a\\b", "{ }", "\t"]), max_size=4
).map("".join)

_LONG_STRING = st.builds(
    lambda first, lines, indents, close: (
        ' """'
        + first
        + "".join(f"\n{indent}{line}" for indent, line in zip(indents, lines, strict=False))
        + close
        + '""" '
    ),
    st.sampled_from(["", "x"]),
    st.lists(_LINE, max_size=4),
    st.lists(st.sampled_from(["", "  ", "    ", "\t", "        "]), min_size=4, max_size=4),
    st.sampled_from(["", "\n", "\n    ", "y"]),
)

_STRING = st.lists(
    st.sampled_from(["a", "中", " ", '\\"', "\\\\", "\\n", "\\t", "\\q", "#", "'", "{", "}"]), max_size=5
).map(lambda parts: ' "' + "".join(parts) + '" ')


def _explicit(start: str) -> dict[str, st.SearchStrategy[str]]:
    explicit: dict[str, st.SearchStrategy[str]] = {}
    for terminal in lark_parser().terminals:
        pattern = terminal.pattern.value
        if terminal.pattern.type == "re" and pattern.endswith(_BOUNDARY):
            # Keywords are regexes with a lookahead Hypothesis cannot draw.
            explicit[terminal.name] = st.just(f" {pattern.removesuffix(_BOUNDARY)} ")
    explicit.update(
        NAME=_padded("a", "b_2", "欢迎", "x", "名字"),
        NUMBER=_padded("0", "3", "2.5", "007"),
        PERCENT=_padded("50%", "12.5%"),
        DATE=_padded("2026-11-11"),
        TIME=_padded("9:00", "20:30"),
        COMPARATOR=_padded("==", "!=", ">=", "<=", ">", "<"),
        SIGN=_padded("+", "-"),
        # ROOT must touch its dot; the dot is drawn empty so ignored text cannot come between.
        ROOT=st.sampled_from([" member.", " group.", " event.", " referrer."]),
        DOT=st.just(""),
        STRING=_STRING,
        LONG_STRING=_LONG_STRING,
        COMMENT=st.text(st.characters(exclude_characters="\r\n"), max_size=6).map(lambda s: f"#{s}\n"),
        WS=st.sampled_from([" ", "\n", "\n\n", "  \n    ", "\t", "\n\n\n  "]),
    )
    # Hypothesis refuses strategies for terminals the rule cannot reach.
    terminals, _, ignored = lark_parser().grammar.compile([start], ())
    reachable = {t.name for t in terminals} | set(ignored)
    return {name: strategy for name, strategy in explicit.items() if name in reachable}


def _grammar(start: str) -> st.SearchStrategy[str]:
    return from_lark(lark_parser(), start=start, explicit=_explicit(start))


# Whole files; single playbooks; and step blocks, where nesting and comments in blocks are dense.
PROGRAMS = st.one_of(
    _grammar("start"),
    _grammar("playbook_decl"),
    _grammar("body").map(lambda body: f"playbook p {{ do {body} }}"),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(PROGRAMS)
def test_generated_programs_format_well(text: str) -> None:
    try:
        tree(text)
    except ParseError:
        reject()
    assert_formats_well(text)


# ---- the command line -------------------------------------------------------------------------

MESSY = "playbook p {\n  on member joins   # joins\n  do: stop\n}\n"
TIDY = "playbook p {\n    on member joins  # joins\n    do: stop\n}\n"


def test_fmt_check_lists_an_unformatted_file(tmp_path: Path) -> None:
    path = tmp_path / "messy.sop"
    path.write_text(MESSY, encoding="utf-8")
    result = CliRunner().invoke(main, ["fmt", "--check", str(path)])
    assert result.exit_code == 1
    assert "would reformat" in result.output
    assert "messy.sop" in result.output
    assert path.read_text(encoding="utf-8") == MESSY


def test_fmt_check_passes_a_formatted_file(tmp_path: Path) -> None:
    path = tmp_path / "tidy.sop"
    path.write_text(TIDY, encoding="utf-8")
    result = CliRunner().invoke(main, ["fmt", "--check", str(path)])
    assert result.exit_code == 0, result.output
    assert "tidy.sop" not in result.output


def test_fmt_rewrites_in_place(tmp_path: Path) -> None:
    messy = tmp_path / "messy.sop"
    messy.write_text(MESSY, encoding="utf-8")
    tidy = tmp_path / "tidy.sop"
    tidy.write_text(TIDY, encoding="utf-8")
    result = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "reformatted" in result.output and "messy.sop" in result.output
    assert "tidy.sop" not in result.output
    assert messy.read_text(encoding="utf-8") == TIDY
    assert tidy.read_text(encoding="utf-8") == TIDY


def test_fmt_reports_a_file_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "broken.sop"
    path.write_text("playbook p {\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["fmt", str(path)])
    assert result.exit_code == 1
    assert "SOP102" in result.output
    assert path.read_text(encoding="utf-8") == "playbook p {\n"
