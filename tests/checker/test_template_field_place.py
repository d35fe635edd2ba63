"""Where a template's own mistake (SOP202: a field members do not have) is shown: at the field
inside the template's text, where the operator fixes it, not at the `send` line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as lsp
from lspsession import connected

from sopdsl.checker import check_program
from sopdsl.diagnostics import Diagnostic
from sopdsl.syntax.loader import load_text

TEXT = """\
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.nmae }}！"
template rules = \"\"\"
    群规：不发广告。
    你的积分：{{ member . pionts }}
    \"\"\"

playbook p {
    on member joins
    do {
        send welcome to member
        send rules to member
        send welcome to member
        assign "跟进 {{ member.nmae }}" to owner within 1 days
    }
}
"""


def errors(text: str) -> list[Diagnostic]:
    return [d for d in check_program(load_text(text, "a.sop")).diagnostics if d.code == "SOP202"]


def placed(d: Diagnostic) -> tuple[int, int, int, int]:
    return (d.span.line, d.span.column, d.span.end_line, d.span.end_column)


def test_an_unknown_field_is_shown_at_the_field_once() -> None:
    found = sorted(errors(TEXT), key=placed)
    inline = 'template welcome = "欢迎 {{ '
    block = "    你的积分：{{ "
    task = '        assign "跟进 {{ '
    assert [(placed(d), d.message) for d in found] == [
        (
            (2, len(inline) + 1, 2, len(inline) + len("member.nmae") + 1),
            "template 'welcome' uses {{ member.nmae }}, but members have no field 'nmae'",
        ),
        (
            (5, len(block) + 1, 5, len(block) + len("member . pionts") + 1),
            "template 'rules' uses {{ member.pionts }}, but members have no field 'pionts'",
        ),
        (
            (14, len(task) + 1, 14, len(task) + len("member.nmae") + 1),
            "the task text uses {{ member.nmae }}, but members have no field 'nmae'",
        ),
    ]
    assert [d.hint for d in found] == [
        "did you mean 'name'?",
        "did you mean 'points'?",
        "did you mean 'name'?",
    ]


def test_what_the_sending_place_lacks_is_still_shown_at_the_send() -> None:
    # The text is right; the calendar entry, which has no member, is where to change something.
    text = """\
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}！"

playbook p {
    at every monday at 10:00 {
        send welcome to group
    }
}
"""
    (found,) = errors(text)
    assert placed(found)[0] == 6
    assert "has no member" in found.message


def test_the_editor_marks_the_field(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", TEXT)
            found = [d for d in await session.diagnostics(uri) if d.code == "SOP202"]
            at = len('template welcome = "欢迎 {{ ')  # no character here is outside the BMP
            assert lsp.Range(
                start=lsp.Position(line=1, character=at), end=lsp.Position(line=1, character=at + 11)
            ) in [d.range for d in found]
            at = len("    你的积分：{{ ")
            assert lsp.Range(
                start=lsp.Position(line=4, character=at), end=lsp.Position(line=4, character=at + 15)
            ) in [d.range for d in found]
            assert all(d.range.start.line not in (10, 11, 12) for d in found)

    asyncio.run(run())
