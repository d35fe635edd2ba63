"""`draw N winners from members [tagged ...]`: seeded, fresh for each draw, among the group's members."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import sopdsl
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.engine.engine import Engine
from sopdsl.plan import timeutil

CASES = Path(__file__).parent.parent / "engine_cases"
MONDAY = timeutil.resolve(dt.datetime(2026, 3, 2, 9, 0), ZoneInfo("Asia/Shanghai"))
PLAN = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "draw.sop"))))


def _winners(seed: int) -> list[tuple[str, list[str]]]:
    fixture, _ = load_fixture(CASES / "draw.yaml", "draw.yaml")
    run = simulate(PLAN, fixture.model_copy(update={"seed": seed}))
    weeks: dict[str, list[str]] = {}
    for action in run.actions:
        if action.kind == "draw" and action.group == "fans1":
            weeks.setdefault(str(action.time), []).append(str(action.member))
    return sorted(weeks.items())


def test_the_same_seed_draws_the_same_winners() -> None:
    assert _winners(7) == _winners(7)


def test_each_draw_is_fresh_and_the_seed_matters() -> None:
    # A split hashes seed, playbook and member, so the same members win every week; a draw must not.
    draws = {seed: [tuple(sorted(w)) for _, w in _winners(seed)] for seed in range(8)}
    assert all(len(set(weeks)) > 1 for weeks in draws.values()), draws
    assert len({tuple(weeks) for weeks in draws.values()}) > 1, "every seed drew the same winners"


def test_winners_are_distinct_tagged_members_of_the_group_ranked() -> None:
    fixture, _ = load_fixture(CASES / "draw.yaml", "draw.yaml")
    run = simulate(PLAN, fixture)
    draws = [a for a in run.actions if a.kind == "draw" and a.group == "fans1"]
    for time in {a.time for a in draws}:
        week = [a for a in draws if a.time == time]
        assert len({a.member for a in week}) == 3
        assert {a.member for a in week} <= {"a1", "a2", "a3", "a4", "a5", "a6"}
        assert [a.detail["rank"] for a in week] == [1, 2, 3]
        assert all(a.detail["of"] == 3 and a.detail["from"] == ["active"] for a in week)
        assert len({a.key for a in week}) == 3  # each winner is its own record, with its own key


STOCKED = """
timezone "Asia/Shanghai"
playbook nightly {
    in all groups
    at every day at 21:00: draw 2 winners from members stock 3 per week
}
"""


def _stocked_engine() -> Engine:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(STOCKED, "stocked.sop")))
    engine = Engine(plan, start=MONDAY)
    for g in ("g1", "g2"):
        engine.add_group(g)
        for k in range(4):
            engine.add_member(f"{g}m{k}", groups=[g])
    engine.start()
    return engine


def _won(engine: Engine) -> list[str]:
    return [str(a.member) for a in engine.log if a.kind == "draw" and a.status == "done"]


def test_a_draws_stock_is_shared_by_every_group_and_kept_across_a_snapshot() -> None:
    engine = _stocked_engine()
    engine.advance(MONDAY + 13 * 3600)  # Monday 22:00: both groups drew, 3 prizes in all
    assert len(_won(engine)) == 3
    restored = Engine.restore(engine.snapshot(), lambda h: engine.plan)
    restored.advance(MONDAY + 5 * 86400)  # the rest of the week: nothing left to win
    assert _won(restored) == []
    dropped = [a for a in restored.log if a.kind == "draw" and a.status == "dropped"]
    assert len(dropped) == 8 and "3 winners per week" in str(dropped[0].reason)
    restored.advance(MONDAY + 7 * 86400 + 13 * 3600)  # the next Monday: three again
    assert len(_won(restored)) == 3
