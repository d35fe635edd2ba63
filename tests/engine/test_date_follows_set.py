"""A date trigger follows its attribute when a step sets it: `set member.renew_on = …` arms the
triggers reading `member.renew_on` for the new day, a timer armed for an earlier day does nothing,
a day set twice fires once, and a snapshot taken in between restores the same run."""

from __future__ import annotations

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan, timeutil

SHANGHAI = ZoneInfo("Asia/Shanghai")

PLAYBOOK = """
timezone "Asia/Shanghai"
attribute renew_on: date "续费日"
event renewal_moved "续费日变更" { day: date }
template renew_soon = "会员明天到期，记得续费"

playbook first_order "首单定续费日" {
    on member orders
    do: set member.renew_on = 2026-03-10
}

playbook moved "续费日变更" {
    on event renewal_moved
    repeat always
    do: set member.renew_on = event.day
}

playbook renew_reminder "续费提醒" {
    on 1 day before member.renew_on at 10:00
    repeat always
    do: send renew_soon to member
}
"""


def at(day: int, hour: int = 9) -> int:
    return timeutil.resolve(dt.datetime(2026, 3, day, hour, 0), SHANGHAI)


def plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(PLAYBOOK), "renew.sop")))


def engine(p: Plan) -> Engine:
    e = Engine(p, start=at(1))
    e.add_group("g1")
    e.add_member("m1", groups=["g1"])
    e.start()
    return e


def reminders(e: Engine) -> list[dt.datetime]:
    return [timeutil.local(a.time, SHANGHAI) for a in e.log if a.kind == "send" and a.member == "m1"]


def test_a_date_set_by_a_step_arms_the_trigger_reading_it() -> None:
    e = engine(plan())
    e.feed(Event("order", at(2), member="m1", group="g1", data={"amount": 80}))
    e.advance(at(20))
    assert reminders(e) == [dt.datetime(2026, 3, 9, 10, 0)]


def test_a_moved_date_fires_on_the_new_day_only() -> None:
    e = engine(plan())
    e.feed(Event("order", at(2), member="m1", group="g1", data={"amount": 80}))
    e.feed(Event("custom", at(3), member="m1", group="g1", name="renewal_moved", data={"day": "2026-03-15"}))
    e.advance(at(20))
    assert reminders(e) == [dt.datetime(2026, 3, 14, 10, 0)]  # not on the 9th as well


def test_a_day_set_again_after_another_fires_once() -> None:
    e = engine(plan())
    e.feed(Event("order", at(2), member="m1", group="g1", data={"amount": 80}))  # the 10th
    for n, day in enumerate(("2026-03-15", "2026-03-10"), start=3):
        e.feed(Event("custom", at(n), member="m1", group="g1", name="renewal_moved", data={"day": day}))
    e.advance(at(20))
    assert reminders(e) == [dt.datetime(2026, 3, 9, 10, 0)]


@pytest.mark.parametrize("cut", [1, 2])
def test_a_snapshot_between_the_set_and_its_day_restores_the_same_run(cut: int) -> None:
    p = plan()
    events = [
        Event("order", at(2), member="m1", group="g1", data={"amount": 80}),
        Event("custom", at(3), member="m1", group="g1", name="renewal_moved", data={"day": "2026-03-15"}),
    ]
    whole = engine(p)
    for event in events:
        whole.feed(event)
    whole.advance(at(20))

    first = engine(p)
    for event in events[:cut]:
        first.feed(event)
    second = Engine.restore(first.snapshot(), {p.content_hash: p}.__getitem__)
    for event in events[cut:]:
        second.feed(event)
    second.advance(at(20))
    assert reminders(second) == reminders(whole) == [dt.datetime(2026, 3, 14, 10, 0)]


def test_a_member_registered_again_with_a_new_date_is_reminded_on_the_new_day() -> None:
    """A bot syncing its members (`add_member`, the admin API) moves the date as a `set` does:
    the reminder comes before the new day, and not before the old one."""
    e = engine(plan())
    e.add_member("m1", attributes={"renew_on": "2026-03-10"})
    e.advance(at(4))
    e.add_member("m1", attributes={"renew_on": "2026-03-15"})
    e.advance(at(20))
    assert reminders(e) == [dt.datetime(2026, 3, 14, 10, 0)]


def test_a_member_registered_again_with_the_same_date_is_reminded_once() -> None:
    e = engine(plan())
    e.add_member("m1", attributes={"renew_on": "2026-03-10"})
    e.add_member("m1", attributes={"renew_on": "2026-03-10"})
    e.advance(at(20))
    assert reminders(e) == [dt.datetime(2026, 3, 9, 10, 0)]
