"""The simulator and the live runtime agree: the engine cases' fixtures run live on every store,
and whenever the live runtime ticks."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from livestores import (
    as_the_engine_decided,
    busy_fixture,
    fixture_events,
    fixture_setup,
    read_fixture,
    store_url,
)
from runtime_helpers import CASES, Recorder

import sopdsl
from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.engine.actions import GOING_OUT, Action
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.plan import Plan, timeutil

AGREEMENT = [
    "busy.yaml",
    "wait_for.yaml",
    "quiet_hours.yaml",
    "caps_defer.yaml",
    "silence.yaml",
    "repeat.yaml",
    "draw.yaml",  # the same winners, drawn live
    "team_wait.yaml",  # a correlated wait: each flow ends only on its own event
    "holidays.yaml",  # calendar exceptions and date tests, on the live clock
    "caps_scoped.yaml",  # a cap that counts only the promotions: the welcome after them goes out
    "silence.rejoin.yaml",  # silence counted per group: a second group starts a count of its own
    "attachments.yaml",  # attachments and a mention, typed in the send's detail, the same live
    "calc.yaml",  # arithmetic, counters reset, check-ins counted in a window, a failed `set` record
    "tasks.yaml",  # tasks to a contact's owner and a group's operator, with their message; escalations
    "platform.yaml",  # the platform's weekly limit, a task's message counted; a kick left to staff
]


def _live_log(plan: Plan, fixture_path: Path, url: str) -> list[dict[str, Any]]:
    fixture = read_fixture(fixture_path)
    zone = fixture.timezone or plan.declarations.timezone
    clock = ManualClock(to_epoch(fixture.start, zone))
    recorder = Recorder(clock)
    rt = Runtime(plan, url, executors=recorder.executors(), clock=clock, seed=fixture.seed)
    fixture_setup(rt, fixture, zone)
    decided: list[Action] = []
    for event in fixture_events(fixture, zone):
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    assert fixture.end is not None
    clock.set(to_epoch(fixture.end, zone))
    decided.extend(rt.tick())
    decided = as_the_engine_decided(decided)
    # What goes out to the executors: done actions, and tasks that name nobody (`unassigned`,
    # for an executor that finds the assignee itself).
    done = [a for a in decided if a.status in GOING_OUT]
    executed = [key for _, _, key, _ in recorder.calls]
    assert sorted(executed) == sorted({a.key for a in done})
    # Dispatch interleaves members, but keeps each member's actions in the order decided.
    member_of = {a.key: a.member or a.group for a in done}
    for who in set(member_of.values()):
        mine = list(dict.fromkeys(a.key for a in done if member_of[a.key] == who))
        assert [k for k in executed if member_of[k] == who] == mine
    rt.close()
    tz = timeutil.zone(zone)
    return [a.to_json(tz) for a in decided]


@pytest.mark.parametrize("name", AGREEMENT)
def test_live_runtime_agrees_with_the_simulator(name: str, tmp_path: Path) -> None:
    path = CASES / name
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / f"{name.split('.')[0]}.sop"))))
    fixture = read_fixture(path)
    tz = timeutil.zone(fixture.timezone or plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert expected
    assert _live_log(plan, path, f"sqlite:///{tmp_path / 'state.db'}") == expected


def test_live_runtime_agrees_with_the_simulator_on_postgres(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "busy.sop"))))
    fixture = read_fixture(CASES / "busy.yaml")
    tz = timeutil.zone(plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert _live_log(plan, CASES / "busy.yaml", store_url("postgres", tmp_path, request)) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_runtime_agrees_with_the_simulator_whenever_it_ticks(seed: int) -> None:
    """Random busy timelines, with the live loop ticking at random moments between events."""
    plan, fixture, line = busy_fixture(seed, 150)
    tz = timeutil.zone(plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert len(expected) > 100

    rng = random.Random(seed)
    clock = ManualClock(line["start"])
    rt = Runtime(plan, "memory://", clock=clock, seed=seed, dry_run=True)
    fixture_setup(rt, fixture, plan.declarations.timezone)
    decided: list[Action] = []
    for event in line["events"]:
        if rng.random() < 0.5 and event["time"] > clock.now():
            # A loop turn somewhere before the event: due timers run, nothing else may change.
            clock.set(rng.randint(clock.now(), event["time"] - 1))
            decided.extend(rt.tick())
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    clock.set(line["end"])
    decided.extend(rt.tick())
    assert [a.to_json(tz) for a in as_the_engine_decided(decided)] == expected
