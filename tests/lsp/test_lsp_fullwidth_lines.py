"""The editor shows every line indented with a full-width space at once, each at its place."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as lsp
from lspsession import connected

W = "\u3000"  # what a Chinese input method's space bar types in full-width mode


def test_every_line_indented_with_a_full_width_space_is_shown(tmp_path: Path) -> None:
    lines = [
        'timezone "Asia/Shanghai"',
        'template hi = "你好 🎉"',
        'playbook p "迎新🎉" {',
        f"{W}on member joins",
        f"{W}do {{",
        f"  {W}send hi to member",  # two ordinary spaces first: the third character is the stray one
        f"{W}}}",
        "}",
    ]

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", "\n".join(lines) + "\n")
            shown = sorted(await session.diagnostics(uri), key=lambda d: d.range.start.line)
            assert [(d.code, d.range.start, d.range.end) for d in shown] == [
                ("SOP101", lsp.Position(line, column), lsp.Position(line, column + 1))
                for line, column in [(3, 0), (4, 0), (5, 2), (6, 0)]
            ]
            for found in shown:
                assert (
                    "full-width space (U+3000) where the language expects an ordinary space" in found.message
                )
                assert "switch the input method to half-width" in found.message
            assert session.shown == []

    asyncio.run(run())
