"""Events at the door: the quick reading of everyday events gives exactly what the careful one gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sopdsl
from sopdsl.live import intake as door
from sopdsl.live.intake import EventError, intake
from sopdsl.plan import Plan

NOW = 1_772_294_400
CASES = Path(__file__).resolve().parents[1] / "engine_cases"


def plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "busy.sop"))))


PLAN = plan()

_text = st.one_of(
    st.sampled_from(["m1", "g_north", "会员", "\ud800", "", "x" * 3]),
    st.text(max_size=4),
)
_value = st.one_of(
    _text,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_events = st.dictionaries(
    st.sampled_from(["kind", "member", "group", "name", "id", "time", "data", "extra"]),
    st.one_of(
        st.sampled_from(["join", "message", "order", "leave", "tag", "rename", "custom", "nope"]),
        _value,
        st.dictionaries(st.sampled_from(["amount", "nickname", "task", "x"]), _value, max_size=3),
    ),
    max_size=7,
)


def _outcome(read: Any, raw: dict[str, Any]) -> Any:
    try:
        return read(raw, PLAN.declarations, NOW)
    except EventError as exc:
        return ("error", str(exc), exc.field)


@settings(max_examples=3000, deadline=None)
@given(_events)
def test_the_quick_reading_takes_an_event_only_as_the_careful_one_does(raw: dict[str, Any]) -> None:
    quick = _outcome(door._plain, raw)
    careful = _outcome(door._careful, raw)
    if quick is not None:
        assert quick == careful
    assert _outcome(intake, raw) == careful


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "join", "member": "m1", "group": "g_north", "id": "e1"},
        {"kind": "order", "member": "m1", "data": {"amount": 99}, "time": NOW - 5},
        {"kind": "message", "member": "小美", "group": "g_south"},
    ],
)
def test_everyday_events_take_the_quick_reading(raw: dict[str, Any]) -> None:
    quick = door._plain(raw, PLAN.declarations, NOW)
    assert quick is not None and quick == door._careful(raw, PLAN.declarations, NOW)


@pytest.mark.parametrize("event_id", ["", "   "])
def test_an_empty_event_id_is_refused_not_taken_as_an_id_every_later_event_repeats(event_id: str) -> None:
    # A bot sending "" for "no id" (Go's zero value) lost every event after its first, as duplicates.
    raw = {"kind": "join", "member": "m1", "group": "g_north", "id": event_id}
    with pytest.raises(EventError, match="'id' is empty") as refused:
        intake(raw, PLAN.declarations, NOW)
    assert refused.value.field == "id"
    rt = sopdsl.Runtime(PLAN, "memory://", dry_run=True)
    try:
        with pytest.raises(EventError):
            rt.feed(raw)
        assert list(rt.engine().members) == []  # nothing was stored
        rt.feed({**raw, "id": "e1"})
        assert list(rt.engine().members) == ["m1"]
    finally:
        rt.close()
