"""The dry run's figures against values computed by hand (tests/figures/goldens/, one file per
family) for the small community of tests/figures/cases/shop.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sopdsl.build import compile_files
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate, simulate_timeline, to_epoch
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.figures import FAMILIES, Collector, Figures

HERE = Path(__file__).parent
CASE = HERE / "cases" / "shop.sop"


def run_shop() -> Figures:
    plan = compile_files([CASE]).plan
    assert plan is not None
    fixture, _ = load_fixture(CASE.with_suffix(".yaml"), "shop.yaml")
    collector = Collector(plan.declarations.timezone)
    result = simulate(plan, fixture, figures=collector)
    assert result.passed
    return collector.figures()


def golden(name: str) -> dict[str, object]:
    data = json.loads((HERE / "goldens" / f"{name}.json").read_text(encoding="utf-8"))
    data.pop("_why")
    return dict(data)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_of_group_figures_equals_the_hand_computed_golden(family: str) -> None:
    assert run_shop().family(family) == golden(family)


def test_playbook_figures_count_flows_and_actions_by_kind_and_status() -> None:
    assert run_shop().flows_json() == golden("playbooks")


def test_the_run_spans_its_local_days_and_names_its_groups() -> None:
    figures = run_shop()
    assert figures.days == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert figures.names == {"g1": "骑友一群", "g2": "骑友二群"}
    data = figures.to_json()
    assert data["groups"]["g2"]["days"]["2026-03-03"]["conversion"]["amount"] == 35.5


def test_a_run_without_a_collector_decides_the_same_actions() -> None:
    plan = compile_files([CASE]).plan
    assert plan is not None
    fixture, _ = load_fixture(CASE.with_suffix(".yaml"), "shop.yaml")
    plain = simulate(plan, fixture)
    watched = simulate(plan, fixture, figures=Collector("Asia/Shanghai"))
    assert [a.key for a in plain.actions] == [a.key for a in watched.actions]


def test_a_streamed_timeline_counts_the_same_figures(tmp_path: Path) -> None:
    """The JSONL path (`sopdsl report` on a large timeline) counts what the fixture path counts."""
    fixture, _ = load_fixture(CASE.with_suffix(".yaml"), "shop.yaml")
    lines = [
        {
            "sopdsl": "timeline",
            "timezone": "Asia/Shanghai",
            "start": fixture.start,
            "end": fixture.end,
            "groups": [g.model_dump(exclude_none=True) for g in fixture.groups],
        },
        *(m.model_dump(exclude_none=True) for m in fixture.members),
        *(e.model_dump(exclude_none=True) for e in fixture.events),
    ]
    path = tmp_path / "shop.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    plan = compile_files([CASE]).plan
    assert plan is not None
    collector = Collector("Asia/Shanghai")
    stream = open_timeline(path, "shop.jsonl", "Asia/Shanghai")
    simulate_timeline(plan, stream, lambda action: None, figures=collector)
    stream.close()
    assert collector.figures().to_json() == run_shop().to_json()


def test_a_timeline_read_the_quick_way_counts_what_a_checked_one_counts(tmp_path: Path) -> None:
    """Everyday lines with times in epoch seconds are decoded in C as a subclass of the engine's
    events (`timeline_lines._Quick`); the collector counts them as the same lines read one by one."""
    fixture, _ = load_fixture(CASE.with_suffix(".yaml"), "shop.yaml")
    header = {
        "sopdsl": "timeline",
        "timezone": "Asia/Shanghai",
        "start": fixture.start,
        "end": fixture.end,
        "groups": [g.model_dump(exclude_none=True) for g in fixture.groups],
    }
    events = [e.model_dump(exclude_none=True) for e in fixture.events]
    plan = compile_files([CASE]).plan
    assert plan is not None
    shown = []
    for name, times in (("text", False), ("epoch", True)):
        lines = [header, *({**e, "at": to_epoch(e["at"], "Asia/Shanghai")} if times else e for e in events)]
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
        )
        collector = Collector("Asia/Shanghai")
        stream = open_timeline(path, path.name, "Asia/Shanghai")
        simulate_timeline(plan, stream, lambda action: None, figures=collector)
        stream.close()
        shown.append(collector.figures().to_json())
    assert shown[0] == shown[1]
    assert shown[1]["groups"]["g1"]["days"]["2026-03-02"]["activity"] == {"posters": 2, "messages": 3}


def test_days_are_local_days_across_a_clock_change() -> None:
    """A day with a clock change is 23 or 25 hours long; every instant still falls on its local day."""
    import datetime as dt

    from sopdsl.engine.tally import Days
    from sopdsl.plan import timeutil

    tz = timeutil.zone("America/New_York")
    days = Days(tz)
    start = int(dt.datetime(2026, 3, 6, tzinfo=tz).timestamp())
    for time in range(start, start + 5 * 86400, 1800):
        assert days.of(time) == dt.datetime.fromtimestamp(time, tz).date().isoformat()


def test_a_flow_that_stops_is_completed_once(tmp_path: Path) -> None:
    sop = tmp_path / "stop.sop"
    sop.write_text(
        'timezone "Asia/Shanghai"\n'
        'template hi "问候" = "你好"\n'
        'playbook greet "问候" {\n    in all groups\n    on member joins\n    do {\n'
        '        if member tagged "vip" {\n            stop\n        }\n        send hi to member\n    }\n}\n',
        encoding="utf-8",
    )
    timeline = tmp_path / "stop.yaml"
    timeline.write_text(
        "start: 2026-03-02 09:00\nend: 2026-03-03 00:00\ngroups:\n  - {id: g1, name: 一群}\nevents:\n"
        "  - {at: 2026-03-02 10:00, kind: join, member: a, group: g1, data: {name: 甲}}\n"
        "  - {at: 2026-03-02 11:00, kind: tag, name: vip, member: b, group: g1}\n"
        "  - {at: 2026-03-02 11:30, kind: join, member: b, group: g1, data: {name: 乙}}\n",
        encoding="utf-8",
    )
    plan = compile_files([sop]).plan
    assert plan is not None
    fixture, _ = load_fixture(timeline, "stop.yaml")
    collector = Collector("Asia/Shanghai")
    simulate(plan, fixture, figures=collector)
    assert collector.figures().flows_json()["greet"] == {
        "flows": {"started": 2, "completed": 2, "exited": 0, "running": 0},
        "actions": {"send": {"done": 1}},
    }


def test_asking_for_the_figures_twice_counts_nothing_twice() -> None:
    """`figures` adds the days not settled yet to what it shows, not to what the collector keeps:
    a second call (a report asked for again) shows the same actions and group figures."""
    plan = compile_files([CASE]).plan
    assert plan is not None
    fixture, _ = load_fixture(CASE.with_suffix(".yaml"), "shop.yaml")
    collector = Collector(plan.declarations.timezone)
    simulate(plan, fixture, figures=collector)
    first = collector.figures().to_json()
    assert collector.figures().to_json() == first
    assert first["playbooks"] == golden("playbooks")
