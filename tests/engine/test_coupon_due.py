"""`set member.coupon_due = coupon.expires_at` in the engine: the day the flow's coupon expires, in
the group's zone, whether a message quoted the coupon first or not; a grant that did not go out is
a failed `set`; a coupon that never expires unsets the day; the plan and a snapshot keep it all."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import sopdsl
from sopdsl import lang
from sopdsl.dryrun.testing import run_tests
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan, loads, timeutil

CASES = Path(__file__).parent.parent / "engine_cases"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 9, minute: int = 0) -> int:
    return timeutil.resolve(dt.datetime(2026, 3, day, hour, minute), SHANGHAI)


def case_plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "coupon_due.sop"))))


def case_engine(plan: Plan) -> Engine:
    engine = Engine(plan, start=at(2))
    engine.add_group("g1")
    engine.start()
    return engine


def test_the_engine_case_reminds_the_day_before_the_coupon_expires() -> None:
    report = run_tests([CASES / "coupon_due.yaml"])
    assert report.exit_code == 0, "\n".join(report.lines())
    assert report.passed == 9


def test_the_day_kept_is_the_coupons_local_expiry_quoted_first_or_not() -> None:
    engine = case_engine(case_plan())
    engine.feed(Event("join", at(2, 23, 30), member="m1", group="g1"))  # sent `got`, then set
    engine.feed(Event("tag", at(3, 12), member="m2", name="comeback"))  # set, nothing quoted it
    assert engine.members["m1"].attributes["coupon_due"] == "2026-03-09"  # 23:30 in Shanghai
    assert engine.members["m2"].attributes["coupon_due"] == "2026-03-17"


def test_a_grant_that_did_not_go_out_is_a_failed_set_and_keeps_the_day_set_before() -> None:
    engine = case_engine(case_plan())
    for n, member in enumerate(("a", "b", "c"), start=10):
        engine.feed(Event("join", at(2, n), member=member, group="g1"))
    engine.feed(Event("tag", at(3, 12), member="d", name="comeback"))  # 17 March
    engine.feed(Event("join", at(4, 10), member="d", group="g1"))  # new50 is out of stock
    (failed,) = [a for a in engine.log if a.kind == "set"]
    assert (failed.member, failed.status) == ("d", "failed")
    assert failed.reason is not None and "no coupon was granted in this flow" in failed.reason
    assert engine.members["d"].attributes["coupon_due"] == "2026-03-17"


def test_a_coupon_that_never_expires_unsets_the_day_and_calls_the_reminder_off() -> None:
    plan = sopdsl.compile_program(
        sopdsl.check(
            sopdsl.load_text(
                textwrap.dedent(
                    """
                    timezone "Asia/Shanghai"
                    attribute coupon_due: date
                    coupon week "周券" valid for 7 days
                    coupon forever "长期券"
                    template due_soon = "券明天到期"
                    playbook first { on member joins
                        do { grant week to member  set member.coupon_due = coupon.expires_at } }
                    playbook second { on member orders
                        do { grant forever to member  set member.coupon_due = coupon.expires_at } }
                    playbook remind { on 1 day before member.coupon_due at 10:00
                        do: send due_soon to member }
                    """
                ),
                "forever.sop",
            )
        )
    )
    engine = case_engine(plan)
    engine.feed(Event("join", at(2, 10), member="m1", group="g1"))
    engine.feed(Event("order", at(3, 10), member="m1", group="g1", data={"amount": 10}))
    engine.advance(at(20))
    assert engine.members["m1"].attributes["coupon_due"] is None
    assert [a for a in engine.log if a.kind == "send"] == []


def test_the_plan_keeps_the_coupon_field_a_set_reads() -> None:
    plan = case_plan()
    again = loads(plan.dumps())
    assert again == plan
    reads = [
        i.action.value
        for pb in again.playbooks
        for i in pb.code
        if isinstance(i.action, lang.SetStep) and i.action.attribute == "coupon_due"
    ]
    assert reads == [lang.CouponField(field="expires_at", type=lang.ValueType.DATETIME)] * 2


def test_a_snapshot_between_the_grant_and_the_reminder_restores_the_same_run() -> None:
    plan = case_plan()
    events = [
        Event("join", at(2, 14, 30), member="m1", group="g1"),
        Event("tag", at(3, 12), member="m1", name="comeback"),
    ]
    whole = case_engine(plan)
    for event in events:
        whole.feed(event)
    whole.advance(at(25))

    first = case_engine(plan)
    first.feed(events[0])
    second = Engine.restore(first.snapshot(), {plan.content_hash: plan}.__getitem__)
    second.feed(events[1])
    second.advance(at(25))
    sent = [(a.time, a.detail.get("text")) for a in second.log if a.kind == "send" and a.time > at(3)]
    assert sent == [(at(16, 10), "你的优惠券明天就到期了（2026-03-17），别浪费哦")]
    assert sent == [(a.time, a.detail.get("text")) for a in whole.log if a.kind == "send" and a.time > at(3)]
