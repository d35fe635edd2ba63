"""The checker on dates: holiday lists, a calendar's `except`, `date between` and `date in`."""

from __future__ import annotations

import datetime as dt

import pytest

import sopdsl
from sopdsl import lang
from sopdsl.errors import DiagnosticError

HEAD = 'timezone "Asia/Shanghai"\ntemplate hi = "hi"\n'


def _plan(text: str) -> sopdsl.Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "d.sop")))


def _diagnostics(text: str) -> list[tuple[str, int, int, str, str | None]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "d.sop"))
    return [(d.code, d.span.line, d.span.column, d.message, d.hint) for d in caught.value.diagnostics]


def test_a_holiday_list_declared_after_the_calendar_is_expanded_into_its_except() -> None:
    plan = _plan(
        "calendar live = every friday at 18:00 except national, 2026-10-16\n"
        "holidays national = 2026-10-01..2026-10-07, 2027-01-01\n"
        "playbook p { at live: send hi to group }\n"
    )
    rule = plan.declarations.calendars["live"].rule
    assert isinstance(rule, lang.Weekly)
    assert [(s.first, s.last) for s in rule.skip] == [
        (dt.date(2026, 10, 1), dt.date(2026, 10, 7)),
        (dt.date(2027, 1, 1), dt.date(2027, 1, 1)),
        (dt.date(2026, 10, 16), dt.date(2026, 10, 16)),
    ]


def test_not_date_between_parses_as_a_date_test() -> None:
    # It used to read `date` as a counter and ask for `in`.
    plan = _plan(
        "playbook p {\n    on member joins\n    when not date between 2026-10-01 and 2026-10-07\n"
        "    do: send hi to member\n}\n"
    )
    guard = plan.playbooks[0].guard
    assert isinstance(guard, lang.NotCond) and isinstance(guard.operand, lang.DateCond)


def test_an_unknown_holiday_list_is_located_with_a_did_you_mean() -> None:
    found = _diagnostics(
        "holidays national = 2026-10-01..2026-10-07\n"
        "calendar live = every friday at 18:00 except natinal\n"
        "playbook p {\n    on member joins\n    when date in nation\n    do: send hi to member\n}\n"
    )
    assert found == [
        ("SOP118", 4, 46, "unknown holiday list 'natinal'", "did you mean 'national'?"),
        ("SOP118", 7, 18, "unknown holiday list 'nation'", "did you mean 'national'?"),
    ]


def test_a_range_that_ends_before_it_starts_is_refused_where_it_is_written() -> None:
    found = _diagnostics(
        "holidays national = 2026-10-07..2026-10-01\n"
        "playbook p {\n    on member joins\n    when date between 2026-10-07 and 2026-10-01\n"
        "    do: send hi to member\n}\n"
    )
    assert [(code, line, col) for code, line, col, _, _ in found] == [("SOP306", 3, 21), ("SOP306", 6, 10)]
    assert found[0][3] == "the range ends (2026-10-01) before it starts (2026-10-07)"


def test_a_day_not_on_the_calendar_and_a_second_except_are_refused() -> None:
    found = _diagnostics(
        "calendar live = every friday at 18:00 except 2026-02-30 except 2026-10-16\n"
        "playbook p { at live: send hi to group }\n"
    )
    assert [(code, line, col) for code, line, col, _, _ in found] == [("SOP302", 3, 46), ("SOP114", 3, 57)]


def test_a_time_where_a_date_belongs_gets_a_date_hint() -> None:
    found = _diagnostics(
        "playbook p {\n    on member joins\n    when not date between 10:00 and 12:00\n"
        "    do: send hi to member\n}\n"
    )
    assert [(code, line, col, hint) for code, line, col, _, hint in found] == [
        ("SOP100", 5, 27, "expected a date like 2026-11-11")
    ]


def test_the_except_survives_the_plan_file_and_a_calendar_without_one_is_written_as_before() -> None:
    plan = _plan(
        "holidays national = 2026-10-01..2026-10-07\n"
        "calendar live = every friday at 18:00 except national\n"
        "calendar plain = every monday at 10:00\n"
        "playbook p {\n    at live: send hi to group\n    at plain: send hi to group\n}\n"
    )
    again = sopdsl.plan.loads(plan.dumps())
    assert again.declarations.calendars["live"] == plan.declarations.calendars["live"]
    # Plans compiled before `except` existed hash their calendars without the field: they still load.
    assert "skip" not in plan.declarations.calendars["plain"].model_dump_json()
