"""A failure while deciding one action fails that action alone: never the engine, never a shard.

A template that divides by zero for one member, a `when` that meets a list where a number was
declared: the action (or that member's run of the trigger) is logged as failed with a reason that
names the error, the flow goes on as after a dropped action, and everything else runs. The dry run
and the live runtime report it the same way, and the live runtime counts it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livestores import START

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.errors import SopdslError
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.plan import Plan

HOUR = 3600

WEDGE = """\
timezone "Asia/Shanghai"
template t = "{{ member.name | float / (member.name | length - 1) }}"
template after = "still here"
playbook p {
    in groups tagged "normal"
    on member joins
    do {
        wait 1 hours
        send t to member
        send after to member
    }
}
"""


def plan_of(text: str) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


def engine_of(plan: Plan) -> Engine:
    engine = Engine(plan, start=START)
    engine.add_group("g1", tags=["normal"])
    return engine


def join(member: str, time: int, name: str) -> Event:
    return Event("join", time, member=member, group="g1", data={"name": name})


def test_a_template_failing_for_one_member_fails_that_send_alone() -> None:
    engine = engine_of(plan_of(WEDGE))
    engine.feed(join("m1", START, "x"))  # a one-character name: the template divides by zero
    engine.feed(join("m2", START + 60, "ab"))
    engine.advance(START + 2 * HOUR)
    failed = [a for a in engine.log if a.status == "failed"]
    assert [(a.member, a.kind) for a in failed] == [("m1", "send")]
    assert failed[0].reason is not None and "ZeroDivisionError" in failed[0].reason
    # The flow went on after the failed send, and the other member was not touched by it.
    sent = [(a.member, a.detail["template"]) for a in engine.log if a.status == "done"]
    assert sent == [("m1", "after"), ("m2", "t"), ("m2", "after")]
    # The engine is not wedged: it takes more events and timers.
    engine.feed(join("m3", START + 3 * HOUR, "x"))
    engine.advance(START + 5 * HOUR)
    assert [a.member for a in engine.log if a.status == "failed"] == ["m1", "m3"]


@pytest.mark.parametrize(
    ("expression", "error"),
    # `member.name + 1` is refused by the checker now (SOP409); a filtered value it cannot type.
    [("1/0", "ZeroDivisionError"), ("(member.name | list) + 1", "TypeError")],
)
def test_any_template_error_is_named_in_the_failed_action(expression: str, error: str) -> None:
    engine = engine_of(plan_of(WEDGE.replace("member.name | float / (member.name | length - 1)", expression)))
    engine.feed(join("m1", START, "x"))
    engine.advance(START + 2 * HOUR)
    [failed] = [a for a in engine.log if a.status == "failed"]
    assert failed.reason is not None and error in failed.reason and failed.reason.startswith("template error")


def test_a_constant_too_large_to_fold_is_refused_at_check_and_never_wedges_a_run() -> None:
    text = WEDGE.replace("member.name | float / (member.name | length - 1)", "7**777777")
    with pytest.raises(SopdslError, match="computes too much"):
        plan_of(text)
    # A plan that holds it all the same (compiled by an older sopdsl, or edited by hand): the send
    # fails, named, and the run goes on.
    plan = plan_of(WEDGE)
    templates = dict(plan.declarations.templates)
    templates["t"] = templates["t"].model_copy(update={"source": "{{ 7**777777 }}"})
    plan = plan.model_copy(
        update={"declarations": plan.declarations.model_copy(update={"templates": templates})}
    )
    engine = engine_of(plan)
    engine.feed(join("m1", START, "x"))
    engine.advance(START + 2 * HOUR)
    assert [a.status for a in engine.log] == ["failed", "done"]
    assert "exponent" in str(engine.log[0].reason)


SCORED = """\
timezone "Asia/Shanghai"
attribute score: number
template hi = "hi"
template big = "big"
playbook p {
    in groups tagged "normal"
    on member joins
    when member.score in [1, 2, 3]
    do {
        send hi to member
        if member.score > 10 { send big to member }
    }
}
"""


def test_a_when_condition_failing_on_a_members_data_stops_that_member_alone() -> None:
    engine = engine_of(plan_of(SCORED))
    # A bot registered a list where a number was declared: `in` cannot hash it.
    engine.add_member("bad", attributes={"score": [1]})
    engine.add_member("good", attributes={"score": 2})
    engine.feed(join("bad", START, "bad"))
    engine.feed(join("good", START + 1, "good"))
    assert [(a.member, a.kind, a.status) for a in engine.log] == [
        ("bad", "when", "failed"),
        ("good", "send", "done"),
    ]
    reason = engine.log[0].reason
    assert reason is not None and reason.startswith("condition error: TypeError")


def test_an_if_condition_failing_ends_that_flow_visibly() -> None:
    engine = engine_of(plan_of(SCORED.replace("when member.score in [1, 2, 3]\n", "")))
    engine.add_member("huge", attributes={"score": 10**400})  # no float holds it
    engine.feed(join("huge", START, "huge"))
    assert [(a.kind, a.status) for a in engine.log] == [("send", "done"), ("if", "failed")]
    assert "OverflowError" in str(engine.log[1].reason)
    assert engine.flows == {}


def test_the_live_runtime_records_counts_and_survives_a_failing_template(tmp_path: Path) -> None:
    plan = plan_of(WEDGE)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(START)
    sent: list[str] = []
    executors = {"send": lambda action, key: sent.append(str(action.member))}
    rt = Runtime(plan, url, clock=clock, executors=executors)
    rt.add_group("g1", tags=["normal"])
    rt.feed({"kind": "join", "member": "m1", "group": "g1", "data": {"name": "x"}})
    clock.set(START + 2 * HOUR)
    decided = rt.tick()
    # The runtime says `queued` for the send to go out: its executor runs after (the engine: done).
    assert [(a.kind, a.status) for a in decided] == [("send", "failed"), ("send", "queued")]
    # Later events and timers still go through, and the failed action was never executed.
    rt.feed({"kind": "join", "member": "m2", "group": "g1", "data": {"name": "ab"}})
    clock.set(START + 4 * HOUR)
    rt.tick()
    assert sent == ["m1", "m2", "m2"]
    assert rt.stats()["actions_failed"] == 1
    rt.close()
    # A restart replays into the same decisions, not into an error.
    again = Runtime(plan, url, clock=clock, executors=executors)
    assert again.stats()["actions_failed"] == 1
    again.tick()
    assert sent == ["m1", "m2", "m2"]
    again.close()


# ---- the property: no member data wedges the engine ------------------------------------------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_OPERANDS = st.sampled_from(
    ["member.name", "member.score", "member.tags", "member.messages", "1", "0", "'a'", "2.5", "[1]", "none"]
)
_OPERATORS = st.sampled_from(["+", "-", "*", "/", "//", "%", "~", " and ", " or ", "==", "<"])
_FILTERS = st.sampled_from(["", "|int", "|float", "|length", "|upper", "|first", "|round", "|abs", "|sum"])


@st.composite
def _expressions(draw: st.DrawFn) -> str:
    parts = [draw(_OPERANDS) + draw(_FILTERS)]
    for _ in range(draw(st.integers(0, 2))):
        parts.append(draw(_OPERATORS))
        parts.append(draw(_OPERANDS) + draw(_FILTERS))
    return "".join(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=_expressions(), score=_VALUES, name=st.text(max_size=3))
def test_no_template_over_member_data_wedges_the_engine(expression: str, score: object, name: str) -> None:
    text = f"""\
timezone "Asia/Shanghai"
attribute score: number
template t = "{{{{ {expression} }}}}"
template after = "after"
playbook p {{
    in groups tagged "normal"
    on member joins
    when member.score > 1 or member.score <= 1 or member.score in [1, 2]
    do {{
        send t to member
        send after to member
    }}
}}
"""
    try:
        plan = plan_of(text)
    except SopdslError:
        return  # refused at check time: a diagnostic, not a wedge
    engine = engine_of(plan)
    engine.add_member("m1", attributes={"score": score})
    engine.add_member("m2", attributes={"score": 1})
    engine.feed(join("m1", START, name))
    engine.feed(join("m2", START + 1, "ok"))
    engine.advance(START + HOUR)
    # Failures come from the template or the member's data, each named; nothing else may fail.
    for action in engine.log:
        if action.status == "failed":
            assert action.reason is not None
            assert action.reason.startswith(("template error", "condition error")), action.reason
    # m2's run is untouched by m1's data: its `after` always goes out.
    assert ("m2", "after") in [(a.member, a.detail.get("template")) for a in engine.log if a.status == "done"]
