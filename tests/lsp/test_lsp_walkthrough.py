"""A new user's walk through the language server: what an operator types, as an editor sends it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from lspsession import connected


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_fields_are_offered_inside_a_templates_placeholder_after_an_emoji(tmp_path: Path) -> None:
    lines = [
        'timezone "Asia/Shanghai"',
        'attribute city: text "所在城市"',
        'template hi "问候" = "🎉 欢迎 {{ member.',
        'template block = """',
        "    🎉 {{ member.name }} 加入{{ group.na",
        '    """',
        'template prize = "🎁 券码 {{ coupon.',
    ]
    text = "\n".join(lines) + "\n"

    async def run() -> None:
        async with connected(tmp_path) as session:
            # The file parsed before the operator started typing the placeholders.
            uri = session.open(
                tmp_path / "a.sop", 'timezone "Asia/Shanghai"\nattribute city: text "所在城市"\n'
            )
            await session.diagnostics(uri)
            session.change(uri, text)
            await session.diagnostics(uri)
            items = await session.completion(uri, 2, utf16(lines[2]))
            labels = {i.label for i in items}
            assert {"name", "city"} <= labels
            # What a completion replaces starts just after `member.`, in UTF-16 units (🎉 is two).
            edit = items[0].text_edit
            assert isinstance(edit, lsp.TextEdit)
            assert edit.range.start == lsp.Position(line=2, character=utf16(lines[2]))
            grouped = await session.completion(uri, 4, utf16(lines[4]))
            assert "name" in {i.label for i in grouped}
            edit = grouped[0].text_edit
            assert isinstance(edit, lsp.TextEdit)
            assert edit.range.start == lsp.Position(line=4, character=utf16(lines[4]) - len("na"))
            coupons = await session.completion(uri, 6, utf16(lines[6]))
            assert {"code", "worth"} <= {i.label for i in coupons}
            # Outside a placeholder a text is still just text.
            assert await session.completion(uri, 4, utf16("    🎉 ")) == []
            assert session.shown == []

    asyncio.run(run())


def test_a_full_width_semicolon_after_an_emoji_is_told_to_go(tmp_path: Path) -> None:
    # The Chinese input method types `；` where an operator ends a statement out of habit.
    line = 'playbook p "迎新🎉" { on member joins do { send hi to member； } }'
    text = f'timezone "Asia/Shanghai"\ntemplate hi = "你好"\n{line}\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            (found,) = await session.diagnostics(uri)
            at = utf16(line[: line.index("；")])
            assert found.code == "SOP101"
            assert found.range.start == lsp.Position(line=2, character=at)
            assert found.range.end == lsp.Position(line=2, character=at + 1)
            assert "no ';': remove it" in found.message
            assert "hint: expected" not in found.message

    asyncio.run(run())


def test_a_full_width_space_is_named_and_the_server_keeps_serving(tmp_path: Path) -> None:
    # In full-width mode the input method's space bar types U+3000, which looks like a space.
    line = "    on member joins do {\u3000send hi to member }"
    text = f'timezone "Asia/Shanghai"\ntemplate hi = "你好 🎉"\nplaybook p "迎新🎉" {{\n{line}\n}}\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            (found,) = await session.diagnostics(uri)
            at = utf16(line[: line.index("\u3000")])
            assert found.code == "SOP101"
            assert found.range.start == lsp.Position(line=3, character=at)
            assert found.range.end == lsp.Position(line=3, character=at + 1)
            assert "full-width space (U+3000) where the language expects an ordinary space" in found.message
            assert "switch the input method to half-width" in found.message
            assert "\\u3000" not in found.message
            assert await session.formatting(uri) is None  # left as it is, not mangled
            assert "hi" in {
                i.label for i in await session.completion(uri, 3, len(line) - len(" to member }"))
            }
            assert session.shown == []

    asyncio.run(run())


def test_typing_a_dot_after_member_asks_for_completion(tmp_path: Path) -> None:
    # An editor asks for completion unprompted only on the server's trigger characters.
    async def run() -> None:
        async with connected(tmp_path) as session:
            capabilities = session.server.server_capabilities.completion_provider
            assert capabilities is not None
            assert {'"', "."} <= set(capabilities.trigger_characters or ())

    asyncio.run(run())


def test_a_dot_that_opens_no_field_brings_up_no_list(tmp_path: Path) -> None:
    lines = ['timezone "Asia/Shanghai"', 'template hi = "你好 {{ member.', "    when member.points > 3."]
    text = "\n".join(lines) + "\n"

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            await session.diagnostics(uri)

            async def on_dot(line: int) -> list[str]:
                result = await session.client.text_document_completion_async(
                    lsp.CompletionParams(
                        text_document=lsp.TextDocumentIdentifier(uri=uri),
                        position=lsp.Position(line=line, character=utf16(lines[line])),
                        context=lsp.CompletionContext(
                            trigger_kind=lsp.CompletionTriggerKind.TriggerCharacter, trigger_character="."
                        ),
                    )
                )
                assert isinstance(result, lsp.CompletionList)
                return [i.label for i in result.items]

            assert "name" in await on_dot(1)
            assert await on_dot(2) == []
            # Asked for on purpose, the words are still there.
            assert await session.completion(uri, 2, utf16(lines[2])) != []

    asyncio.run(run())


