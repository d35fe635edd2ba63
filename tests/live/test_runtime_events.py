"""Events and members the live runtime takes in: bad events refused clearly with nothing lost,
times and event objects, member text as data, queued events, members' attributes, members
registered while running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import DAY, START, Recorder, join, plan_of, runtime
from runtime_helpers import each_store as each_store  # the `url` fixture: each store

import sopdsl
from sopdsl.live.intake import EventError
from sopdsl.live.runtime import ManualClock

BAD_EVENTS = [
    ({"kind": "dance", "member": "m1"}, "kind", r"unknown event kind 'dance'"),
    ({"kind": "tag", "member": "m1"}, "name", r"a tag event needs a name"),
    ({"kind": "message"}, "member", r"a message event needs a member"),
    ({"member": "m1"}, "kind", r"'kind': field required"),
    ({"kind": "message", "member": 42}, "member", r"'member': input should be a valid string"),
    ({"kind": "message", "member": "m1", "colour": "红"}, "colour", r"unknown event field 'colour'"),
    ({"kind": "order", "member": "m1", "data": {"amount": "很多"}}, "data.amount", r"should be number"),
    (
        {"kind": "custom", "member": "m1", "name": "dance"},
        "name",
        r"unknown custom event 'dance'.*share_photo",
    ),
    (
        {"kind": "custom", "member": "m1", "name": "share_photo", "data": {"image": "a.jpg"}},
        "data.likes",
        r"needs data field 'likes' \(number\)",
    ),
    (
        {"kind": "custom", "member": "m1", "name": "share_photo", "data": {"image": 3, "likes": 1}},
        "data.image",
        r"'data.image' should be text, got 3",
    ),
    ({"kind": "message", "member": "m1", "time": "昨天"}, "time", r"not epoch seconds or an ISO 8601 time"),
    (
        {"kind": "message", "member": "m1", "time": START + 3 * DAY + 3600},
        "time",
        r"ahead of the runtime's clock",
    ),
    (
        {"kind": "message", "member": "m1", "time": START + 2 * DAY},
        "time",
        r"86400 s before the engine's clock",
    ),
    ({"kind": "task_done", "data": {}}, "data.task", r"needs data.task"),
    ({"kind": "message", "member": "m1", "time": START * 1000}, "time", r"looks like milliseconds"),
    ({"kind": "message", "member": "m1", "time": True}, "time", r"'time' should be epoch seconds .*got true"),
]


@pytest.mark.parametrize(("event", "field", "message"), BAD_EVENTS)
def test_bad_events_are_refused_clearly_and_nothing_is_lost(
    event: dict[str, Any], field: str, message: str, tmp_path: Path
) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START, "张三"))
    clock.set(START + DAY)
    rt.feed(join("m2", START + DAY, "李四"))
    clock.set(START + 3 * DAY)
    rt.tick()  # m1's farewell: the engine's clock is now three days on
    journal = rt.store.journal("default")
    with pytest.raises(EventError, match=message) as info:
        rt.feed(event)
    assert info.value.field == field
    assert rt.store.journal("default") == journal
    # The runtime carries on: the next good event works, the pending timer still fires.
    assert [a.detail["template"] for a in rt.feed({"kind": "message", "member": "m1", "group": "g1"})] == [
        "thanks"
    ]
    clock.set(START + 4 * DAY)
    rt.tick()
    assert recorder.texts() == ["欢迎 张三", "欢迎 李四", "三天了，张三", "谢谢发言", "三天了，李四"]
    rt.close()


def test_a_late_or_early_event_is_refused_with_times_a_person_reads() -> None:
    clock = ManualClock(START)  # 2026-03-01 10:00 in Shanghai
    rt = runtime("memory://", clock, Recorder(clock))
    rt.feed(join("m1", START))
    with pytest.raises(EventError) as late:
        rt.feed({"kind": "message", "member": "m1", "group": "g1", "time": START - 1390})
    assert str(late.value) == (
        f"event time {START - 1390} (2026-03-01T09:36:50+08:00) is 1390 s before the engine's clock "
        "(23 min 10 s; the engine is at 2026-03-01T10:00:00+08:00), more than the 300 s allowed: what "
        "it would have changed has already happened"
    )
    with pytest.raises(EventError) as early:
        rt.feed({"kind": "message", "member": "m1", "group": "g1", "time": "2026-03-01T18:00:00"})
    assert str(early.value) == (
        f"event time {START + 8 * 3600} (2026-03-01T18:00:00+08:00) is 28800 s ahead of the runtime's "
        "clock (8 h; the runtime is at 2026-03-01T10:00:00+08:00), more than the 300 s allowed: check "
        "the sender's clock or time zone"
    )


def test_an_event_that_is_not_an_object_is_refused() -> None:
    rt = runtime("memory://", ManualClock(START), Recorder())
    with pytest.raises(EventError, match="an event must be an object, got list"):
        rt.feed(["join"])  # type: ignore[arg-type]


def test_iso_times_and_event_objects_are_accepted() -> None:
    clock = ManualClock(START)
    rt = runtime("memory://", clock, Recorder())
    clock.set(START + 60)
    [a] = rt.feed({"kind": "join", "member": "m1", "group": "g1", "time": "2026-03-01 10:00"})
    assert a.time == START
    [b] = rt.feed(sopdsl.Event("message", START + 30, member="m1", group="g1"))
    assert b.time == START + 30
    [c] = rt.feed({"kind": "message", "member": "m1", "group": "g1"})  # no time: the clock's
    assert c.time == START + 60
    # A float, as Python's time.time() gives, is taken to the second.
    assert [
        a.kind for a in rt.feed({"kind": "message", "member": "m1", "group": "g1", "time": START + 59.75})
    ] == ["send"]


def test_member_named_like_template_code_is_greeted_literally(tmp_path: Path) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START, "{{ 7*7 }}"))
    rt.tick()
    rt.close()
    # And after a restart, rebuilt from the journal, the name is still only a name.
    clock.set(START + 3 * DAY)
    again = runtime(url, clock, recorder)
    again.tick()
    assert recorder.texts() == ["欢迎 {{ 7*7 }}", "三天了，{{ 7*7 }}"]
    again.close()


def test_enqueued_events_are_applied_by_the_next_tick(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(START)
    recorder = Recorder(clock)
    front = runtime(url, clock, recorder)
    assert front.enqueue(join("m1", START, "张三")) is True
    assert front.enqueue({**join("m1", START, "张三"), "id": "j1"}) is True
    assert front.enqueue({**join("m1", START, "张三"), "id": "j1"}) is False
    with pytest.raises(EventError, match="ahead of the runtime's clock"):
        front.enqueue(join("m2", START + DAY))
    assert recorder.calls == []
    [welcome] = front.tick()
    assert welcome.detail["text"] == "欢迎 张三"
    assert recorder.texts() == ["欢迎 张三"]
    front.close()


def test_members_attributes_are_stored_as_a_replay_sees_them(tmp_path: Path) -> None:
    import datetime as dt

    from sopdsl.errors import EngineError

    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, ManualClock(START), Recorder())
    rt.add_member("m1", groups=["g1"], attributes={"birthday": dt.date(1990, 5, 1), "level": 3})
    assert rt.engine().members["m1"].attributes == {"birthday": "1990-05-01", "level": 3}
    with pytest.raises(EngineError, match="member 'm2': object is not JSON data"):
        rt.add_member("m2", attributes={"x": object()})
    rt.close()
    again = runtime(url, ManualClock(START), Recorder())
    assert again.engine().members["m1"].attributes == {"birthday": "1990-05-01", "level": 3}
    assert "m2" not in again.engine().members
    again.close()


def test_a_member_registered_while_running_counts_silent_from_then(url: str) -> None:
    plan = plan_of(
        """
        timezone "Asia/Shanghai"
        template nudge = "好久不见"
        playbook quiet {
            on member silent for 7 days
            do { send nudge to member }
        }
        """
    )
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder, plan=plan)
    rt.feed(join("m1", START))
    clock.set(START + 8 * DAY)
    rt.tick()  # m1 nudged at day 7; no timer is left, so the engine's clock stays there
    clock.set(START + 10 * DAY)
    rt.add_member("late", groups=["g1"])  # a bot syncing its member list
    clock.set(START + 30 * DAY)
    rt.tick()
    assert [(row.action["time"] - START) // DAY for row in rt.store.outbox()] == [7, 17]
    rt.close()
