"""`sopdsl report --format json`: the scenario T2's figures, each playbook's funnel, the group
calendar and the day-one burst, against values counted by hand from the fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sopdsl.cli import main

HERE = Path(__file__).parent
PLAYBOOKS = HERE.parent.parent / "playbooks"


def report(sop: Path, timeline: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["report", str(sop), "--timeline", str(timeline), "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def column(data: dict[str, Any], group: str, family: str, figure: str) -> list[Any]:
    rows = next(g for g in data["groups"] if g["id"] == group)["days"]
    return [row[family][figure] for row in rows]


def test_t2_computes_its_daily_figures_with_no_custom_action() -> None:
    data = report(PLAYBOOKS / "T2_daily_figures.sop", PLAYBOOKS / "T2_daily_figures.yaml")
    assert data["days"] == [f"2026-03-{day:02d}" for day in range(2, 12)]
    # 陈骁 posts in 杭州 every morning; 深圳 has one message, on 3 March 6.
    assert column(data, "hz_1", "activity", "messages") == [1] * 10
    assert column(data, "sz_1", "activity", "posters") == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    # 李晓 joins 杭州 on 3 March 3 and orders ¥199 the next day.
    assert column(data, "hz_1", "growth", "net") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert column(data, "hz_1", "conversion", "amount") == [0, 0, 199, 0, 0, 0, 0, 0, 0, 0]
    # The digest goes to each group's operator, which reaches no member of the group.
    assert column(data, "hz_1", "reach", "deliveries") == [0] * 10
    digest, alert = data["playbooks"]
    assert (digest["name"], digest["flows"], digest["actions"]) == (
        "daily_figures",
        {"started": 20, "completed": 20, "exited": 0, "running": 0},
        {"send": {"done": 20}},
    )
    assert (alert["name"], alert["actions"]) == ("silence_alert", {"task": {"done": 2}})
    assert "call" not in json.dumps(data["playbooks"])
    # The group calendar: the 21:30 digest, every day for both groups.
    assert len(data["calendar"]) == 20
    assert {(slot["at"][11:], slot["playbook"]) for slot in data["calendar"]} == {("21:30", "daily_figures")}
    assert data["burst"] is None


def test_the_funnel_of_a_playbook_is_its_flows_started_then_completed() -> None:
    data = report(HERE / "cases" / "shop.sop", HERE / "cases" / "shop.yaml")
    welcome = next(pb for pb in data["playbooks"] if pb["name"] == "welcome")
    assert [(stage["stage"], stage["count"]) for stage in welcome["funnel"]] == [
        ("started", 4),
        ("completed", 2),
    ]
    assert (welcome["actions_done"], welcome["actions_total"]) == (5, 5)
    spam = next(pb for pb in data["playbooks"] if pb["name"] == "spam")
    assert (spam["actions_done"], spam["actions_total"]) == (1, 2)  # the kick of staff is blocked
    g1 = next(g for g in data["groups"] if g["id"] == "g1")
    # Totals over the days add counts; distinct members per day are not added up.
    assert g1["totals"]["reach"] == {"deliveries": 5}
    assert g1["totals"]["growth"] == {"joins": 2, "leaves": 1, "removed": 1, "net": 0}


def test_a_first_day_far_busier_than_the_others_is_reported_as_a_burst() -> None:
    data = report(HERE / "cases" / "burst.sop", HERE / "cases" / "burst.yaml")
    # 12 welcomes on the launch day; then 1, 2 and 1 a day (median 1).
    assert data["burst"] == {"day": "2026-03-02", "actions": 12, "usual": 1, "by_playbook": {"welcome": 12}}


def test_a_broken_timeline_is_a_located_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026-03-02 09:00\nevents:\n  - {at: 2026-03-02 10:00, kind: jion, member: a}\n")
    result = CliRunner().invoke(main, ["report", str(HERE / "cases" / "shop.sop"), "--timeline", str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml:3:" in result.output
    assert "Traceback" not in result.output
