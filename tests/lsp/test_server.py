"""The language server, driven through LSP messages by an in-process client (tests/lspsession.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
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


COMMON = """\
timezone "Asia/Shanghai"
template 欢迎 "新人欢迎" tagged "onboarding" = "欢迎 {{ member.name }}！"
template reminder = "周二上课 🎒"
coupon new50 "新人券" worth 50
calendar tuesday_class = every tuesday at 20:00
group 骑友一群 { tagged "normal", "edu" }
group riders_2
"""

MAIN = """\
include "common.sop"
# 第一行中文注释
playbook welcome "迎新" {
    in groups tagged "normal"
    on member joins
    when member not tagged "staff"
    do {
        send 欢迎 to member
        grant new50 to member
    }
}
"""


def write_project(folder: Path) -> Path:
    (folder / "common.sop").write_text(COMMON, encoding="utf-8")
    main = folder / "main.sop"
    main.write_text(MAIN, encoding="utf-8")
    return main


def test_a_mistake_in_an_included_file_shows_on_the_include_line(tmp_path: Path) -> None:
    main = write_project(tmp_path)
    (tmp_path / "common.sop").write_text(COMMON.replace("every tuesday", "every tues"), encoding="utf-8")

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, MAIN)
            (found,) = await session.diagnostics(uri)
            assert found.code == "SOP112"
            assert found.range.start == lsp.Position(line=0, character=0)
            assert found.range.end.line == 0
            assert found.message.startswith("common.sop:5:")
            (related,) = found.related_information or []
            assert related.location.uri == (tmp_path / "common.sop").as_uri()
            line = COMMON.splitlines()[4]
            assert related.location.range.start == lsp.Position(line=4, character=line.index("tuesday "))

    asyncio.run(run())


def labels(items: list[lsp.CompletionItem]) -> list[str]:
    return [item.label for item in items]


def test_completion_offers_the_names_of_the_kind_the_place_wants(tmp_path: Path) -> None:
    main = write_project(tmp_path)
    text = MAIN.replace("    }\n}", "    }\n    at tuesday_class: send reminder to group\n}")

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            assert await session.diagnostics(uri) == []
            lines = text.splitlines()
            assert labels(await session.completion(uri, 7, len("        send "))) == ["reminder", "欢迎"]
            assert labels(await session.completion(uri, 8, len("        grant "))) == ["new50"]
            assert labels(await session.completion(uri, 10, len("    at "))) == ["tuesday_class"]
            # Inside a tag's quotes: every tag written in the program and its includes.
            tags = await session.completion(uri, 3, lines[3].index('"') + 1)
            assert labels(tags) == ["edu", "normal", "onboarding", "staff"]
            assert tags[0].text_edit is not None
            # A partly typed name is what the completion replaces.
            (first, *_) = await session.completion(uri, 7, len("        send 欢"))
            assert first.text_edit == lsp.TextEdit(
                range=lsp.Range(
                    start=lsp.Position(line=7, character=13), end=lsp.Position(line=7, character=14)
                ),
                new_text="reminder",
            )
            # At the start of a step: the language's words.
            words = labels(await session.completion(uri, 7, len("        ")))
            assert {"send", "grant", "wait", "kick", "set", "draw", "assign", "split"} <= set(words)
            assert "欢迎" not in words
            # Words the grammar takes as names: a wait's unit, a draw's period.
            session.change(uri, text.replace("grant new50 to member", "wait 3 d"))
            assert "days" in labels(await session.completion(uri, 8, len("        wait 3 d")))
            session.change(
                uri, text.replace("grant new50 to member", "draw 1 winners from members stock 5 per w")
            )
            period = labels(
                await session.completion(uri, 8, len("        draw 1 winners from members stock 5 per w"))
            )
            assert {"week", "day", "month"} <= set(period)
            session.change(uri, text)
            # In a comment, nothing.
            assert await session.completion(uri, 1, 3) == []

    asyncio.run(run())


def test_completion_of_groups_named_in_a_scope_and_an_invite(tmp_path: Path) -> None:
    main = write_project(tmp_path)
    text = MAIN.replace('in groups tagged "normal"', "in groups riders_2, ").replace(
        "grant new50 to member", "invite member to "
    )

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            await session.diagnostics(uri)
            assert labels(await session.completion(uri, 3, len("    in groups riders_2, "))) == [
                "riders_2",
                "骑友一群",
            ]
            assert labels(await session.completion(uri, 8, len("        invite member to "))) == [
                "riders_2",
                "骑友一群",
            ]

    asyncio.run(run())


def test_a_document_that_does_not_parse_gets_diagnostics_and_completes_from_its_last_parse(
    tmp_path: Path,
) -> None:
    main = write_project(tmp_path)
    text = MAIN.replace("template", "template") + 'template mine = "我的"\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            assert await session.diagnostics(uri) == []
            # Half-way through typing a step: the file no longer parses.
            broken = text.replace(
                "        grant new50 to member\n", "        grant new50 to member\n        send \n"
            )
            session.change(uri, broken)
            (syntax,) = await session.diagnostics(uri)
            assert syntax.code == "SOP100"
            assert syntax.range.start.line == 10  # at the `}` that cannot follow `send`
            assert labels(await session.completion(uri, 9, len("        send "))) == [
                "mine",
                "reminder",
                "欢迎",
            ]
            location = await session.definition(uri, 7, len("        send 欢"))
            assert location is not None and location.uri == (tmp_path / "common.sop").as_uri()
            # Text that is no playbook at all: still diagnostics, and the server keeps serving.
            session.change(uri, '}}} "unclosed \x00 ＃ 😀\n')
            assert [d.code for d in await session.diagnostics(uri)] in (["SOP101"], ["SOP100"])
            assert labels(await session.completion(uri, 9, 0))  # keywords still come
            session.change(uri, text)
            assert await session.diagnostics(uri) == []
            assert session.shown == []

    asyncio.run(run())


def test_formatting_replaces_the_whole_text_with_the_canonical_layout(tmp_path: Path) -> None:
    from sopdsl.source import Source
    from sopdsl.syntax.formatter import format_source

    messy = 'timezone   "Asia/Shanghai"\ntemplate hi="你好 😀"\nplaybook p{on member joins do{send hi to member}}  # 末尾 😀'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", messy)
            await session.diagnostics(uri)
            (edit,) = await session.formatting(uri) or []
            last = messy.splitlines()[-1]
            assert edit.range == lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=2, character=utf16(last))
            )
            assert edit.new_text == format_source(Source("a.sop", messy))
            assert "    send hi to member\n" in edit.new_text
            session.change(uri, edit.new_text)
            await session.diagnostics(uri)
            assert await session.formatting(uri) == []
            session.change(uri, messy + "\nplaybook {")
            await session.diagnostics(uri)
            assert await session.formatting(uri) is None

    asyncio.run(run())


def test_hover_shows_a_templates_text_and_a_declaration(tmp_path: Path) -> None:
    main = write_project(tmp_path)

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, MAIN)
            await session.diagnostics(uri)
            hover = await session.hover(uri, 7, len("        send 欢"))
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert "**template 欢迎** — 新人欢迎" in hover.contents.value
            assert "欢迎 {{ member.name }}！" in hover.contents.value
            assert hover.range == lsp.Range(
                start=lsp.Position(line=7, character=13), end=lsp.Position(line=7, character=15)
            )
            coupon = await session.hover(uri, 8, len("        grant n"))
            assert coupon is not None and isinstance(coupon.contents, lsp.MarkupContent)
            assert 'coupon new50 "新人券" worth 50' in coupon.contents.value
            assert await session.hover(uri, 8, len("        gr")) is None  # a keyword

    asyncio.run(run())


def test_definition_goes_to_the_declaration_in_the_included_file(tmp_path: Path) -> None:
    main = write_project(tmp_path)
    text = (
        MAIN
        + 'template reminder_local = "🎒🎒 本地"\nplaybook q { at tuesday_class: send reminder_local to group }\n'
    )

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            assert await session.diagnostics(uri) == []
            location = await session.definition(uri, 8, len("        grant new"))
            assert location == lsp.Location(
                uri=(tmp_path / "common.sop").as_uri(),
                range=lsp.Range(
                    start=lsp.Position(line=3, character=7), end=lsp.Position(line=3, character=12)
                ),
            )
            lines = text.splitlines()
            here = await session.definition(uri, 12, lines[12].index("reminder_local") + 2)
            assert here is not None and here.uri == uri
            assert here.range.start == lsp.Position(line=11, character=len("template "))
            cal = await session.definition(uri, 12, lines[12].index("tuesday_class"))
            assert cal is not None and cal.range.start == lsp.Position(line=4, character=len("calendar "))

    asyncio.run(run())


def test_saving_an_included_file_checks_the_open_documents_again_and_closing_clears(tmp_path: Path) -> None:
    main = write_project(tmp_path)

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, MAIN)
            assert await session.diagnostics(uri) == []
            common = tmp_path / "common.sop"
            common.write_text(COMMON.replace("coupon new50", "coupon new_50"), encoding="utf-8")
            common_uri = session.open(common, common.read_text(encoding="utf-8"))
            assert await session.diagnostics(common_uri) == []
            session.client.text_document_did_save(
                lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=common_uri))
            )
            (unknown,) = await session.diagnostics(uri)
            assert unknown.code == "SOP107"
            assert unknown.range.start.line == 8
            session.client.text_document_did_close(
                lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
            )
            assert await session.diagnostics(uri) == []

    asyncio.run(run())


def test_a_failure_inside_sopdsl_is_reported_in_the_document_and_the_server_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sopdsl.lsp.server

    def broken(text: str, path: str, root: Path | None) -> None:
        raise RuntimeError("boom")

    async def run() -> None:
        async with connected(tmp_path) as session:
            first = session.open(tmp_path / "a.sop", WELCOME)
            assert [d.code for d in await session.diagnostics(first)] == ["SOP104"]
            with monkeypatch.context() as patch:
                patch.setattr(sopdsl.lsp.server, "analyse", broken)
                session.change(first, WELCOME + "\n")
                (internal,) = await session.diagnostics(first)
            assert "internal error RuntimeError('boom')" in internal.message
            at = utf16('playbook p "迎新🎉" { on member joins do { send ')
            assert labels(await session.completion(first, 3, at)) == ["welcome"]
            second = session.open(tmp_path / "b.sop", WELCOME)
            assert [d.code for d in await session.diagnostics(second)] == ["SOP104"]

    asyncio.run(run())


def test_no_hover_or_definition_inside_a_string_or_a_comment(tmp_path: Path) -> None:
    main = write_project(tmp_path)
    # A tag and a comment that spell a declared name: neither refers to it.
    text = MAIN.replace('"staff"', '"new50"').replace("# 第一行中文注释", "# new50 欢迎")

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            await session.diagnostics(uri)
            lines = text.splitlines()
            assert await session.hover(uri, 5, lines[5].index("new50") + 1) is None
            assert await session.definition(uri, 1, 3) is None
            assert await session.definition(uri, 8, lines[8].index("new50") + 1) is not None

    asyncio.run(run())


def test_typing_a_playbook_from_the_corpus_keeps_the_server_answering(tmp_path: Path) -> None:
    corpus = Path(__file__).resolve().parents[2] / "playbooks"
    (tmp_path / "common.sop").write_text(
        (corpus / "common.sop").read_text(encoding="utf-8"), encoding="utf-8"
    )
    text = (corpus / "J1_welcome_ritual.sop").read_text(encoding="utf-8")
    cuts = sorted({*range(0, len(text), 37), *(i for i, ch in enumerate(text) if ch == "\n"), len(text)})

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "J1.sop", "")
            await session.diagnostics(uri)
            for cut in cuts:
                typed = text[:cut]
                session.change(uri, typed)
                found = await session.diagnostics(uri)
                assert all(isinstance(d.code, str) and d.code.startswith("SOP") for d in found), (cut, found)
                lines = typed.split("\n")
                await session.completion(uri, len(lines) - 1, utf16(lines[-1]))
                await session.hover(uri, len(lines) - 1, utf16(lines[-1]))
                await session.formatting(uri)
            assert found == []
            assert session.shown == []

    asyncio.run(run())


def test_a_burst_of_edits_is_analysed_once_when_typing_pauses(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path, delay=0.3) as session:
            uri = session.open(tmp_path / "a.sop", WELCOME)
            assert [d.code for d in await session.diagnostics(uri)] == ["SOP104"]
            for typed in ("welcom", "welcome", "welcomes"):
                session.change(uri, WELCOME.replace("send welcom ", f"send {typed} "))
            (last,) = await session.diagnostics(uri)
            assert "'welcomes'" in last.message
            await asyncio.sleep(0.6)
            assert session.published[uri].empty()

    asyncio.run(run())


def test_no_hover_on_a_word_of_a_text_block_that_spells_a_name(tmp_path: Path) -> None:
    text = 'timezone "Asia/Shanghai"\ntemplate 群规 = """\n    请先读 群规\n    """\nplaybook p { on member joins do { send 群规 to member } }\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            assert await session.diagnostics(uri) == []
            assert await session.hover(uri, 2, len("    请先读 群")) is None
            assert await session.completion(uri, 2, len("    请先读 ")) == []  # no keywords in a text
            hover = await session.hover(uri, 4, text.splitlines()[4].index("群规") + 1)
            assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
            assert "请先读 群规" in hover.contents.value

    asyncio.run(run())


def test_an_unsaved_new_document_is_checked_too(tmp_path: Path) -> None:
    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open("untitled:Untitled-1", WELCOME)
            assert [d.code for d in await session.diagnostics(uri)] == ["SOP104"]
            line = WELCOME.splitlines()[3]
            assert labels(await session.completion(uri, 3, utf16(line[: line.index("welcom ")]))) == [
                "welcome"
            ]
            assert session.shown == []

    asyncio.run(run())


def test_completion_of_the_fields_after_member_and_group(tmp_path: Path) -> None:
    text = (
        'timezone "Asia/Shanghai"\nattribute region: text "地区"\ncounter 签到 "签到次数"\n'
        'playbook p {\n    on member joins\n    when member.region is set\n    do: tag member "x"\n}\n'
    )

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            assert await session.diagnostics(uri) == []
            session.change(uri, text.replace("member.region is set", "member.re"))
            assert [d.code for d in await session.diagnostics(uri)] == ["SOP100"]
            fields = await session.completion(uri, 5, len("    when member.re"))
            assert labels(fields)[-2:] == ["region", "签到"]
            assert {"name", "joined_at", "points", "messages"} <= set(labels(fields))
            assert isinstance(fields[0].text_edit, lsp.TextEdit)
            assert fields[0].text_edit.range.start == lsp.Position(line=5, character=len("    when member."))
            session.change(uri, text.replace("member.region is set", "group."))
            await session.diagnostics(uri)
            group_fields = set(labels(await session.completion(uri, 5, len("    when group."))))
            assert {"name", "size", "operator"} <= group_fields
            assert not {"joined_at", "region", "签到"} & group_fields

    asyncio.run(run())


def test_requests_about_a_document_that_cannot_be_read_are_answered_empty(tmp_path: Path) -> None:
    # A client may ask about a file it never opened, which is gone from disk (or not text): once
    # an internal error with a traceback, which an editor shows its user as a failure.
    (tmp_path / "binary.sop").write_bytes(b"\xff\xfe\x00bad")
    gone, binary = (tmp_path / "gone.sop").as_uri(), (tmp_path / "binary.sop").as_uri()

    async def run() -> None:
        async with connected(tmp_path) as session:
            for uri in (gone, binary):
                assert await session.completion(uri, 0, 0) != []  # keywords, as in an empty document
                assert await session.hover(uri, 0, 1) is None
                assert await session.definition(uri, 0, 1) is None
                assert await session.formatting(uri) is None
            # and the server goes on serving documents that are open
            first = session.open(tmp_path / "a.sop", WELCOME)
            assert [d.code for d in await session.diagnostics(first)] == ["SOP104"]

    asyncio.run(run())


def test_a_name_declared_while_another_playbook_is_broken_is_offered_at_once(tmp_path: Path) -> None:
    # Completion offered the names of the last version that parsed whole: a template declared
    # (or renamed) while one playbook had a syntax error was not offered until it was fixed.
    main = write_project(tmp_path)
    tagging = 'playbook tagging {\n    on member joins\n    do {\n        tag member "老朋友"\n    }\n}\n'
    text = MAIN + tagging + 'template old_name = "旧"\n'

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(main, text)
            assert await session.diagnostics(uri) == []
            # The playbook `tagging` broken half-way through its line, the template renamed and sent.
            broken = text.replace('member "老朋友"\n', 'member "老朋友" to\n').replace("old_name", "new_name")
            session.change(uri, broken.replace("send 欢迎 to", "send new_name to"))
            (syntax,) = await session.diagnostics(uri)
            assert syntax.code == "SOP100"
            assert labels(await session.completion(uri, 7, len("        send "))) == [
                "new_name",
                "reminder",
                "欢迎",
            ]
            location = await session.definition(uri, 7, len("        send n"))
            assert location is not None and location.uri == uri
            assert location.range.start.line == broken.splitlines().index('template new_name = "旧"')
            # The tag written on the broken line is still offered, from the version before.
            tags = labels(await session.completion(uri, 3, MAIN.splitlines()[3].index('"') + 1))
            assert "老朋友" in tags and "normal" in tags
            assert session.shown == []

    asyncio.run(run())
