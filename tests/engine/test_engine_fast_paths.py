"""The engine's fast paths hold to what the slow ones did: a calendar's firing worked out once an
instant for every group, the event kinds checked inline, and the log's JSONL writer."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import pytest
from test_engine import CLASS_REMINDER, at, compile_text

from sopdsl.engine.actions import Action, json_lines
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event


def test_a_calendar_fires_at_each_groups_own_noon_and_each_plans_own_time() -> None:
    # The next firing is worked out once an instant for all groups alike (`_next_calendar`): a
    # group in another zone, and another plan whose calendar has the same name, get their own.
    london = ZoneInfo("Europe/London")
    engine = Engine(compile_text(CLASS_REMINDER), start=at("2026-03-01 09:00"))
    engine.add_group("g1", tags=["class"])
    engine.add_group("g2", tags=["class"], timezone="Europe/London")
    engine.add_group("g3", tags=["class"])
    engine.advance(at("2026-03-03 00:00"))
    sends = [(a.group, a.time) for a in engine.log if a.kind == "send"]
    assert sends == [
        ("g1", at("2026-03-01 12:00")),
        ("g3", at("2026-03-01 12:00")),
        ("g2", at("2026-03-01 12:00", london)),
        ("g1", at("2026-03-02 12:00")),
        ("g3", at("2026-03-02 12:00")),
        ("g2", at("2026-03-02 12:00", london)),
    ]
    evening = Engine(compile_text(CLASS_REMINDER.replace("12:00", "20:00")), start=at("2026-03-01 09:00"))
    evening.add_group("g1", tags=["class"])
    evening.advance(at("2026-03-02 00:00"))
    assert [a.time for a in evening.log if a.kind == "send"] == [at("2026-03-01 20:00")]


def test_the_kinds_checked_inline_are_those_that_need_only_a_member() -> None:
    # `feed_all` skips `validate` for these kinds when the event has a member and data: each must
    # be one `validate` passes then, and the kinds needing more are still refused.
    from sopdsl.engine.events import KINDS, BadEventError, validate
    from sopdsl.engine.parts import _MEMBER_ONLY

    assert {"message", "join", "leave", "order"} <= _MEMBER_ONLY
    for kind in _MEMBER_ONLY:
        validate(Event(kind, 10, member="m1", group="g1", data={}))
    engine = Engine(compile_text(CLASS_REMINDER), start=0)
    for kind in sorted(set(KINDS) - _MEMBER_ONLY - {"task_done"}):
        with pytest.raises(BadEventError):
            engine.feed(Event(kind, 10, member="m1", group="g1", data={}))
    with pytest.raises(BadEventError, match="needs a member"):
        engine.feed(Event("join", 10, member=None, group="g1", data={}))


def test_the_jsonl_writer_sorts_keys_and_writes_what_msgspec_cannot_in_the_standard_form() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    out = io.BytesIO()
    line = json_lines(out.write, ZoneInfo("Asia/Shanghai"))
    line(Action(0, "tag", "p", "k1", member="m1", detail={"tags": ["新人"]}))
    line(Action(60, "call", "p", "k2", member="m1", detail={"action": "crm", "args": {"z": 1, "a": Odd()}}))
    first, second = out.getvalue().decode().splitlines()
    assert first == (
        '{"at":"1970-01-01T08:00:00+08:00","group":null,"key":"k1","kind":"tag","member":"m1",'
        '"playbook":"p","status":"done","tags":["新人"],"target":"member"}'
    )
    assert second.startswith(
        '{"action": "crm", "args": {"a": "odd", "z": 1}, "at": "1970-01-01T08:01:00+08:00"'
    )