@pytest.mark.parametrize(
    ("steps", "hint"),
    [
        ("wait 3 }", "a wait needs a unit after its number: 分钟, 小时, 天"),
        ("wait 3 send hi to member }", "'send' was read as the unit of the wait"),
        ("send }", "expected a template's name"),
        ("grant }", "expected a coupon's name"),
    ],
)
def test_a_half_written_step_gets_a_hint_in_the_operators_words(
    tmp_path: Path, steps: str, hint: str
) -> None:
    # Not "expected a name": what the name is of, or that the number of a wait wants its unit.
    text = f'timezone "Asia/Shanghai"\ntemplate hi = "你好"\nplaybook p "迎新🎉" {{ on member joins do {{ {steps} }}\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            (found,) = await session.diagnostics(uri)
            assert found.code == "SOP100"
            assert hint in found.message
            assert "expected a name" not in found.message

    asyncio.run(run())


def test_completion_offers_the_words_that_can_come_next(tmp_path: Path) -> None:
    head = 'timezone "Asia/Shanghai"\ntemplate hi = "你好 🎉"\nplaybook p "迎新🎉" {\n'
    cases = [
        ("    on member ", {"joins", "leaves"}, {"send", "template", "wait"}),
        ("    on member joins\n    do {\n        send hi to ", {"member", "group"}, {"joins", "template"}),
        ("    on member joins\n    do {\n        ", {"send", "wait", "tag"}, {"joins", "template"}),
        ("    on member joins\n    do {\n        wait 3 ", {"天", "days", "小时"}, {"template", "if", "do"}),
        # After a wait's number, only units: no weekdays, cap words, types or attachment kinds.
        (
            "    on member joins\n    do {\n        wait 3 ",
            {"分钟", "周"},
            {"monday", "周一", "drop", "text", "image"},
        ),
    ]

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", head)
            await session.diagnostics(uri)
            for typed, offered, not_offered in cases:
                text = head + typed
                session.change(uri, text)
                await session.diagnostics(uri)
                last = text.splitlines()[-1] if not text.endswith("\n") else ""
                labels = {i.label for i in await session.completion(uri, text.count("\n"), utf16(last))}
                assert offered <= labels, typed
                assert not labels & not_offered, typed
            # A mistake earlier in the playbook: every word, rather than none.
            text = head + "    on member joinz\n    do {\n        "
            session.change(uri, text)
            await session.diagnostics(uri)
            labels = {i.label for i in await session.completion(uri, text.count("\n"), 8)}
            assert {"send", "joins", "template"} <= labels

    asyncio.run(run())


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"])
def test_a_pasted_line_separator_inside_a_comment_does_not_shift_lines(
    tmp_path: Path, separator: str
) -> None:
    # LSP and the front end end lines at line feeds only; Python's `splitlines` also at these.
    line = 'playbook p "迎新🎉" { on member joins do { send welcom to member } }'
    text = (
        f'timezone "Asia/Shanghai"\n# 从网页粘贴的说明{separator}第二段\ntemplate welcome = "你好"\n{line}\n'
    )
    at = utf16(line[: line.index("welcom ")])

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            (found,) = await session.diagnostics(uri)
            assert found.range.start == lsp.Position(line=3, character=at)
            assert [i.label for i in await session.completion(uri, 3, at + 1)] == ["welcome"]
            end = lsp.Position(line=3, character=at + len("welcom"))
            session.edit(uri, lsp.Range(start=end, end=end), "e")
            assert await session.diagnostics(uri) == []
            assert session.server.workspace.get_text_document(uri).source == text.replace(
                "welcom ", "welcome "
            )

    asyncio.run(run())


def test_formatting_a_crlf_playbook_keeps_crlf_throughout(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "playbooks" / "J1_welcome_ritual.sop").read_text(encoding="utf-8")
    crlf = text.replace("\n", "\r\n")

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", crlf)
            await session.diagnostics(uri)
            # Already in the canonical layout: nothing to change, not a file of mixed endings.
            assert await session.formatting(uri) == []
            uri = session.open(tmp_path / "b.sop", crlf.replace("    do {", "  do   {"))
            await session.diagnostics(uri)
            (edit,) = await session.formatting(uri) or []
            assert edit.new_text == crlf

    asyncio.run(run())


def test_a_text_block_of_a_crlf_playbook_reads_as_in_an_lf_one(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "playbooks" / "J1_welcome_ritual.sop").read_text(encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines()) if "send welcome_rules" in t)
    column = text.splitlines()[line].index("welcome_rules") + 1

    async def run() -> None:
        async with connected(tmp_path) as session:
            hovers = []
            for name, ending in (("lf.sop", "\n"), ("crlf.sop", "\r\n")):
                uri = session.open(tmp_path / name, text.replace("\n", ending))
                await session.diagnostics(uri)
                hover = await session.hover(uri, line, column)
                assert hover is not None
                assert isinstance(hover.contents, lsp.MarkupContent)
                hovers.append(hover.contents.value)
            assert hovers[0] == hovers[1]
            assert "\r" not in hovers[1]
            assert "```\n🎉 欢迎" in hovers[1]  # no blank first line

    asyncio.run(run())
