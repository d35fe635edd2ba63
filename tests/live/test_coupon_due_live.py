"""`set member.coupon_due = coupon.expires_at` and the reminder the day before, live: the runtime
on each store decides what the dry run decides (tests/engine_cases/coupon_due.yaml), and one
stopped after the grants and opened again on its store (journal, snapshot) reminds once, on the day
the last grant set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from livestores import as_the_engine_decided, fixture_events, fixture_setup, read_fixture, store_url
from runtime_helpers import CASES, Recorder

import sopdsl
from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.engine.actions import Action
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.plan import Plan, timeutil

FIXTURE = CASES / "coupon_due.yaml"


def _plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "coupon_due.sop"))))


def _runtime(plan: Plan, url: str, clock: ManualClock, recorder: Recorder, **options: Any) -> Runtime:
    return Runtime(plan, url, executors=recorder.executors(), clock=clock, **options)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_live_runtime_reminds_as_the_dry_run_does(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    plan, fixture = _plan(), read_fixture(FIXTURE)
    zone = fixture.timezone or plan.declarations.timezone
    tz = timeutil.zone(zone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert any(a["template"] == "due_soon" for a in expected if a["kind"] == "send")

    clock = ManualClock(to_epoch(fixture.start, zone))
    rt = _runtime(plan, store_url(kind, tmp_path, request), clock, Recorder(clock))
    fixture_setup(rt, fixture, zone)
    decided: list[Action] = []
    for event in fixture_events(fixture, zone):
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    assert fixture.end is not None
    clock.set(to_epoch(fixture.end, zone))
    decided.extend(rt.tick())
    rt.close()
    assert [a.to_json(tz) for a in as_the_engine_decided(decided)] == expected


@pytest.mark.parametrize("snapshot_every", [0, 1])
def test_a_runtime_opened_again_after_the_grants_reminds_once_on_the_last_day_set(
    snapshot_every: int, tmp_path: Path
) -> None:
    plan, fixture = _plan(), read_fixture(FIXTURE)
    zone = fixture.timezone or plan.declarations.timezone
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(to_epoch(fixture.start, zone))
    recorder = Recorder(clock)
    first = _runtime(plan, url, clock, recorder, snapshot_every=snapshot_every)
    fixture_setup(first, fixture, zone)
    for event in fixture_events(fixture, zone):
        clock.set(event["time"])
        first.feed(event)
    first.close()  # 老王's 8 March reminder was armed, then moved to the 16th by his second grant

    assert fixture.end is not None
    second = _runtime(plan, url, clock, recorder, snapshot_every=snapshot_every)
    assert second.engine().members["laowang"].attributes["coupon_due"] == "2026-03-17"
    for moment in ("2026-03-08 10:00", "2026-03-16 10:00", fixture.end):
        clock.set(to_epoch(moment, zone))
        second.tick()
    second.close()
    tz = timeutil.zone(zone)
    reminders = [
        (timeutil.local(at, tz).strftime("%m-%d %H:%M"), detail["text"])
        for at, kind, _, detail in recorder.calls
        if kind == "send" and "明天就到期" in detail.get("text", "")
    ]
    assert reminders == [
        ("03-08 10:00", "你的优惠券明天就到期了（2026-03-09），别浪费哦"),  # 阿峰
        ("03-16 10:00", "你的优惠券明天就到期了（2026-03-17），别浪费哦"),  # 老王, not on the 8th
    ]
