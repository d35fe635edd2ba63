"""The snapshot codec refuses what does not fit (malformed, truncated, foreign and ill-typed blobs,
values it cannot write) and keeps the types of values of any kind."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import logging
import pickle
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livestores import timeline
from test_runtime_snapshot import Keys, busy_plan, drive, open_runtime
from test_snapshot_safety import HEADER, _types

from sopdsl.engine import snapshot as codec
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.snapshot import MAGIC
from sopdsl.engine.snapshot_schema import SNAPSHOT_FORMAT
from sopdsl.engine.state import Flow, GroupState, MemberState
from sopdsl.errors import EngineError, PlanError
from sopdsl.plan import Plan

# ---- malformed, truncated, foreign and ill-typed blobs are refused --------------------------------------


@functools.cache
def _small() -> tuple[bytes, dict[str, Plan]]:
    plan = busy_plan()
    line = timeline(9, 60)
    engine = Engine(plan, start=line["start"], seed=3)
    for group in line["groups"]:
        engine.add_group(group["id"], tags=group.get("tags", ()))
    for member in line["members"]:
        engine.add_member(member["id"], groups=member["groups"], tags=member["tags"])
    for body in line["events"]:
        engine.feed(
            Event(body["kind"], body["time"], body.get("member"), body.get("group"), body.get("data") or {})
        )
    assert engine.flows and engine.heap and engine.entered
    return engine.snapshot(), {plan.content_hash: plan}


def _plans(hash_: str) -> Plan:
    plans = _small()[1]
    if hash_ not in plans:
        raise PlanError(f"no plan {hash_[:12]}")
    return plans[hash_]


def _document() -> dict[str, Any]:
    """The small snapshot's body as plain msgpack data (extensions kept as they are)."""
    body = msgspec.msgpack.decode(_small()[0][HEADER:])
    assert isinstance(body, dict)
    return body


def _blob(body: Any, header: bytes | None = None) -> bytes:
    return (header if header is not None else _small()[0][:HEADER]) + msgspec.msgpack.encode(body)


def _refused(blob: bytes, match: str = "engine snapshot") -> str:
    with pytest.raises(EngineError, match=match) as info:
        Engine.restore(blob, _plans)
    return str(info.value)


def test_the_small_snapshot_restores() -> None:
    blob = _small()[0]
    assert Engine.restore(blob, _plans).snapshot() == blob
    assert Engine.restore(_blob(_document()), _plans).snapshot() == blob


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step(target) if callable(step) else step]
        last = path[-1]
        target[last if not callable(last) else last(target)] = value

    return change


def _small_plan_hash() -> str:
    return next(iter(_small()[1]))


def _first(container: Any) -> Any:
    return next(iter(container))


ILL_TYPED: dict[str, Callable[[dict[str, Any]], None]] = {
    "a member's tag is an int": _set(("members", _first, 9), ["core", 7]),
    "a member's tags are a map": _set(("members", _first, 9), {"core": 1}),
    "a member record lacks a field": lambda b: b["members"][next(iter(b["members"]))].pop(),
    "a member record has a field more": lambda b: b["members"][next(iter(b["members"]))].append(1),
    "a member is a map of fields": _set(("members", _first), {"id": "x"}),
    "a member's join time is a string": _set(("members", _first, 5), "yesterday"),
    "a flow id is a string": lambda b: b["flows"].update({"1": b["flows"][next(iter(b["flows"]))]}),
    "a flow's token is a float": _set(("flows", _first, 11), 1.5),
    "a flow's event has a bytes value": _set(("flows", _first, 8), {"x": b"\x00"}),
    "a group's zone is a path": _set(("groups", _first, 2), "../../../../etc/passwd"),
    "a group's zone is unknown": _set(("groups", _first, 2), "Mars/Olympus_Mons"),
    "a group's zone is an int": _set(("groups", _first, 2), 8),
    "a timer of an unknown kind": lambda b: b["heap"].append([1, 0, "m", "", 10**6, 99, 1]),
    "a timer with a payload too many": lambda b: b["heap"][0].append(1),
    "a timer due at a string": _set(("heap", 0, 0), "soon"),
    "a delivery timer holding a map, not an action": lambda b: b["heap"].append(
        [1, 0, "m", "", 10**6, 6, {"kind": "send"}, [1, 1]]
    ),
    "two timers with one sequence number": lambda b: b["heap"].append(list(b["heap"][0])),
    "a timer of a playbook the plan lacks": lambda b: b["heap"].append([1, 999, "m", "", 10**6, 2, 0]),
    "a fired key is a map": _set(("fired",), [{"size": 1}]),
    "an entered key is a string": _set(("entered",), [["1,m", 5]]),
    "an entered key has three items": _set(("entered",), [[[1, "m", 2], 5]]),
    "waits holds a set of strings": _set(("waits",), {"m": ["1"]}),
    "a contact is None": _set(("contacts",), [None]),
    "the clock is a float": _set(("now",), 1.0),
    "the clock is a bool": _set(("now",), True),
    "the plan hash is an int": _set(("plan",), 5),
    "a retired playbook's place is out of range": _set(("retired",), [[_small_plan_hash(), 999]]),
    "an armed trigger the plan lacks": _set(("armed",), [[[99, 99], {"m": 1}]]),
    "a key is missing": lambda b: b.pop("heap"),
    "a key too many": _set(("__reduce__",), "os.system"),
    "the document is an array": lambda b: b.clear(),
}


