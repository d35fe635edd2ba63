"""One member record: every place that spells a member's fields derives them from `MemberRecord`.

What a bot developer notices: a field (the contact, the owner) given to the engine, the runtime,
a fixture or a timeline reaches the engine the same way; none of them drops it.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
from pathlib import Path

import pytest

import sopdsl
from sopdsl.dryrun import timeline, timeline_lines
from sopdsl.dryrun.fixtures import FixtureGroup, FixtureMember
from sopdsl.engine.engine import Engine
from sopdsl.engine.records import (
    FILE_KEYS,
    GROUP_ENTRY_KEYS,
    GROUP_FIELDS,
    JOURNAL_KEYS,
    MEMBER_FIELDS,
    MEMBER_FILE_FIELDS,
    GroupRecord,
    MemberRecord,
)
from sopdsl.engine.state import MemberState
from sopdsl.errors import FixtureError
from sopdsl.live.runtime import Runtime
from sopdsl.plan import Plan

BUSY = Path(__file__).parent.parent / "engine_cases" / "busy.sop"
FULL = MemberRecord(
    id="m1",
    name="阿花",
    nickname="花",
    tags=("lead", "vip"),  # sorted, as the journal keeps them
    attributes={"city": "杭州"},
    counters={"orders": 2.0},
    groups=("g1", "g2"),
    joined_at=1_772_000_000,
    referrer="m0",
    channel="poster",
    contact=True,
    owner="小美",
    group_joined_at={"g1": 1_700_000_000},
    group_last_message_at={"g1": 1_771_500_000},
    last_order_at=1_771_900_000,
)


def _keywords(function: object) -> list[str]:
    params = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    assert params[0].name == "self" and params[1].name == "member"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[2:])
    return [p.name for p in params[2:]]


def test_the_record_fields_are_the_single_list() -> None:
    assert MEMBER_FIELDS == tuple(f.name for f in dataclasses.fields(MemberRecord))
    assert MEMBER_FIELDS[0] == "id"
    # The keyword forms of the engine and the runtime take exactly the record's fields.
    assert _keywords(Engine.add_member) == list(MEMBER_FIELDS[1:])
    assert _keywords(Runtime.add_member) == list(MEMBER_FIELDS[1:])
    # Fixtures and timelines spell the same fields (a time where the record has epoch seconds).
    assert list(FixtureMember.model_fields) == list(MEMBER_FILE_FIELDS)
    assert timeline._MEMBER_FIELDS == set(MEMBER_FILE_FIELDS)
    assert set(MEMBER_FILE_FIELDS) <= set(timeline_lines._Line.__struct_fields__)
    assert set(FILE_KEYS) <= set(MEMBER_FIELDS) and set(JOURNAL_KEYS) <= set(MEMBER_FIELDS)
    # The journal body holds every field, and reads back as the same record.
    body = FULL.journal_body()
    assert list(body) == [JOURNAL_KEYS.get(name, name) for name in MEMBER_FIELDS]
    assert MemberRecord.from_journal(json.loads(json.dumps(body))) == FULL
    # The engine keeps every field but `contact`, which is its set of contacts.
    assert set(MEMBER_FIELDS) - {"contact"} <= {f.name for f in dataclasses.fields(MemberState)}


def test_the_group_record_fields_are_the_single_list() -> None:
    assert GROUP_FIELDS == tuple(f.name for f in dataclasses.fields(GroupRecord))
    assert list(FixtureGroup.model_fields) == list(GROUP_FIELDS)
    assert timeline._GROUP_FIELDS == set(GROUP_FIELDS)
    for function in (Engine.add_group, Runtime.add_group):
        params = list(inspect.signature(function).parameters)
        assert params[:2] == ["self", "group"] and params[2:] == list(GROUP_FIELDS[1:]), function
    group = FixtureGroup(
        id="g1", name="老群", tags=["vip"], timezone="Asia/Tokyo", operator="小美", owner="阿强"
    )
    record = group.record()
    assert dataclasses.asdict(record) == {**group.model_dump(), "tags": ("vip",)}
    body = json.loads(json.dumps(record.journal_body()))
    assert GroupRecord.from_journal(body) == record
    assert "timezone" in body and "zone" not in body


def test_a_fixture_member_and_a_timeline_line_give_the_same_record() -> None:
    fixture = FixtureMember(
        id="m1",
        name="阿花",
        nickname="花",
        tags=["lead", "vip"],
        attributes={"city": "杭州"},
        counters={"orders": 2},
        # the entry as a fixture file spells it, read by pydantic into a FixtureMembership
        groups=[{"id": "g1", "joined": "2023-11-15", "last_message": "2026-02-19"}, "g2"],  # type: ignore[list-item]
        joined="2026-02-25 14:13",
        referrer="m0",
        channel="poster",
        contact=True,
        owner="小美",
        last_order="2026-02-24",
    )
    assert FULL.joined_at is not None
    times = {
        "2026-02-25 14:13": FULL.joined_at,
        "2023-11-15": 1_700_000_000,
        "2026-02-19": 1_771_500_000,
        "2026-02-24": 1_771_900_000,
    }
    assert fixture.record(times.__getitem__) == FULL
    line = {FILE_KEYS.get(k, k): v for k, v in dataclasses.asdict(FULL).items() if k not in GROUP_ENTRY_KEYS}
    line["groups"] = [{"id": "g1", "joined": 1_700_000_000, "last_message": 1_771_500_000}, "g2"]
    header = {"sopdsl": "timeline", "timezone": "UTC", "start": 1_772_000_000, "end": 1_772_100_000}
    text = "\n".join(json.dumps(obj, ensure_ascii=False) for obj in (header, line)) + "\n"
    records = list(timeline.Timeline(io.BytesIO(text.encode()), "t.jsonl", "UTC").records())
    assert records == [FULL]


def busy_plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))


def test_a_record_and_the_keyword_form_register_the_same_member() -> None:
    plan = busy_plan()
    by_record, by_keywords = (Engine(plan, start=1_772_000_000) for _ in range(2))
    by_record.add_member(FULL)
    fields = dataclasses.asdict(FULL)
    by_keywords.add_member(fields.pop("id"), **fields)
    assert by_record.members["m1"] == by_keywords.members["m1"]
    assert by_record.members["m1"].owner == "小美"
    assert by_record.contacts == by_keywords.contacts == {"m1"}


def test_a_timeline_event_line_with_member_fields_is_refused() -> None:
    header = {"sopdsl": "timeline", "timezone": "UTC", "start": 1_772_000_000, "end": 1_772_100_000}
    event = {"at": 1_772_000_100, "kind": "message", "member": "m1", "group": "g1", "owner": "小美"}
    text = "\n".join(json.dumps(obj, ensure_ascii=False) for obj in (header, event)) + "\n"
    with pytest.raises(FixtureError, match="an event line has member fields"):
        list(timeline.Timeline(io.BytesIO(text.encode()), "t.jsonl", "UTC").records())
