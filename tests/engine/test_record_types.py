"""The snapshot's table of record field types is the records' own annotations, field for field.

What a bot developer would notice if it broke: a field added to a member, group, flow, action or
wait but not to `record_types.RECORD_TYPES` would be written by the compiled engine under the
wrong type, or not at all, and a snapshot taken before a restart would not restore it.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

from sopdsl.engine import record_types
from sopdsl.engine.actions import Action
from sopdsl.engine.snapshot_schema import SNAPSHOT_FORMAT
from sopdsl.engine.state import WAIT_TYPES, Flow, GroupState, MemberState

RECORDS = (MemberState, GroupState, Flow, Action, *WAIT_TYPES)


# Read from the source's annotations, which a compiled class does not keep (see record_types).
@pytest.mark.source
@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_the_table_is_each_records_annotations_in_field_order(cls: type) -> None:
    declared = typing.get_type_hints(cls)
    table = record_types.RECORD_TYPES[cls]
    assert list(table) == [f.name for f in dataclasses.fields(cls)]
    assert table == {f.name: declared[f.name] for f in dataclasses.fields(cls)}


def test_every_record_the_snapshot_keeps_is_in_the_table() -> None:
    assert set(record_types.RECORD_TYPES) == set(RECORDS)


@pytest.mark.source
def test_a_dataclass_outside_the_table_is_typed_by_its_annotations() -> None:
    @dataclasses.dataclass
    class Other:
        count: int
        names: list[str]

    assert record_types.field_types(Other) == {"count": int, "names": list[str]}


def test_the_snapshot_format_has_not_moved() -> None:
    # The shape hash before the table, compiled or not: a snapshot written by either restores into
    # the other (a moved hash would make every service replay its journal on its next restart).
    assert SNAPSHOT_FORMAT == "753fe3e2f43c3d81"


# The records whose `__init__` is written out (compiled, a dataclass's own stays interpreted).
WRITTEN_INIT = (Action, Flow, MemberState)


@pytest.mark.source
@pytest.mark.parametrize("cls", WRITTEN_INIT, ids=lambda cls: cls.__name__)
def test_a_written_init_takes_the_fields_in_order(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]  # the class's own __init__, read off the class
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(cls)]
    for param, f in zip(params, dataclasses.fields(cls), strict=True):
        if f.default is not dataclasses.MISSING:
            assert param.default == f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert param.default is None, f.name  # None stands for a new value of the factory
        else:
            assert param.default is inspect.Parameter.empty, f.name


@pytest.mark.parametrize("cls", WRITTEN_INIT, ids=lambda cls: cls.__name__)
def test_a_record_made_with_its_required_fields_has_the_declared_defaults(cls: type) -> None:
    fields = dataclasses.fields(cls)
    required = [
        f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    samples = {int: 7, str: "x", str | None: "y", int | None: 3}
    types = record_types.RECORD_TYPES[cls]
    one, two = (
        cls(*[samples[types[f.name]] for f in required]),
        cls(*[samples[types[f.name]] for f in required]),
    )
    for f in fields:
        if f in required:
            assert getattr(one, f.name) == samples[types[f.name]]
        elif f.default_factory is not dataclasses.MISSING:
            assert getattr(one, f.name) == f.default_factory()
            assert getattr(one, f.name) is not getattr(two, f.name), f"{f.name} is shared between records"
        else:
            assert getattr(one, f.name) == f.default, f.name


def test_an_action_s_fields_are_every_field_and_make_it_again() -> None:
    # The outbox keeps an action as these fields and makes it again from them for its executor:
    # a field left out would reach the executor as its default.
    action = Action(
        7, "send", "welcome", "k1", "m1", "g1", "group", {"template": "hi", "text": "你好"},
        "deferred", "quiet hours", "a.sop:3:5", "e:1", 3,
    )  # fmt: skip
    fields = action.fields()
    assert list(fields) == [f.name for f in dataclasses.fields(Action)]
    assert Action(**fields) == action
    fields["detail"]["text"] = "changed"
    assert action.detail["text"] == "你好"  # a copy: the row's dict is its own