@pytest.mark.parametrize("case", ILL_TYPED)
def test_a_document_with_unexpected_types_is_refused(case: str) -> None:
    body = _document()
    ILL_TYPED[case](body)
    blob = _blob(body if body else [1, 2])
    message = _refused(blob, "unreadable engine snapshot")
    assert "Traceback" not in message


def test_an_unknown_extension_or_a_bad_big_int_is_refused() -> None:
    body = _document()
    member = body["members"][next(iter(body["members"]))]
    member[10] = {"x": msgspec.msgpack.Ext(42, b"os.system('touch x')")}  # attributes
    _refused(_blob(body), "unknown extension type 42")
    member[10] = {"x": msgspec.msgpack.Ext(5, msgspec.msgpack.encode("1e9999"))}
    _refused(_blob(body), "bad big int")
    member[10] = {"x": msgspec.msgpack.Ext(1, b"\xc1")}  # a tuple whose items are not msgpack
    _refused(_blob(body), "unreadable engine snapshot")


def test_the_header_says_what_is_wrong() -> None:
    blob = _small()[0]
    version = len(MAGIC)
    assert "(pickle" in _refused(pickle.dumps({"now": 1}))
    assert "not a sopdsl engine snapshot" in _refused(b"PK\x03\x04 a zip file")
    assert "not a sopdsl engine snapshot" in _refused(b"")
    assert "truncated header" in _refused(MAGIC + b"\x00")
    older = blob[:version] + (0).to_bytes(2, "big") + blob[version + 2 :]
    assert "older format (codec version 0" in _refused(older)
    newer = blob[:version] + (codec.CODEC_VERSION + 1).to_bytes(2, "big") + blob[version + 2 :]
    assert "newer format" in _refused(newer)
    other = blob[: version + 2] + b"ffffffffffffffff" + blob[HEADER:]
    assert f"format ffffffffffffffff, not {SNAPSHOT_FORMAT}" in _refused(other)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_saying_why(data: bytes) -> None:
    why = _refused(data)
    if data[:1] == b"\x80":
        assert "older format (pickle" in why
    elif data.startswith(MAGIC):
        assert "unreadable engine snapshot" in why or "format" in why
    else:
        assert "not a sopdsl engine snapshot" in why
    assert "unreadable engine snapshot" in _refused(_small()[0][:HEADER] + data)


@FAST
@given(st.data())
def test_a_truncated_snapshot_is_refused(data: st.DataObject) -> None:
    blob = _small()[0]
    _refused(blob[: data.draw(st.integers(0, len(blob) - 1))])


@FAST
@given(st.data())
def test_a_damaged_snapshot_is_refused_or_restores_never_anything_else(data: st.DataObject) -> None:
    blob = bytearray(_small()[0])
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(HEADER, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        Engine.restore(bytes(blob), _plans)
    except (EngineError, PlanError):
        pass  # what the live runtime catches: it replays the journal


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3))


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    _nested,
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):  # the first few of each array
            found += _paths(item, (*path, index))
    return found


@FAST
@given(st.data())
def test_a_document_with_a_value_of_another_type_anywhere_is_refused_or_fits(data: st.DataObject) -> None:
    body = _document()
    paths = _paths(body)
    path = data.draw(st.sampled_from(paths))
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    before = target[path[-1]]
    after = data.draw(PLAIN.filter(lambda v: type(v) is not type(before)))
    target[path[-1]] = after
    try:
        restored = Engine.restore(_blob(body), _plans)
    except (EngineError, PlanError):
        return
    # It fit the declared types (None where a field is optional, any plain value in an
    # attribute or an action's details): what was read is what a snapshot writes again.
    assert Engine.restore(restored.snapshot(), _plans).snapshot() == restored.snapshot()
    assert not isinstance(after, bytes)  # the codec never accepts msgpack bin data


# ---- values of any type, records of any fields ----------------------------------------------------------


def test_attribute_and_event_values_keep_their_types_through_a_snapshot() -> None:
    plan = busy_plan()
    engine = Engine(plan, start=0)
    values: dict[str, Any] = {
        "text": "x",
        "int": 3,
        "float": 3.0,
        "bool": True,
        "none": None,
        "big": 2**70,
        "negative big": -(2**70),
        "tuple": (1, "a", (2.5, None)),
        "list of tuples": [(1, 2), [3, (4,)]],
        "date": dt.date(1990, 5, 1),
        "datetime": dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC),
        "naive datetime": dt.datetime(2026, 3, 1, 8, 30, 15, 120),
        "time": dt.time(8, 30),
        "int keys": {1: "a", (2, "b"): [None]},
        "nested": {"a": {"b": [1, 2.0, "3", {"c": (True,)}]}},
        "nan": float("inf"),
    }
    engine.add_member("m1", attributes=values, counters={"points": 2, "spent": 9.5})
    restored = Engine.restore(engine.snapshot(), {plan.content_hash: plan}.__getitem__)
    got = restored.members["m1"]
    assert got.attributes == values
    assert _types(got.attributes) == _types(values)
    assert _types(got.counters) == _types(engine.members["m1"].counters)
    assert restored.snapshot() == engine.snapshot()


