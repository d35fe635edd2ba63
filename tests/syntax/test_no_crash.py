"""Whatever the input, the front end answers with diagnostics, never an exception.

Grammar-shaped text from `hypothesis.extra.lark.from_lark`, token soup, random text and random
bytes go through `load`/`check_program` (and some through the CLI); then the edge cases a user
can really produce: empty files, BOMs, CRLF, tabs, binary data, very deep nesting, 5 MB files.
"""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from sopdsl.checker import CheckResult, check_program
from sopdsl.cli import main
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.lark_lalr import _parse_reference
from sopdsl.syntax.loader import load, load_text
from sopdsl.syntax.parser import lark_parser, parse
from sopdsl.textfiles import MAX_FILE_BYTES

if TYPE_CHECKING:
    from collections.abc import Iterator

ZONE = 'timezone "Asia/Shanghai"\n'
FUZZ = settings(
    max_examples=int(os.environ.get("SOPDSL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_text(text: str, path: str = "fuzz.sop") -> CheckResult:
    """Load and check text; any exception fails the test that calls it."""
    result = check_program(load_text(text, path))
    for diagnostic in result.diagnostics:
        assert re.fullmatch(r"SOP\d{3}", diagnostic.code), diagnostic
        assert diagnostic.message
        assert diagnostic.span.line >= 1 and diagnostic.span.column >= 1, diagnostic
    return result


def check_file(path: Path) -> CheckResult:
    result = check_program(load(path))
    assert all(re.fullmatch(r"SOP\d{3}", d.code) for d in result.diagnostics)
    return result


# ---- strategies ----------------------------------------------------------------------------------

_NAMES = [
    "welcome",
    "hi",
    "g1",
    "core_club",
    "new50",
    "tuesday_class",
    "share_photo",
    "crm_note",
    "level",
    "region",
    "points",
    "name",
    "nickname",
    "channel",
    "joined_at",
    "days",
    "day",
    "hours",
    "minutes",
    "weeks",
    "monday",
    "weekday",
    "text",
    "number",
    "date",
    "bool",
    "sends",
    "kicks",
    "drop",
    "skip",
    "run",
    "latest",
    "new",
    "finish",
    "migrate",
    "message",
    "messages",
    "J1",
    "欢迎语",
    "周一",
    "天",
    "小时",
    "潜水清退",
    "x",
]
_STRINGS = [
    '"Asia/Shanghai"',
    '"UTC+8"',
    '"Asia"',
    '"core"',
    '"normal"',
    '"欢迎 {{ member.name }}"',
    '"{{ event.channel }} {{ coupon.code }} {{ group.name }}"',
    '"{{ member.name }"',
    '"{% if member.name %}"',
    '"0 9 1 * *"',
    '"0 25 * * *"',
    '"^.+-.+$"',
    '"(("',
    '"common.sop"',
    '"templates/poster.j2"',
    '""',
    '"a\\"b\\\\"',
    '"{{ ((((((((((x)))))))))) }}"',
]
_LONG_STRINGS = ['"""\n    {{ member.name }}，欢迎加入！\n    群规：不发广告。\n    """', '""""""', '"""x"""']


def _padded(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda s: f" {s} ")


def _reachable(start: str) -> set[str]:
    """The terminal names the grammar can produce from rule `start`."""
    rules = lark_parser().rules
    seen, todo, terminals = {start}, [start], {"COMMENT"}
    while todo:
        origin = todo.pop()
        for rule in rules:
            if rule.origin.name == origin:
                for symbol in rule.expansion:
                    if symbol.is_term:
                        terminals.add(symbol.name)
                    elif symbol.name not in seen:
                        seen.add(symbol.name)
                        todo.append(symbol.name)
    return terminals


def _explicit(start: str = "start") -> dict[str, st.SearchStrategy[str]]:
    """Strategies for the terminals Hypothesis cannot draw from their regex, space-padded."""
    explicit: dict[str, st.SearchStrategy[str]] = {}
    boundary = "(?!\\w)"
    for terminal in lark_parser().terminals:
        pattern = terminal.pattern.value
        if pattern.endswith(boundary):  # keywords: `send(?!\w)`
            keyword = pattern.removesuffix(boundary).replace("\\", "")
            explicit[terminal.name] = st.just(f" {keyword} ")
    explicit.update(
        {
            "ROOT": st.sampled_from([" member", " group", " event", " referrer"]),
            "NAME": _padded(
                st.sampled_from(_NAMES) | st.from_regex(r"[a-z_\u4e00-\u9fa5][a-z0-9_]{0,6}", fullmatch=True)
            ),
            "STRING": _padded(st.sampled_from(_STRINGS)),
            "LONG_STRING": _padded(st.sampled_from(_LONG_STRINGS)),
            "NUMBER": _padded(
                st.sampled_from(["0", "1", "3", "1.5", "100", "99999999999999999999", "9" * 400])
                | st.integers(0, 10_000).map(str)
            ),
            "PERCENT": _padded(st.sampled_from(["0%", "50%", "100%", "150%", "33.3%"])),
            "DATE": _padded(
                st.sampled_from(["2026-11-11", "2026-02-30", "2026-13-01", "0000-00-00"])
                | st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")
            ),
            "TIME": _padded(
                st.sampled_from(["20:00", "0:00", "23:59", "24:00", "25:00", "9:60", "99:99"])
                | st.times().map(lambda t: f"{t.hour}:{t.minute:02d}")
            ),
            "COMPARATOR": _padded(st.sampled_from(["==", "!=", ">=", "<=", ">", "<"])),
            "SIGN": _padded(st.sampled_from(["+", "-"])),
            "COMMENT": st.just(" # 注释 {\n"),
        }
    )
    reachable = _reachable(start)
    return {name: strategy for name, strategy in explicit.items() if name in reachable}


# The grammar's own programs, with a time zone up front so the checker goes past SOP307.
PROGRAMS = st.builds(
    lambda zone, body: zone + body,
    st.sampled_from([ZONE, ""]),
    from_lark(lark_parser(), explicit=_explicit()),
)
# Declarations for the names the strategies draw, so that generated playbooks are checked deeply
# (template variables against their place, flow checks, types) rather than stopping at SOP104.
PRELUDE = (
    ZONE
    + """
attribute level: number
attribute region: text
counter lottery
event share_photo { image: text }
action crm_note { level: text }
coupon new50 worth 50
group g1 { tagged "core" }
group core_club
calendar tuesday_class = every tuesday at 20:00
template welcome = "{{ member.name }} {{ event.channel }}"
template hi = "hi"
template 欢迎语 = "{{ coupon.code }} {{ group.name }} {{ referrer.name }}"
policy { never kick members tagged "core" }
"""
)
PLAYBOOKS = st.lists(
    from_lark(lark_parser(), start="playbook_decl", explicit=_explicit("playbook_decl")),
    min_size=1,
    max_size=3,
).map(lambda playbooks: PRELUDE + "\n".join(playbooks))
_SOUP_TOKENS = [
    *(f" {word} " for word in ("send", "to", "member", "group", "on", "do", "at", "if", "else", "wait")),
    *(f" {word} " for word in ("for", "playbook", "template", "calendar", "every", "not", "and", "or")),
    *("{", "}", "(", ")", "[", "]", ":", ",", "=", ".", "%", "-", "+", ">=", "\n", "\t", "\r\n"),
    *('"', '"""', "{{", "}}", "{%", "%}", "#", "\\", "member.", "event.", "，", "“", "”", "："),
    *("\u3000", "\u00a0", " \u3000"),  # spaces a Chinese input method or a paste brings
    *(" welcome ", " 欢迎语 ", " 20:00 ", " 2026-11-11 ", " 3 days ", " 50% ", " 1.5 ", ZONE),
]
SOUP = st.lists(st.sampled_from(_SOUP_TOKENS), max_size=80).map("".join)
TEXT = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(list('{}()[]"#:,=.%\n\t欢迎语，“”')), max_size=300
)


# ---- property tests ------------------------------------------------------------------------------


@FUZZ
@given(PROGRAMS)
def test_grammar_shaped_programs_only_give_diagnostics(text: str) -> None:
    check_text(text)


@FUZZ
@given(PLAYBOOKS)
def test_grammar_shaped_playbooks_only_give_diagnostics(text: str) -> None:
    check_text(text)


@FUZZ
@given(SOUP)
def test_token_soup_only_gives_diagnostics(text: str) -> None:
    check_text(text)


@FUZZ
@given(TEXT)
def test_random_text_only_gives_diagnostics(text: str) -> None:
    check_text(text)


_GOLDENS = sorted((Path(__file__).parent.parent / "goldens" / "diagnostics").glob("*.sop"))
_REAL_TEXTS = [p.read_bytes().decode("utf-8", errors="replace") for p in _GOLDENS]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A real playbook with a few random edits: what a half-typed file looks like."""
    text = draw(st.sampled_from(_REAL_TEXTS)) if _REAL_TEXTS else ZONE
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 20)))
        insert = draw(st.sampled_from(["", *_SOUP_TOKENS]) | st.just(text[start:end] * 2))
        text = text[:start] + insert + text[end:]
    return text


@FUZZ
@given(_mutated())
def test_edited_real_playbooks_only_give_diagnostics(text: str) -> None:
    check_text(text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no_crash") / "fuzz.sop"


@FUZZ
@given(data=st.binary(max_size=300) | SOUP.map(lambda s: s.encode("utf-8") + b"\xff\xfe\xc4"))
def test_random_bytes_only_give_diagnostics(scratch: Path, data: bytes) -> None:
    scratch.write_bytes(data)
    check_file(scratch)


@settings(max_examples=15, deadline=None)
@given(SOUP)
def test_the_cli_answers_with_an_exit_code_not_a_traceback(scratch: Path, text: str) -> None:
    scratch.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(scratch)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---- edge cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n\n",
        "# 只有注释\n# only comments",
        "# no newline at the end",
        "\ufeff",
        "\ufeff" + ZONE,
        "\r\n\r\n",
        "\t\t\n\t",
        "\x0b\x0c\x1b[31m",
        "}",
        '"',
        '"""',
        "{{ member.name }}",
        "playbook",
        "playbook p {",
        "template t = file",
        "\u200b" + ZONE,
        "\U0001f600",
    ],
    ids=repr,
)
def test_edge_case_text(text: str) -> None:
    check_text(text)


