"""Arithmetic in tests, `set` and `call`: what division by zero, overflow, unset operands and
values of the wrong type do (each a visible record, never a traceback), counters set and reset
with their thresholds, and windows over declared events."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import sopdsl
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan, timeutil

CASES = Path(__file__).parent.parent / "engine_cases"
START = timeutil.resolve(dt.datetime(2026, 3, 2, 9, 0), ZoneInfo("Asia/Shanghai"))


def plan_of(text: str) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


PROGRAM = """
timezone "Asia/Shanghai"
counter level
attribute ratio: number
event score { amount: number, by: number }
action crm { value: number }
template up = "升级 {{ member.level }}"
playbook score {
    on event score
    repeat always
    do {
        set member.ratio = event.amount / event.by
        set member.level = member.level + event.amount * 1000
        call crm(value = event.amount / event.by)
    }
}
playbook gate {
    on event score
    repeat always
    when member.ratio * 2 > 1
    do { send up to member }
}
playbook up {
    on member.level reaches 3000
    do { send up to member }
}
"""


def _run(*payloads: dict[str, object]) -> Engine:
    engine = Engine(plan_of(PROGRAM), start=START)
    engine.add_group("g1")
    engine.add_member("m1", name="阿峰", groups=["g1"])
    engine.start()
    for k, data in enumerate(payloads, 1):
        engine.feed(Event("custom", START + 60 * k, member="m1", group="g1", name="score", data=data))
    return engine


def test_a_division_by_zero_fails_its_step_visibly_and_leaves_the_field_as_it_was() -> None:
    engine = _run({"amount": 3, "by": 2}, {"amount": 1, "by": 0})
    member = engine.members["m1"]
    assert member.attributes["ratio"] == 1.5  # the first score's, kept
    assert member.counters["level"] == 4000  # the step after the failed one still ran
    failed = [a for a in engine.log if a.status == "failed"]
    assert [(a.kind, a.detail.get("field")) for a in failed if a.kind == "set"] == [("set", "ratio")]
    assert "division by zero in event.amount / event.by" in str(failed[0].reason)
    calls = [a for a in engine.log if a.kind == "call"]
    assert [a.status for a in calls] == ["done", "failed"]
    assert calls[0].detail["args"] == {"value": 1.5}
    assert "ZeroDivisionError" in str(calls[1].reason)


def test_a_result_too_large_for_a_number_is_an_error_not_infinity() -> None:
    engine = _run({"amount": 1e308, "by": 1e-308})
    member = engine.members["m1"]
    assert "ratio" not in member.attributes
    reasons = [str(a.reason) for a in engine.log if a.status == "failed"]
    assert any("OverflowError" in r and "too large" in r for r in reasons), reasons


def test_an_unset_operand_makes_a_test_false_without_a_record() -> None:
    engine = _run({"amount": 1, "by": 0})
    # The ratio was never set: `member.ratio * 2 > 1` is false, with no record.
    assert not [a for a in engine.log if a.kind == "when"]
    assert not [a for a in engine.log if a.kind == "send" and a.playbook == "gate"]
    engine = _run({"amount": 1, "by": 2})
    assert [a.playbook for a in engine.log if a.kind == "send"] == []  # 0.5 * 2 > 1 is false
    engine = _run({"amount": 3, "by": 2})
    assert [a.playbook for a in engine.log if a.kind == "send"] == ["up", "gate"]


def test_a_value_of_the_wrong_type_fails_the_step_and_names_the_field() -> None:
    engine = _run({"amount": "很多", "by": 2})
    reasons = [str(a.reason) for a in engine.log if a.kind == "set" and a.status == "failed"]
    assert reasons and "event.amount is str" in reasons[0]


def test_setting_a_counter_fires_its_threshold_and_reset_counts_again() -> None:
    engine = _run({"amount": 3, "by": 1})
    sends = [a for a in engine.log if a.kind == "send" and a.playbook == "up"]
    assert len(sends) == 1 and sends[0].detail["text"] == "升级 3000"


def test_the_streak_case_resets_and_counts_check_ins_per_window() -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "calc.sop"))))
    fixture, _ = load_fixture(CASES / "calc.yaml", "calc.yaml")
    run = simulate(plan, fixture)
    praise = [a for a in run.actions if a.kind == "send" and a.detail["template"] == "praise"]
    assert [a.detail["text"] for a in praise] == ["阿峰 已连续打卡 2 天，还差 19 天"]
    failed = {(a.kind, a.playbook) for a in run.actions if a.status == "failed"}
    assert failed == {("set", "bonus"), ("when", "ratio")}


def test_windows_count_joins_and_leaves_of_the_member() -> None:
    plan = plan_of(
        """
        timezone "Asia/Shanghai"
        template again = "又回来了"
        playbook rejoin {
            on member joins
            repeat always
            when joins in last 7 days >= 2 and leaves in last 7 days >= 1
            do { send again to member }
        }
        """
    )
    engine = Engine(plan, start=START)
    engine.add_group("g1")
    engine.start()
    for k, kind in enumerate(("join", "leave", "join", "leave"), 1):
        engine.feed(Event(kind, START + 3600 * k, member="m1", group="g1"))
    engine.feed(Event("join", START + 9 * 86400, member="m1", group="g1"))  # the first two are old
    assert [a.time - START for a in engine.log if a.kind == "send"] == [3 * 3600]


def test_why_names_the_values_arithmetic_read_and_the_events_a_window_counts(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sopdsl.cli import main

    result = CliRunner().invoke(
        main, ["why", "m1", "--timeline", str(CASES / "calc.yaml"), "--playbook", "praise"]
    )
    assert result.exit_code == 0, result.output
    assert "✗ member.streak + 1 >= 3    (member.streak = 0)" in result.output
    # The second check-in of 03-04: the window held two, so the receipt is not sent again.
    assert "✗ checkins in last 1 day == 1    (checkins in last 1 day: 2)" in result.output
