"""Completion at `set member.X = coupon.F` (`sopdsl.lsp.context`, the server): `coupon` after the
`=`, then the coupon's own fields, and no coupon names or member fields in their place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from lspsession import connected

from sopdsl.lsp.context import Wanted, wanted
from sopdsl.lsp.next_words import next_words
from sopdsl.vocabulary import COUPON_FIELDS

_STEPS = 'timezone "Asia/Shanghai"\nplaybook p {\n    on member joins\n    do {\n        '


@pytest.mark.parametrize(
    ("line", "partial"),
    [
        ("        set member.coupon_due = coupon.", ""),
        ("        set member.coupon_due = coupon.", "ex"),
        ("        set member.coupon_due=coupon.", "co"),
        ("    do: set referrer.note = coupon.", ""),
    ],
)
def test_after_set_equals_coupon_dot_the_coupon_fields_are_wanted(line: str, partial: str) -> None:
    assert wanted(line + partial) == Wanted("coupon field", len(line))


@pytest.mark.parametrize(
    "line",
    [
        "        set member.coupon_due = coupon ",  # `coupon` then a `.`, never a coupon's name
        "        set member.coupon_due = coupon.expires_at ",
        "    when coupon.",  # no coupon field outside `set` (a stock test names a coupon)
    ],
)
def test_no_coupon_field_or_name_elsewhere_on_a_set(line: str) -> None:
    found = wanted(line)
    assert found is None or found.kind not in ("coupon field", "coupon")


def test_the_grammar_offers_coupon_after_set_equals() -> None:
    assert "coupon" in (next_words(_STEPS + "set member.coupon_due = ") or ())


HEAD = (
    'timezone "Asia/Shanghai"\nattribute coupon_due: date\n'
    'coupon new50 "新人券" worth 50 valid for 7 days\n'
    "playbook p {\n    on member joins\n    do {\n        grant new50 to member\n"
)


def test_the_server_completes_coupon_then_its_fields(tmp_path: Path) -> None:
    text = HEAD + "        set member.coupon_due = coupon.expires_at\n    }\n}\n"

    async def run() -> None:
        async with connected(tmp_path) as session:
            uri = session.open(tmp_path / "a.sop", text)
            assert await session.diagnostics(uri) == []
            words = [
                item.label
                for item in await session.completion(uri, 7, len("        set member.coupon_due = "))
            ]
            assert "coupon" in words
            session.change(uri, text.replace("coupon.expires_at", "coupon.ex"))
            await session.diagnostics(uri)
            fields = await session.completion(uri, 7, len("        set member.coupon_due = coupon.ex"))
            assert [item.label for item in fields] == list(COUPON_FIELDS)
            assert isinstance(fields[0].text_edit, lsp.TextEdit)
            start = len("        set member.coupon_due = coupon.")
            assert fields[0].text_edit.range.start.character == start
            assert "new50" not in [item.label for item in fields]

    asyncio.run(run())
