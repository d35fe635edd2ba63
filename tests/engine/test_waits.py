"""What a flow waits for is a typed value (`sopdsl.engine.state.Wait`), never an encoded string.

Each wait type must be written and read back by the snapshot codec, handled by a plan reload,
and dispatched exhaustively: a wait type added to the union without teaching the engine fails
mypy (shown here with a shadow copy of state.py, as tests/checker/test_exhaustive.py does).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

import msgspec
import pytest
from exhaustiveness import assert_never_sites, reported_with_shadows
from test_reload import T0, compile_text

from sopdsl.engine import snapshot as snapshot_codec
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.record_types import field_types
from sopdsl.engine.state import WAIT_TYPES, Flow, Wait, WaitDelivery, WaitEvent, WaitTask
from sopdsl.errors import EngineError
from sopdsl.plan import Instr

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "sopdsl" / "engine"
STATE = ENGINE / "state.py"
HOUR = 3600

# One of each wait type: a new one added to `Wait` must be added here too (the first test says so).
SAMPLES: dict[type[Wait], Wait] = {
    WaitEvent: WaitEvent("custom:paid"),
    WaitTask: WaitTask("welcome:join:m1:0"),
    WaitDelivery: WaitDelivery(),
}

HELD = """
    timezone "Asia/Shanghai"
    template hello = "欢迎 {{ member.name }}"
    template nudge = "说句话吧"
    policy {
        quiet hours 22:00 - 08:00
    }
    playbook welcome {
        in all groups
        on member joins
        do {
            send hello to member
            wait 1 day for member posts else { send nudge to member }
            assign "给 {{ member.name }} 打个电话" to operator within 1 day
            send nudge to member
        }
    }
