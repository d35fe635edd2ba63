"""Engine snapshots: an engine restored from one goes on exactly as the engine it was taken from.

The live runtime restarts from a snapshot instead of replaying a shard's whole journal, so any
state a snapshot forgot would show as a timer lost or an action sent twice after a restart.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from livestores import timeline
from test_reload import DRIP, T0, compile_text

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.snapshot import MAGIC
from sopdsl.engine.snapshot_schema import SNAPSHOT_FORMAT
from sopdsl.errors import EngineError
from sopdsl.plan import Plan

BUSY = Path(__file__).parent.parent / "engine_cases" / "busy.sop"
DAY = 86400


def busy_plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))


def _event(body: dict[str, Any]) -> Event:
    return Event(
        body["kind"],
        body["time"],
        member=body.get("member"),
        group=body.get("group"),
        data=body.get("data") or {},
    )


def _setup(engine: Engine, line: dict[str, Any]) -> None:
    for group in line["groups"]:
        engine.add_group(group["id"], tags=group.get("tags", ()))
    for member in line["members"]:
        engine.add_member(member["id"], groups=member["groups"], tags=member["tags"])


def _log(engine: Engine) -> list[tuple[int, str, str | None, str | None, str, str]]:
    return [(a.time, a.kind, a.member, a.group, a.key, a.status) for a in engine.log]


def _whole_run(plan: Plan, line: dict[str, Any]) -> Engine:
    whole = Engine(plan, start=line["start"], seed=5)
    _setup(whole, line)
    for body in line["events"]:
        whole.feed(_event(body))
    whole.advance(line["end"])
    return whole


@pytest.mark.parametrize("cut", [0, 1, 37, 120, 239])
def test_a_restored_engine_goes_on_as_the_one_it_was_taken_from(cut: int) -> None:
    plan = busy_plan()
    line = timeline(11, 240)
    whole = _whole_run(plan, line)

    first = Engine(plan, start=line["start"], seed=5)
    _setup(first, line)
    for body in line["events"][:cut]:
        first.feed(_event(body))
    blob = first.snapshot()
    second = Engine.restore(blob, {plan.content_hash: plan}.__getitem__)
    for body in line["events"][cut:]:
        second.feed(_event(body))
    second.advance(line["end"])
    assert len(whole.log) > 100
    assert _log(first) + _log(second) == _log(whole)


def test_a_snapshot_keeps_flows_finishing_on_an_earlier_plan_version() -> None:
    v1 = compile_text(DRIP % ("", "day2"))
    v2 = compile_text(DRIP % ("", "day2_new"))
    plans = {v1.content_hash: v1, v2.content_hash: v2}

    def run(snapshot_at: int | None) -> list[tuple[str, str | None, str]]:
        engine = Engine(v1, start=T0)
        engine.add_group("g1")
        engine.feed(Event("join", T0, member="m1", group="g1"))
        engine.reload(v2, at=T0 + 3600)
        engine.feed(Event("join", T0 + 7200, member="m2", group="g1"))
        sent: list[Any] = []
        if snapshot_at is not None:
            engine.advance(snapshot_at)
            sent = list(engine.log)
            engine = Engine.restore(engine.snapshot(), plans.__getitem__)
        engine.advance(T0 + 10 * DAY)
        return [
            (str(a.detail.get("template")), a.member, a.key) for a in [*sent, *engine.log] if a.kind == "send"
        ]

    whole = run(None)
    assert ("day2", "m1") in [(t, m) for t, m, _ in whole] and ("day2_new", "m2") in [
        (t, m) for t, m, _ in whole
    ]
    assert run(T0 + DAY) == whole  # restored while m1 still waits on the old version
    assert run(T0 + 3 * DAY) == whole


def test_a_snapshot_of_another_format_or_garbage_is_refused_not_half_restored() -> None:
    plan = busy_plan()
    engine = Engine(plan, start=0)
    with pytest.raises(EngineError, match="unreadable engine snapshot"):
        Engine.restore(b"not a snapshot", {plan.content_hash: plan}.__getitem__)
    blob = engine.snapshot()
    assert blob.startswith(MAGIC)
    at = len(MAGIC) + 2  # after the codec version: the shape
    old = blob[:at] + b"0123456789abcdef" + blob[at + 16 :]
    with pytest.raises(EngineError, match=f"format 0123456789abcdef, not {SNAPSHOT_FORMAT}"):
        Engine.restore(old, {plan.content_hash: plan}.__getitem__)
    pickled = pickle.dumps(("0123456789abcdef", {}), protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(EngineError, match=r"older format \(pickle"):
        Engine.restore(pickled, {plan.content_hash: plan}.__getitem__)
    assert Engine.restore(engine.snapshot(), {plan.content_hash: plan}.__getitem__).now == 0


@pytest.mark.source
def test_every_piece_of_engine_state_is_either_in_a_snapshot_or_rebuilt_from_the_plan() -> None:
    # A field added to the engine must be put in one of the two lists, or restarts would forget it.
    from sopdsl.engine.snapshot_schema import _SNAPSHOT_STATE

    rebuilt = {
        "plan", "program", "zone", "live", "compiled", "windows", "_triggers", "_absence_on", "_watched",
        "_message_absence", "_silence_in_group", "_event_index", "_referrer_steps", "_counter_names",
        "_member_armers", "_message_plan",
        "armed", "delivery",  # saved separately: their tables are filled in place
        "log", "keep_log", "sinks", "holds", "tracer", "on_step", "on_timer", "watch", "tally", "_depth",  # the caller's, or 0 between calls
        "staff_delays",  # the caller's: a fixture's staff
        "_cause",  # set before each event, timer or tag action is processed
        "sets",  # the members' tags and groups shared again as they are restored
    }  # fmt: skip
    engine = Engine(busy_plan(), start=0)
    # Its state is all in slots (see `_Parts.__slots__`): no instance dict to hide an attribute in.
    assert not hasattr(engine, "__dict__")
    slots = {name for cls in type(engine).__mro__ for name in vars(cls).get("__slots__", ())}
    slots -= {"__weakref__"}  # the figures hold an engine weakly
    assert {name for name in slots if hasattr(engine, name)} == slots == set(_SNAPSHOT_STATE) | rebuilt


def test_the_snapshot_format_follows_the_fields_of_the_records_it_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A field added to a member (or group, flow, action) without anyone remembering snapshots:
    # older snapshots must then be refused (and the journal replayed), not restored into records
    # that lack the field.
    import dataclasses

    from sopdsl.engine import snapshot_schema as schema
    from sopdsl.engine.state import MemberState

    real = dataclasses.fields

    def with_a_new_field(cls: Any) -> Any:
        found = real(cls)
        if cls is MemberState:
            return (*found, type("F", (), {"name": "vip_since"})())
        return found

    monkeypatch.setattr(dataclasses, "fields", with_a_new_field)  # the module the schema reads
    assert schema._snapshot_format() != SNAPSHOT_FORMAT


def test_a_snapshot_of_positional_timers_restores_into_typed_timers() -> None:
    # Written by sopdsl at 2d39055, whose timers were positional tuples `(due, ..., kind, *payload)`:
    # busy.sop after 150 events of `timeline(11, 240)`, with members waiting (timeouts), a send
    # held back by the policy (deliver), calendar entries and silences in groups pending.
    blob = (Path(__file__).parent / "data" / "busy.tuple-timers.snapshot").read_bytes()
    plan = busy_plan()
    line = timeline(11, 240)
    whole = _whole_run(plan, line)

    restored = Engine.restore(blob, {plan.content_hash: plan}.__getitem__)
    assert {type(entry[5]).__name__ for entry in restored.heap} == {
        "Timeout",
        "CalendarDue",
        "Deliver",
        "SilenceIn",
    }
    # Its members' tags and groups were sets then; they restore frozen (state.py), the same values.
    members = restored.members.values()
    assert all(type(m.tags) is frozenset and type(m.groups) is frozenset for m in members)
    assert any(m.groups for m in members)
    for body in line["events"][150:]:
        restored.feed(_event(body))
    restored.advance(line["end"])
    # It goes on as the engine it was taken from: its actions are the whole run's last ones.
    assert len(restored.log) > 50
    assert _log(restored) == _log(whole)[len(whole.log) - len(restored.log) :]