def test_bom_is_ignored_and_columns_still_count_from_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.sop"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + ZONE.encode()
        + b'template hi = "hi"\nplaybook p { on member joins do: send hx to member }\n'
    )
    result = check_file(path)
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == [("SOP104", 3, 39)]


def test_crlf_and_tabs_give_the_same_diagnostics_as_lf(tmp_path: Path) -> None:
    text = ZONE + 'template hi = "hi"\nplaybook p {\n\ton member joins\n\tdo: send hx to member\n}\n'
    lf = check_text(text)
    crlf = check_text(text.replace("\n", "\r\n"))
    assert [(d.code, d.span.line, d.span.column) for d in lf.diagnostics] == [("SOP104", 5, 11)]
    assert [(d.code, d.span.line, d.span.column) for d in crlf.diagnostics] == [("SOP104", 5, 11)]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("binary", bytes(range(256)) * 4, "SOP003"),
        ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "SOP003"),
        ("gbk", 'timezone "Asia/Shanghai"\n# 中文注释\n'.encode("gbk"), "SOP002"),
        ("latin1", b'timezone "Europe/Paris" # caf\xe9\n', "SOP002"),
        ("utf16", 'timezone "Asia/Shanghai"'.encode("utf-16"), "SOP002"),
        ("truncated utf-8", "欢迎".encode()[:-1], "SOP002"),
        ("lone continuation byte", b"\x80", "SOP002"),
    ],
)
def test_undecodable_files(tmp_path: Path, name: str, data: bytes, code: str) -> None:
    path = tmp_path / "bad.sop"
    path.write_bytes(data)
    result = check_file(path)
    assert [d.code for d in result.diagnostics] == [code], name


