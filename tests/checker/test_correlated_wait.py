"""The checker on `wait … for … where event.X == flow.Y`: fields on both sides, of one type."""

from __future__ import annotations

import pytest

import sopdsl
from sopdsl.errors import DiagnosticError
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source

HEAD = """timezone "Asia/Shanghai"
event team_opened { team: text, size: number }
event team_completed { team: text, size: number }
template done = "成团"
"""


def _program(wait: str) -> str:
    return (
        HEAD
        + f"playbook p {{\n    on event team_opened\n    do {{\n        {wait} then {{ send done to member }}\n    }}\n}}\n"
    )


def _diagnostics(text: str) -> list[tuple[str, int, int, str, str | None]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(text, "w.sop"))
    return [(d.code, d.span.line, d.span.column, d.message, d.hint) for d in caught.value.diagnostics]


def test_a_correlated_wait_reaches_the_plan() -> None:
    text = _program(
        "wait 24 hours for event team_completed where event.team == flow.team and event.size == flow.size"
    )
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "w.sop")))
    (wait,) = [i.wait for i in plan.playbooks[0].code if i.op == "wait_for"]
    assert wait is not None and wait.same == (("team", "team"), ("size", "size"))


def test_a_field_the_awaited_event_lacks_is_located_with_a_did_you_mean() -> None:
    found = _diagnostics(_program("wait 24 hours for event team_completed where event.taem == flow.team"))
    assert found == [("SOP108", 8, 60, "the awaited event has no field 'taem'", "did you mean 'team'?")]


def test_a_field_the_flows_event_lacks_is_located() -> None:
    found = _diagnostics(_program("wait 24 hours for event team_completed where event.team == flow.order"))
    assert [(code, line, col) for code, line, col, _, _ in found] == [("SOP108", 8, 73)]
    assert "has no field 'order'" in found[0][3]


def test_fields_of_two_types_are_refused() -> None:
    found = _diagnostics(_program("wait 24 hours for event team_completed where event.team == flow.size"))
    assert found == [
        (
            "SOP406",
            8,
            54,
            "event.team is text, flow.size is number",
            "a wait matches its own event on fields of one type",
        )
    ]


def test_the_formatter_writes_the_where_back() -> None:
    messy = _program(
        "wait  24 hours for event team_completed  where event.team==flow.team and event.size ==  flow.size"
    )
    out = format_source(Source("w.sop", messy))
    assert (
        "wait 24 hours for event team_completed where event.team == flow.team and event.size == flow.size then {"
        in out
    )
    assert format_source(Source("w.sop", out)) == out
