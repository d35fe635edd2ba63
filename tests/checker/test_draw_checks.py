"""The checker on `draw`: a whole number of winners, and a group to draw in."""

from __future__ import annotations

import pytest

import sopdsl
from sopdsl.errors import DiagnosticError
from sopdsl.lang import DrawStep

HEAD = 'timezone "Asia/Shanghai"\ncalendar friday = every friday at 20:00\n'


def _diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "d.sop"))
    return [(d.code, d.span.line, d.span.column, d.message) for d in caught.value.diagnostics]


@pytest.mark.parametrize("count", ["0", "2.5"])
def test_the_number_of_winners_is_a_whole_number_of_at_least_one(count: str) -> None:
    found = _diagnostics(f"playbook q {{\n    at friday: draw {count} winners from members\n}}\n")
    assert found == [
        ("SOP406", 4, 21, f"a number of winners must be a whole number of at least 1, not {count}")
    ]


def test_a_playbook_for_private_chats_has_no_group_to_draw_in() -> None:
    text = "playbook p {\n    in private chats\n    on member orders\n    do {\n        draw 3 winners from members\n    }\n}\n"
    assert _diagnostics(text) == [
        ("SOP116", 7, 9, "a playbook for private chats has no group to draw winners in")
    ]


def test_a_draw_reaches_the_plan() -> None:
    text = 'playbook q {\n    at friday: draw 3 winners from members tagged "active", "vip"\n}\n'
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "d.sop")))
    (instr,) = plan.playbooks[0].schedule[0].code
    assert instr.op == "act" and instr.action is not None
    assert isinstance(instr.action, DrawStep)
    assert instr.action.model_dump() == {
        "kind": "draw",
        "count": 3,
        "tags": ("active", "vip"),
        "loc": "d.sop:4",
    }  # an unset stock and period are not written, so plans from before stocks keep their hash
    assert (instr.action.stock, instr.action.period) == (None, None)


def test_a_draws_stock_is_a_whole_number_per_day_week_or_month() -> None:
    text = (
        "playbook q {\n    at friday: draw 3 winners from members stock 0 per week\n"
        "    at friday: draw 3 winners from members stock 5 per wek\n}\n"
    )
    assert _diagnostics(text) == [
        ("SOP406", 4, 50, "a draw's stock must be a whole number of at least 1, not 0"),
        ("SOP112", 5, 56, "unknown period 'wek'"),
    ]
    ok = "playbook q {\n    at friday: draw 3 winners from members stock 5 per month\n}\n"
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + ok, "d.sop")))
    (instr,) = plan.playbooks[0].schedule[0].code
    assert instr.action is not None and instr.action.model_dump()["stock"] == 5