@pytest.mark.parametrize(
    "line",
    [
        'include "/dev/zero"',  # endless: must not be read
        'include "/dev/null"',
        'include "/"',
        'include ""',
        'include "fuzz.sop"',  # itself
        'include "a\\b"',
        'template t = file "/dev/zero"',
        'template t = file "/"',
        'template t = file ""',
        'include "' + "x" * 5000 + '"',  # a name too long for the file system
    ],
)
def test_includes_and_template_files_that_are_not_files(line: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.sop"
    path.write_text(ZONE + line + "\n", encoding="utf-8")
    result = check_file(path)
    assert result.diagnostics, line
    # SOP006: an absolute path outside the playbook's folder is refused before it is looked at.
    assert all(d.code in ("SOP001", "SOP002", "SOP003", "SOP005", "SOP006") for d in result.diagnostics), line


def test_invalid_utf8_is_located_in_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bad.sop"
    path.write_bytes('timezone "Asia/Shanghai"\ntemplate 欢迎 = "欢迎'.encode() + b"\xff" + b'"\n')
    (diagnostic,) = check_file(path).diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("SOP002", 2, 18)


def _nested(depth: int) -> Iterator[tuple[str, str]]:
    guard = "member.name is set"
    yield "parentheses", f"when {'(' * depth}{guard}{')' * depth} do: send hi to member"
    yield "not", f"when {'not ' * depth}{guard} do: send hi to member"
    yield "not-parentheses", f"when {'not (' * depth}{guard}{')' * depth} do: send hi to member"
    tag_and = '(member tagged "a" and '
    yield "and-or", f"when {tag_and * depth}{guard}{')' * depth} do: send hi to member"
    yield "if", "do { " + 'if member tagged "a" { ' * depth + "send hi to member" + " }" * depth + " }"
    yield "split", "do { " + "split { a 100% { " * depth + "stop" + " } }" * depth + " }"
    yield "wait", "do { " + "wait 1 day for member posts then { " * depth + "stop" + " }" * depth + " }"
    yield "unclosed", "do { " + 'if member tagged "a" { ' * depth


# Ten thousand levels for the three shapes a user could type; the others go well past Python's
# recursion limit too, at less cost to the suite.
_DEPTHS = {"parentheses": 10_000, "not": 10_000, "if": 10_000}


@pytest.mark.parametrize("kind", [k for k, _ in _nested(0)])
def test_very_deep_nesting(kind: str) -> None:
    body = dict(_nested(_DEPTHS.get(kind, 3_000)))[kind]
    text = ZONE + 'template hi = "hi"\nplaybook p { on member joins ' + body + " }\n"
    check_text(text)


@pytest.mark.parametrize("kind", ["not", "not-parentheses"])
def test_parse_itself_reports_deep_not_chains(kind: str) -> None:
    body = dict(_nested(3_000))[kind]
    text = ZONE + 'template hi = "hi"\nplaybook p { on member joins ' + body + " }\n"
    with pytest.raises(ParseError):
        parse(Source("deep.sop", text))


def test_a_five_megabyte_file_of_junk(tmp_path: Path) -> None:
    path = tmp_path / "junk.sop"
    path.write_text(ZONE + "playbook " + "名" * (5 * 1024 * 1024 // 3) + " {\n", encoding="utf-8")
    started = time.perf_counter()
    result = check_file(path)
    assert [d.code for d in result.diagnostics] == ["SOP102"]
    assert time.perf_counter() - started < 10


def test_a_five_megabyte_file_with_an_early_mistake(tmp_path: Path) -> None:
    path = tmp_path / "big.sop"
    block = 'template t "模板" = "你好 {{ member.name }}，欢迎加入！"\n'
    path.write_text(
        ZONE + "playbook p {\n" + block * (5 * 1024 * 1024 // len(block.encode())), encoding="utf-8"
    )
    assert path.stat().st_size > 5_000_000
    result = check_file(path)
    assert [d.code for d in result.diagnostics] == ["SOP100"]


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.sop"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written or read
    assert [d.code for d in check_file(path).diagnostics] == ["SOP004"]


def test_a_realistic_five_megabyte_playbook_file(tmp_path: Path) -> None:
    parts = [ZONE]
    size, i = 0, 0
    while size < 5 * 1024 * 1024:
        part = (
            f'template t{i} "模板{i}" = "你好 {{{{ member.name }}}}，欢迎第{i}位"\n'
            f"playbook p{i} {{ on member joins do {{ send t{i} to member\n"
            f"    wait 3 days for member posts else {{ send t{i} to membr }} }} }}\n"
        )
        parts.append(part)
        size += len(part.encode())
        i += 1
    path = tmp_path / "big.sop"
    path.write_text("".join(parts), encoding="utf-8")
    assert {d.code for d in check_file(path).diagnostics} == {"SOP100"}


def test_an_unterminated_string_on_a_long_line_is_cheap() -> None:
    text = 'timezone "' + "x" * 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ParseError):
            parse(Source("long.sop", text))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_both_parsers_place_comments_alike() -> None:
    """Comments after multi-line texts keep their line and column in either parser (the formatter keeps them)."""
    text = (
        ZONE
        + "# 头注释\n"
        + 'template t = """\n第一行 # 不是注释\n第二行\n"""  # 行尾注释\n'
        + "\n".join(f"  # 注释 {i}" for i in range(50))
        + "\n"
    )
    fast, reference = parse(Source("c.sop", text)), _parse_reference(Source("c.sop", text))
    where = [(c.text, c.span.line, c.span.column) for c in reference.comments]
    assert where == [(c.text, c.span.line, c.span.column) for c in fast.comments]
    assert where[:3] == [("# 头注释", 2, 1), ("# 行尾注释", 6, 6), ("# 注释 0", 7, 3)]
    assert where[-1] == ("# 注释 49", 56, 3)
