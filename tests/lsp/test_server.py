"""The language server, driven through LSP messages by an in-process client (tests/lspsession.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as lsp
from lspsession import connected


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


WELCOME = """\
timezone "Asia/Shanghai"
template welcome "欢迎词" = "欢迎 {{ member.name }} 加入！"
# 新人进群：发欢迎词 🎉
playbook p "迎新🎉" { on member joins do { send welcom to member } }
"""


def test_an_unknown_template_after_chinese_and_an_emoji_is_placed_in_utf16_units(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", WELCOME)
            (found,) = await session.diagnostics(uri)
            line = WELCOME.splitlines()[3]
            at = line.index("welcom ")
            assert found.code == "SOP104"
            assert found.severity == lsp.DiagnosticSeverity.Error
            assert "did you mean 'welcome'?" in found.message
            assert found.range.start == lsp.Position(line=3, character=utf16(line[:at]))
            assert found.range.end == lsp.Position(line=3, character=utf16(line[: at + len("welcom")]))
            assert found.range.start.character == at + 1  # the emoji is two UTF-16 units
            assert session.shown == []

    asyncio.run(run())


def test_a_client_that_counts_code_points_gets_code_points(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path, encodings=["utf-32"]) as session:
            uri = session.open(tmp_path / "a.sop", WELCOME)
            (found,) = await session.diagnostics(uri)
            line = WELCOME.splitlines()[3]
            assert found.range.start == lsp.Position(line=3, character=line.index("welcom "))

    asyncio.run(run())


def test_diagnostics_follow_the_text_as_it_is_edited(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", WELCOME)
            assert [d.code for d in await session.diagnostics(uri)] == ["SOP104"]
            line = WELCOME.splitlines()[3]
            at = utf16(line[: line.index("welcom ")]) + len("welcom")
            session.edit(
                uri,
                lsp.Range(start=lsp.Position(line=3, character=at), end=lsp.Position(line=3, character=at)),
                "e",
            )
            assert await session.diagnostics(uri) == []
            session.change(uri, WELCOME.replace("send welcom to member", "send welcome to member }"))
            (broken,) = await session.diagnostics(uri)
            assert broken.code == "SOP100"
            assert broken.range.start.line == 3
            assert session.shown == []

    asyncio.run(run())
