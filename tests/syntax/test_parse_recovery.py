"""After a syntax error: the other playbooks of the file are still checked, a second mistake in
the broken playbook still shows, and nothing is reported that is not a mistake of the user's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from lspsession import connected

from sopdsl.checker import check_program
from sopdsl.cli import main
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.loader import load_text
from sopdsl.syntax.parser import PARSERS, parse

HEAD = 'timezone "Asia/Shanghai"\ntemplate welcome "欢迎" = "欢迎 {{ member.name }}"\n'  # lines 1-2

BROKEN_AND_GOOD = (
    HEAD
    + 'playbook one "一" {\n    on member joins\n    do {\n        tag member vip\n    }\n}\n'  # 3-8
    + 'playbook two "二" {\n    on member joins\n    do {\n        send welcom to member\n'  # 9-12
    + '        tag member "新人"\n    }\n}\n'  # 13-15
)


def found(text: str, via: str | None = None) -> list[tuple[str, int, int]]:
    """What `sopdsl check` reports of a file: (code, line, column), in order."""
    if via is not None:
        # The path taken to parse; `load_text` takes the default one.
        with pytest.raises(ParseError):
            parse(Source("a.sop", text), via)
    result = check_program(load_text(text, "a.sop"))
    return [(d.code, d.span.line, d.span.column) for d in result.diagnostics]


@pytest.mark.parametrize("via", PARSERS)
def test_the_playbooks_that_parse_are_checked(via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPDSL_PARSER", via)
    assert found(BROKEN_AND_GOOD, via) == [("SOP100", 6, 20), ("SOP104", 12, 14)]


def test_sopdsl_check_shows_both(tmp_path: Path) -> None:
    (tmp_path / "a.sop").write_text(BROKEN_AND_GOOD, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "a.sop")])
    assert result.exit_code == 1
    assert "a.sop:6:20: error[SOP100]: unexpected name 'vip'" in result.output
    assert "a.sop:12:14: error[SOP104]: unknown template 'welcom'" in result.output
    assert "did you mean 'welcome'?" in result.output
    assert "2 error(s)" in result.output


def test_the_editor_shows_both(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", BROKEN_AND_GOOD)
            shown = [(d.code, d.range.start.line) for d in await session.diagnostics(uri)]
            assert sorted(shown) == [("SOP100", 5), ("SOP104", 11)]

    asyncio.run(run())


def test_a_second_mistake_in_the_broken_playbook_shows_too() -> None:
    text = HEAD + (
        'playbook one "一" {\n'  # 3
        "    on member joins\n"
        "    do {\n"
        "        tag member vip\n"  # 6: quotes missing
        "        send welcome to membr\n"  # 7: misspelt
        "        wait 3 days for member posts else {\n"
        "            send welcome too member\n"  # 9: misspelt, in a block
        "        }\n"
        "    }\n"
        "}\n"
    )
    assert found(text) == [("SOP100", 6, 20), ("SOP100", 7, 25), ("SOP100", 9, 26)]


@pytest.mark.parametrize(
    "steps",
    [
        # A statement cut short: the parser stops at the next line, which is right.
        '        send welcome\n        kick member\n        tag member "x"\n',
        # A statement over two lines, its second line wrong.
        "        send welcome\n            to membr\n        kick member\n",
        # The wrong line is followed by the rest of its statement.
        "        wait 3 days for member postz\n        else {\n            kick member\n        }\n",
        # A condition over two lines.
        '        if member tagged "a" andd\n            member tagged "b" {\n            kick member\n        }\n',
    ],
)
def test_no_error_is_made_up_after_the_first(steps: str) -> None:
    text = HEAD + "playbook one {\n    on member joins\n    do {\n" + steps + "    }\n}\n"
    (only,) = found(text)
    assert only[0] == "SOP100"


@pytest.mark.parametrize(
    "broken",
    [
        'template welcome "欢迎" == "欢迎"\n',  # a broken declaration the playbooks use
        'templat welcome = "欢迎"\n',  # a misspelt keyword: no declaration at all to the parser
        'include "common.sop" x\n',  # what it would bring in is unknown
    ],
)
def test_a_broken_declaration_other_than_a_playbook_stops_the_check(broken: str) -> None:
    # Its names are unknown, so checking the playbooks would call them unknown: syntax alone.
    text = (
        'timezone "Asia/Shanghai"\n'
        + "playbook one {\n    on member joins\n    do {\n        kick member\n    }\n}\n"
        + broken
        + "playbook two {\n    on member joins\n    do {\n        send welcome to member\n    }\n}\n"
    )
    assert [code for code, _, _ in found(text)] == ["SOP100"]


def test_a_missing_brace_leaves_its_playbook_out_and_the_next_checked() -> None:
    text = HEAD + (
        "playbook one {\n    on member joins\n    do {\n        kick member\n}\n"  # 3-7: `}` missing
        + "playbook two {\n    on member joins\n    do {\n        send welcom to member\n    }\n}\n"  # 8-13
    )
    assert found(text) == [("SOP100", 5, 8), ("SOP104", 11, 14)]


def test_a_misspelt_name_in_the_broken_playbook_shows_too() -> None:
    text = HEAD + (
        'playbook one "一" {\n'  # 3
        "    on member joins\n"
        "    do {\n"
        "        tag member vip\n"  # 6: quotes missing
        "        send welcom to member\n"  # 7: no such template
        "        wait 3 dayz\n"  # 8: no such unit
        "    }\n"
        "}\n"
    )
    assert found(text) == [("SOP100", 6, 20), ("SOP104", 7, 14), ("SOP112", 8, 16)]


@pytest.mark.parametrize(
    ("lines", "head_broken"),
    [
        # The grant is on the broken line: the send after it is not told it comes before any grant.
        ("        grant gift to membr\n        send note to member\n", False),
        # The trigger is on the broken line: not told it has none, nor that the event has no field;
        # the guard too: the kick is not told it may hit a protected member.
        ("        send note_event to member\n        kick member\n", True),
    ],
)
def test_what_a_broken_line_may_explain_is_not_told(lines: str, head_broken: bool) -> None:
    text = (
        'timezone "Asia/Shanghai"\n'  # 1
        'coupon gift "礼物券" worth 30\n'
        'template note = "「{{ coupon.title }}」"\n'
        'template note_event = "订单 {{ event.amount }}"\n'
        'policy {\n    never kick members tagged "core"\n}\n'  # 5-7
        "playbook one {\n"  # 8
        + ("    on member ordrs\n" if head_broken else "    on member joins\n")  # 9
        + ('    when not member taged "core"\n' if head_broken else '    when not member tagged "core"\n')
        + "    do {\n"  # 11
        + lines  # 12-
        + "    }\n}\n"
    )
    expected = [("SOP100", 9, 15), ("SOP100", 10, 21)] if head_broken else [("SOP100", 12, 23)]
    assert found(text) == expected


FIELDS_HEAD = (
    'timezone "Asia/Shanghai"\n'  # 1
    'attribute vip_level: number "会员等级"\n'
    "counter checkins\n"
    'template hi = "你好"\n'  # 4
)


def test_a_field_no_declaration_has_is_told_in_the_broken_playbook_too() -> None:
    # SOP108 was withheld in a playbook read without its broken line, as an event's field may come
    # from a trigger on that line; a member's or group's field, or a counter, no declaration has is
    # a misspelling whatever the trigger.
    text = FIELDS_HEAD + (
        "playbook one {\n"  # 5
        "    on member joins\n"
        "    when member.vip_levl >= 2\n"  # 7
        "    do {\n"
        "        tag member vip\n"  # 9: quotes missing
        '        if group.nmae == "骑友" and referrer.vip_levle >= 1 {\n'  # 10
        "            send hi to member\n"
        "        }\n"
        "        set member.vip_lvl = 3\n"  # 13
        "        add 1 to member.checkin\n"  # 14
        "    }\n"
        "}\n"
    )
    assert found(text) == [
        ("SOP108", 7, 17),
        ("SOP100", 9, 20),
        ("SOP108", 10, 18),
        ("SOP108", 10, 44),
        ("SOP108", 13, 20),
        ("SOP108", 14, 25),
    ]
    messages = [d.message for d in check_program(load_text(text, "a.sop")).diagnostics]
    assert "member has no field 'vip_levl'" in messages
    assert "group has no field 'nmae'" in messages


@pytest.mark.parametrize(
    "trigger",
    [
        "    on member ordrs\n",  # the trigger itself broken: `event.amount` may be what it gives
        "    on member orders\n    when member tagged vip\n",  # the guard broken
    ],
)
def test_an_events_field_the_broken_trigger_may_give_and_declared_fields_are_not_told(trigger: str) -> None:
    body = (
        "    do {\n"
        "        if event.amount >= 100 and member.vip_level >= 1 and member.checkins > 2 {\n"
        "            send hi to member\n"
        "        }\n"
        "        set member.vip_level = 2\n"
        "        add 1 to member.checkins\n"
        "    }\n"
        "}\n"
    )
    text = FIELDS_HEAD + "playbook two {\n" + trigger + body  # the playbook from line 5
    assert [code for code, _, _ in found(text)] == ["SOP100"]
