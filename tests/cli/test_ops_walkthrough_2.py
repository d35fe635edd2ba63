"""A new operator's second walkthrough: four SOPs of the seed articles (a limited-time sale with
reminders, a tiered coupon, a first-order reminder series, a coupon-expiry reminder) written from
the docs alone, and each thing that got in the way, pinned as `sopdsl` now tells it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic
from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax.parser import parse

HEAD = 'timezone "Asia/Shanghai"\ncoupon back50 "返场券" worth 50\ntemplate t = "谢谢"\n'


def only(text: str) -> Diagnostic:
    with pytest.raises(ParseError) as caught:
        parse(Source("t.sop", text))
    (diagnostic,) = caught.value.diagnostics
    return diagnostic


# ---- 1. words ops write for a keyword, too far from it for `did you mean` -------------------------


@pytest.mark.parametrize(
    ("body", "word", "meant"),
    [
        # `elif` was offered `if`, which after the `}` starts a second, unrelated `if`.
        (
            "    on member orders\n    do {\n        if event.amount >= 300 {\n            send t to member\n"
            "        } elif event.amount >= 100 {\n            send t to member\n        }\n    }\n",
            "elif",
            "else if",
        ),
        # `give` was offered `invite`: a coupon is given with `grant`.
        ("    on member joins\n    do {\n        give back50 to member\n    }\n", "give", "grant"),
        # `buys` got the list of triggers and no pointer to `orders`.
        ("    on member buys\n    do: send t to member\n", "buys", "orders"),
        ("    on member quits\n    do: send t to member\n", "quits", "leaves"),
    ],
)
def test_an_ops_word_for_a_keyword_is_told_the_keyword(body: str, word: str, meant: str) -> None:
    text = HEAD + "playbook p {\n" + body + "}\n"
    diagnostic = only(text)
    assert diagnostic.code == "SOP100"
    assert diagnostic.message == f"unexpected name '{word}'"
    assert diagnostic.hint == f"did you mean '{meant}'?"
    assert text[diagnostic.span.start : diagnostic.span.end] == word


def test_an_ops_word_where_its_keyword_cannot_go_gets_no_such_hint() -> None:
    # `give` as a playbook's setting: `grant` is a step, so offering it there would mislead.
    hint = only(
        HEAD + "playbook p {\n    give back50\n    on member joins\n    do: send t to member\n}\n"
    ).hint
    assert hint is not None
    assert "grant" not in hint


@pytest.mark.parametrize(("sign", "ascii"), [("≥", ">="), ("≤", "<="), ("≠", "!=")])
def test_a_math_sign_is_told_the_ascii_comparison_to_type(sign: str, ascii: str) -> None:
    text = (
        HEAD
        + f"playbook p {{\n    on member orders\n    when event.amount {sign} 300\n    do: send t to member\n}}\n"
    )
    diagnostic = only(text)
    assert diagnostic.code == "SOP101"
    assert diagnostic.message == f"unexpected character '{sign}'"
    assert diagnostic.hint is not None
    assert diagnostic.hint.startswith(f"type '{ascii}' instead")


@pytest.mark.parametrize(("char", "ascii"), [("＞", ">"), ("＜", "<")])
def test_a_full_width_comparison_is_named_with_its_ascii_character(char: str, ascii: str) -> None:
    text = (
        HEAD
        + f"playbook p {{\n    on member orders\n    when event.amount {char} 300\n    do: send t to member\n}}\n"
    )
    diagnostic = only(text)
    assert diagnostic.message == f"full-width character '{char}' where the language expects '{ascii}'"


# ---- 2. a coupon read in a calendar entry, granted in another ---------------------------------------

SALE = """\
timezone "Asia/Shanghai"
coupon sale30 "限时满200减30" worth 30 valid for 3 days
template sale_open "开抢" = "券已到账"
template sale_2h "最后两小时" = "最后 2 小时！{{ coupon.title }} 马上过期"

playbook flash_sale "618限时折扣" {
    in groups tagged "sale"
    at 2026-06-18 10:00 for each member {
        grant sale30 to member
        send sale_open to member
    }
    at 2026-06-20 20:00 for each member: send sale_2h to member
}
"""


def test_a_coupon_granted_in_another_calendar_entry_is_told_each_entry_is_a_flow_of_its_own(
    tmp_path: Path,
) -> None:
    # The hint said "move the `grant` above this step", and it was above, in the first entry.
    (tmp_path / "sale.sop").write_text(SALE, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "sale.sop")])
    assert result.exit_code == 1
    assert "error[SOP202]: template 'sale_2h' uses {{ coupon.title }}" in result.output
    assert (
        "hint: a calendar entry is a flow of its own: a `grant` in another entry or in `do` does not "
        "count here; grant in this entry before the send, or write the coupon's title and worth into "
        "the text"
    ) in result.output
    assert "move the `grant` above" not in result.output


# ---- 3. `why` names an entry by the time the playbook wrote ------------------------------------------

OPEN = """\
timezone "Asia/Shanghai"
template sale_open "开抢" = "{{ member.name }}，限时折扣开抢啦"
template weekly "周报" = "{{ member.name }}，本周精选"