def test_a_value_the_codec_cannot_write_fails_the_snapshot_clearly_and_the_runtime_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = busy_plan()
    engine = Engine(plan, start=0)
    engine.add_member("m1", attributes={"handle": object()})
    with pytest.raises(EngineError, match=r"cannot snapshot the engine: MemberState.attributes: .*object"):
        engine.snapshot()

    line = timeline(10, 30)
    keys = Keys()
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        rt, clock = open_runtime("memory://", line, keys, snapshot_every=5)
        # Journal entries are JSON, so no such value comes in through the runtime: put one in its engine.
        rt._shards.held["default"].engine.add_member("m1", attributes={"handle": object()})
        drive(rt, clock, line, line["events"])
    assert rt.store.load_snapshot("default") is None
    assert any("no snapshot taken: cannot snapshot the engine" in r.getMessage() for r in caplog.records)
    rt.close()


class Unit(enum.Enum):
    DAY = "day"
    WEEK = "week"


def test_a_field_added_to_a_record_is_written_and_read_by_its_type() -> None:
    # Another change adds fields to Flow or Action: the codec goes by dataclass fields, so a new
    # field just works (and changes the shape, so older snapshots are replayed instead).
    record = dataclasses.make_dataclass(
        "Record",
        [
            ("id", int),
            ("labels", set[str], dataclasses.field(default_factory=set)),
            ("pairs", dict[tuple[int, str], list[int]], dataclasses.field(default_factory=dict)),
            ("hold", tuple[int, str] | None, None),
            ("extra", dict[str, Any], dataclasses.field(default_factory=dict)),
            ("zone", ZoneInfo | None, None),
            ("recent", deque[int], dataclasses.field(default_factory=deque)),
            ("action", Action | None, None),
            ("status", Literal["open", "closed"], "open"),
            ("unit", Unit | None, None),
        ],
    )
    schema = {"records": dict[int, record], "flow": Flow}  # type: ignore[valid-type]  # a class made at run time
    value = {
        "records": {
            1: record(1),
            2: record(
                2,
                {"b", "a"},
                {(1, "x"): [3]},
                (4, "y"),
                {"t": (1,)},
                ZoneInfo("Asia/Shanghai"),
                deque([5, 6]),
                Action(1, "send", "pb", "k", detail={"template": "hi"}),
                "closed",
                Unit.DAY,
            ),
        },
        "flow": Flow(1, 0, -1, "m", None, 0, "join", 0, event={"n": 1}),
    }
    shape = "0" * 16
    blob = codec.encode(value, schema, shape)
    assert codec.decode(blob, schema, shape) == value
    assert codec.encode(codec.decode(blob, schema, shape), schema, shape) == blob
    body = msgspec.msgpack.decode(blob[HEADER:])
    body["records"]["2"] = body["records"].pop(2)  # a record keyed by a string, not an int
    with pytest.raises(EngineError, match="map key"):
        codec.decode(blob[:HEADER] + msgspec.msgpack.encode(body), schema, shape)
    for field, wrong in [(3, [4, 5]), (8, "ajar"), (9, "fortnight"), (9, 1)]:  # hold, status, unit
        body = msgspec.msgpack.decode(blob[HEADER:])
        body["records"][2][field] = wrong
        with pytest.raises(EngineError, match=r"Record\.(hold|status|unit)"):
            codec.decode(blob[:HEADER] + msgspec.msgpack.encode(body), schema, shape)


def test_a_state_type_the_codec_has_no_encoding_for_is_named() -> None:
    with pytest.raises(EngineError, match="engine snapshots cannot hold"):
        codec.encode({"x": b""}, {"x": bytes}, "0" * 16)
    with pytest.raises(EngineError, match="a time zone without a name"):
        codec.encode(
            {"g": GroupState("g", "g", ZoneInfo.no_cache("UTC").__class__.from_file(_utc()))},
            {"g": GroupState},
            "0" * 16,
        )
    member = MemberState("m", tags=frozenset({"b", "a"}), windows={"message": deque([1, 2])})
    blob = codec.encode({"m": member}, {"m": MemberState}, "0" * 16)
    assert codec.decode(blob, {"m": MemberState}, "0" * 16) == {"m": member}


def _utc() -> Any:
    import io
    import zoneinfo

    for root in zoneinfo.TZPATH:
        path = Path(root) / "UTC"
        if path.exists():
            return io.BytesIO(path.read_bytes())
    pytest.skip("no UTC zone file")