"""


def test_every_wait_type_is_in_the_union_and_has_a_sample() -> None:
    assert set(typing.get_args(Wait)) == set(WAIT_TYPES) == set(SAMPLES)
    assert field_types(Flow)["waiting"] == Wait | None  # the annotation, compiled or not


def test_the_snapshot_shape_follows_the_type_of_what_a_flow_waits_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `waiting` was a string before: a snapshot of then must be replayed, not restored, so the
    # shape hash covers the fields' types (and the wait types' own fields), not only their names.
    from sopdsl.engine import snapshot_schema as schema

    def as_before(cls: typing.Any) -> dict[str, typing.Any]:
        hints = field_types(cls)
        return {**hints, "waiting": str | None} if cls is Flow else hints

    monkeypatch.setattr(schema, "field_types", as_before)
    assert schema._snapshot_format() != schema.SNAPSHOT_FORMAT


def _flows_round_trip(flows: dict[int, Flow]) -> dict[int, Flow]:
    schema = {"flows": dict[int, Flow]}
    blob = snapshot_codec.encode({"flows": flows}, schema, "x" * 16)
    return typing.cast(dict[int, Flow], snapshot_codec.decode(blob, schema, "x" * 16)["flows"])


@pytest.mark.parametrize("wait", [*SAMPLES.values(), None], ids=repr)
def test_the_snapshot_codec_writes_and_reads_every_wait(wait: Wait | None) -> None:
    flow = Flow(7, 0, -1, "m1", "g1", 3, "on member joins", T0, waiting=wait, token=2)
    back = _flows_round_trip({7: flow})[7]
    assert back == flow
    assert type(back.waiting) is type(wait)


@pytest.mark.parametrize(
    "row",
    [
        ["Flow", 1],  # a class the union does not name
        ["os.system", "echo"],
        ["WaitEvent"],  # a field short
        ["WaitEvent", "message", [], "extra"],  # a field too many
        ["WaitEvent", "message", "extra"],  # a field of the wrong type (the correlated values)
        ["WaitEvent", "message", [["team", {"x": 1}]]],  # a value no event field holds
        ["WaitEvent", 5],  # a field of the wrong type
        ["WaitDelivery", "x"],
        [],
        "message",  # the old string encoding
    ],
    ids=repr,
)
def test_a_forged_wait_is_refused(row: object) -> None:
    schema = {"flows": dict[int, Flow]}
    flow = Flow(7, 0, -1, "m1", "g1", 3, "t", T0, waiting=WaitEvent("message"))
    blob = snapshot_codec.encode({"flows": {7: flow}}, schema, "x" * 16)
    head = len(snapshot_codec.MAGIC) + snapshot_codec._HEADER.size
    document = msgspec.msgpack.decode(blob[head:])
    waiting = [f.name for f in dataclasses.fields(Flow)].index("waiting")
    assert document["flows"][7][waiting] == ["WaitEvent", "message", []]  # as written
    document["flows"][7][waiting] = row
    forged = blob[:head] + msgspec.msgpack.encode(document)
    with pytest.raises(EngineError):
        snapshot_codec.decode(forged, schema, "x" * 16)


# A compiled Flow refuses the wrong type at the assignment already (TypeError): only a pure one
# can hold it for the codec to refuse.
@pytest.mark.source
def test_writing_a_wait_of_an_undeclared_type_is_refused() -> None:
    flow = Flow(7, 0, -1, "m1", "g1", 3, "t", T0)
    flow.waiting = typing.cast(Wait, "message")  # the old encoding, say
    with pytest.raises(EngineError):
        _flows_round_trip({7: flow})


def _wait_for_instr() -> Instr:
    plan = compile_text(HELD)
    return next(instr for instr in plan.playbooks[0].code if instr.op == "wait_for")


@pytest.mark.parametrize("wait", [*SAMPLES.values(), None], ids=repr)
def test_a_reload_onto_a_wait_for_handles_every_wait(wait: Wait | None) -> None:
    flow = Flow(7, 0, -1, "m1", "g1", 1, "t", T0, waiting=wait)
    Engine._rewait(flow, _wait_for_instr())
    match wait:
        case WaitEvent() | WaitTask():
            assert flow.waiting == WaitEvent("message")  # the edited step's event
        case WaitDelivery() | None:
            assert flow.waiting is wait  # still held by its action, or not waiting
        case _:
            typing.assert_never(wait)


def _waits(engine: Engine) -> list[Wait | None]:
    return [flow.waiting for flow in engine.flows.values()]


def _same_after_restore(engine: Engine, plan: object) -> Engine:
    blob = engine.snapshot()
    back = Engine.restore(blob, lambda _hash: typing.cast(typing.Any, plan))
    assert _waits(back) == _waits(engine)
    assert back.snapshot() == blob
    return back


def test_a_flow_waits_for_delivery_then_an_event_then_a_task_and_each_survives_a_snapshot() -> None:
    plan = compile_text(HELD)
    e = Engine(plan, start=T0)
    e.add_group("g1")
    night = T0 + 14 * HOUR  # 23:00 in Shanghai: quiet hours hold the welcome
    e.feed(Event("join", night, member="m1", group="g1"))
    assert _waits(e) == [WaitDelivery()]
    e = _same_after_restore(e, plan)

    e.feed(Event("message", night + 10 * HOUR, member="m2", group="g1"))  # 09:00: the welcome goes out
    assert _waits(e) == [WaitEvent("message")]
    assert e.waits == {"m1": set(e.flows)}
    e = _same_after_restore(e, plan)

    e.feed(Event("message", night + 11 * HOUR, member="m1", group="g1"))
    [wait] = _waits(e)
    assert isinstance(wait, WaitTask)
    assert e.waits == {}
    task = next(a for a in e.log if a.kind == "task")
    assert wait.key == task.key
    e = _same_after_restore(e, plan)

    e.feed(Event("task_done", night + 12 * HOUR, member=None, data={"task": task.key}))
    assert _waits(e) == []  # the task done: the last send, and the flow ends
    assert [a.detail.get("template") for a in e.log if a.kind == "send"][-1] == "nudge"


# ---- a new wait type must fail mypy wherever waits are dispatched --------------------------------

# The dispatches over `Wait` that must stay exhaustive: (module, function).
REQUIRED = {("switching", "_rewait")}


def _wait_dispatches() -> dict[tuple[str, int], tuple[str, str]]:
    """Every `assert_never(<...>.waiting)` in the engine: (path, line) -> (module, function)."""
    return assert_never_sites(
        sorted(ENGINE.glob("*.py")),
        lambda call: bool(call.args) and ast.unparse(call.args[0]).endswith("waiting"),
    )


def _widen(source: str) -> str:
    """state.py with one more member in the `Wait` union."""
    union = re.compile(r"^Wait = (.+)$", re.M)
    assert len(union.findall(source)) == 1, "state.py no longer declares `Wait = A | B | ...`"
    added = (
        "@dataclass(frozen=True, slots=True)\n"
        "class AddedWait:\n"
        '    """A wait the engine has not been taught."""\n\n\n'
        r"Wait = AddedWait | \1"
    )
    return union.sub(added, source)


def test_mypy_reports_every_wait_dispatch_a_new_wait_type_would_miss(tmp_path: Path) -> None:
    sites = _wait_dispatches()
    missing = REQUIRED - set(sites.values())
    assert not missing, f"these dispatches over waits no longer end in assert_never: {sorted(missing)}"
    reported, output = reported_with_shadows({STATE: _widen(STATE.read_text(encoding="utf-8"))}, tmp_path)
    unreported = {site: where for site, where in sites.items() if site not in reported}
    assert not unreported, (
        "mypy let a new wait type through these dispatches (each must end in "
        f"`case _: assert_never(flow.waiting)`): {unreported}\n{output}"
    )


@pytest.mark.parametrize(
    "same", [(("team", "T1"),), (("order_id", "o-9"), ("amount", 30.0)), (("vip", True), ("note", None))]
)
def test_a_correlated_wait_keeps_the_values_it_matches_on_through_a_snapshot(
    same: tuple[tuple[str, str | float | bool | None], ...],
) -> None:
    flow = Flow(7, 0, -1, "m1", "g1", 3, "on event team_opened", T0, waiting=WaitEvent("custom:x", same))
    back = _flows_round_trip({7: flow})[7]
    assert back == flow and isinstance(back.waiting, WaitEvent)
    # What it accepts is what it did before: the event with those values, and no other.
    data = dict(same)
    assert back.waiting.accepts("custom:x", data)
    assert not back.waiting.accepts("custom:x", {**data, same[0][0]: "another"})
    assert not back.waiting.accepts("custom:y", data)