playbook flash_sale "618限时折扣" {
    in groups tagged "sale"
    at 2026-06-18 10:00 for each member: send sale_open to member
    at every monday at 20:00 for each member: send weekly to member
}
"""

OPEN_RUN = """\
start: 2026-06-17 09:00
end: 2026-06-23 00:00
groups:
  - {id: s1, name: 福利群, tags: [sale]}
members:
  - {id: a, name: 阿花, groups: [s1]}
expect:
  - {action: send, template: sale_open, member: a, at: 2026-06-18 10:00}
"""


def test_why_names_a_one_instant_and_an_inline_entry_as_written(tmp_path: Path) -> None:
    # Both were told as "calendar entry for each member", which says neither which nor when.
    (tmp_path / "sale.sop").write_text(OPEN, encoding="utf-8")
    (tmp_path / "sale.yaml").write_text(OPEN_RUN, encoding="utf-8")
    result = CliRunner().invoke(main, ["why", "a", "--timeline", str(tmp_path / "sale.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  2026-06-18 10:00  at 2026-06-18 10:00 for each member (line 7) → started" in lines
    assert "  2026-06-22 20:00  at every monday at 20:00 for each member (line 8) → started" in lines


# ---- 4. `why` gives the count of the window, not every event the member has kept --------------------

REPEAT = """\
timezone "Asia/Shanghai"
template again "复购提醒" = "{{ member.name }}，上次买的快用完了吧？"
template vip "老客关怀" = "{{ member.name }}，谢谢一个月里的支持"

playbook nudge "三天内没复购就提醒" {
    in groups tagged "sale"
    at 2026-06-12 10:00 for each member when orders in last 3 days >= 1: send again to member
    at 2026-06-12 10:00 for each member when orders in last 30 days >= 1: send vip to member
}
"""

REPEAT_RUN = """\
start: 2026-06-01 09:00
end: 2026-06-13 00:00
groups:
  - {id: s1, name: 福利群, tags: [sale]}
members:
  - {id: a, name: 阿花, groups: [s1]}
events:
  - {at: 2026-06-02 10:00, kind: order, member: a, group: s1, data: {amount: 99}}
expect:
  - {action: send, template: vip, member: a}
"""


def test_why_counts_a_window_as_the_engine_did(tmp_path: Path) -> None:
    # The order of 06-02 is kept for the 30-day window; `why` said "(orders kept: 1)" under
    # `orders in last 3 days >= 1` being false, as if one order had not been enough.
    (tmp_path / "nudge.sop").write_text(REPEAT, encoding="utf-8")
    (tmp_path / "nudge.yaml").write_text(REPEAT_RUN, encoding="utf-8")
    result = CliRunner().invoke(main, ["why", "a", "--timeline", str(tmp_path / "nudge.yaml")])
    assert result.exit_code == 0, result.output
    assert "      ✗ orders in last 3 days >= 1    (orders in last 3 days: 0)" in result.output.splitlines()
    assert "kept" not in result.output


# ---- 5. an unknown name under `count: 0` is told as `count: 0` ----------------------------------------

FIRST = """\
timezone "Asia/Shanghai"
template remind2 "首单提醒" = "{{ member.name }}，新人券明天就过期啦！"

playbook first_order "新人首单" {
    in groups tagged "normal"
    on member joins
    do {
        wait 1 day for member orders else {
            send remind2 to member
        }
    }
}
"""

FIRST_RUN = """\
start: 2026-04-01 09:00
end: 2026-04-05 00:00
groups:
  - {id: g1, name: 新人群, tags: [normal]}
events:
  - {at: 2026-04-01 10:00, kind: join, member: n3, group: g1, data: {name: 三号}}
expect:
  - {action: send, template: remind2, member: n4, count: 0}
"""


def test_an_unknown_name_under_count_0_names_count_0(tmp_path: Path) -> None:
    # It said "so this `never` holds", and the fixture has no `never` to look for.
    (tmp_path / "first.sop").write_text(FIRST, encoding="utf-8")
    (tmp_path / "first.yaml").write_text(FIRST_RUN, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(tmp_path / "first.yaml")])
    assert result.exit_code == 2, result.output
    assert (
        "error[SOP604]: expect.0.member: member 'n4' is not in the playbooks or the fixture, "
        "so this `count: 0` holds whatever happens"
    ) in result.output
