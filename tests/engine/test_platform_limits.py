"""The platform's message limit in the engine: a task's message counts against it (never held back,
but marked when over), and a kick it cannot perform is a task that changes nothing."""

from __future__ import annotations

from pathlib import Path

import sopdsl
from sopdsl.dryrun.fixture_models import FixtureEvent
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate, to_epoch

CASES = Path(__file__).parent.parent / "engine_cases"
PLAN = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "platform.sop"))))


def test_a_task_over_the_limit_goes_to_staff_marked_and_the_sends_still_wait() -> None:
    fixture, _ = load_fixture(CASES / "platform.yaml", "platform.yaml")
    more = [FixtureEvent(at=f"2026-03-02 09:{m}", kind="report", member="m1", group="g1") for m in (10, 20)]
    run = simulate(
        PLAN, fixture.model_copy(update={"events": [fixture.events[0], *more, *fixture.events[1:]]})
    )
    tasks = [a for a in run.actions if a.kind == "task" and a.member == "m1"]
    assert [a.detail.get("over_limit") for a in tasks] == [
        None,
        None,
        "the platform's limit of 2 messages per member per week via mass and tasks' messages",
    ]
    # The tasks' messages use up the week: Monday's and Wednesday's promos wait for next Monday.
    promos = [a for a in run.actions if a.kind == "send" and a.member == "m1"]
    assert [a.reason for a in promos] == [
        "cap: the platform's limit of 2 messages per member per week via mass and tasks' messages"
    ] * 2
    assert all(a.time == to_epoch("2026-03-09 00:00", "Asia/Shanghai") for a in promos)


def test_a_kick_left_to_staff_keeps_the_member_and_says_why() -> None:
    fixture, _ = load_fixture(CASES / "platform.yaml", "platform.yaml")
    run = simulate(PLAN, fixture)
    [task] = [a for a in run.actions if a.kind == "task" and a.member == "m2"]
    assert task.detail["instead_of"] == "kick" and task.detail["because"] == "潜水五天"
    assert task.detail["text"] == "remove 李四 (m2) from 骑友群 by hand: the platform cannot"
