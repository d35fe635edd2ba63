"""`sopdsl report --format json`: the scenario T2's figures, each playbook's funnel, the group
calendar and the day-one burst, against values counted by hand from the fixtures."""

from __future__ import annotations

import json
import re
from html import escape
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


HELD = """\
timezone "Asia/Shanghai"
group bj "北京群" { tagged "fans" }
group sh "上海群" { tagged "fans" }
template deal "秒杀" tagged "promo" = "午间秒杀"
template tip "小贴士" = "每日小贴士"
template recap "回顾" = "今日回顾"
policy {
    quiet hours 22:00 - 08:00
    at most 3 sends per group per day
    at most 1 sends of templates tagged "promo" per group per day else drop
}
playbook daily "每日推送" {
    in groups tagged "fans"
    at every day at 12:00: send tip to group
    at every day at 21:00: send recap to group
}
playbook campaign "双十二活动" {
    in groups bj
    at every day at 10:00: send deal to group
    at every day at 11:00: send deal to group
    at every day at 20:00: send tip to group
}
"""

HELD_RUN = """\
start: 2026-12-07 00:00
end: 2026-12-10 00:00
groups:
  - {id: bj, name: 北京群, tags: [fans]}
  - {id: sh, name: 上海群, tags: [fans]}
members: []
events: []
"""

_PLAN_LINE = re.compile(
    r"^(?P<day>\S+) \S+ (?P<clock>\d\d:\d\d)\+08:00\s+(?P<group>\S+)\s+(?P<playbook>\S+)\s+(?P<what>.+?)"
    r"(?:  \[cap [0-9, ]+\])?(?:  \(moved by (?P<why>.+) from (?P<pday>\S+) \S+ (?P<pclock>\S+)\+08:00\))?"
    r"(?:  \(dropped: (?P<dropped>.+)\))?$"
)


def test_the_report_calendar_shows_the_sends_as_sopdsl_plan_holds_them_to_the_policy(tmp_path: Path) -> None:
    # Before, the report's 群日历 listed the calendar's own times: a 21:00 recap the cap of three a
    # day puts off to 08:00 the next morning showed at 21:00, and a second promotion the cap drops
    # showed as if it went out; `sopdsl plan` for the same days showed both as the engine does.
    (tmp_path / "p.sop").write_text(HELD, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(HELD_RUN, encoding="utf-8")
    data = report(tmp_path / "p.sop", tmp_path / "p.yaml")
    assert data["days"] == ["2026-12-07", "2026-12-08", "2026-12-09"]
    shown = [
        (s["at"], s["group"], s["playbook"], s["what"], s["planned"], s["moved_by"], s["dropped"])
        for s in data["calendar"]
    ]
    args = ["plan", str(tmp_path / "p.sop"), "--from", "2026-12-07", "--to", "2026-12-09"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    found = [_PLAN_LINE.match(line) for line in result.stdout.splitlines() if line.startswith("2026")]
    assert all(found)
    planned = [
        (
            f"{m['day']} {m['clock']}",
            m["group"],
            m["playbook"],
            m["what"],
            f"{m['pday']} {m['pclock']}" if m["why"] else None,
            m["why"] or "",
            m["dropped"] or "",
        )
        for m in found
        if m
    ]
    assert shown == planned
    recap = "cap: at most 3 sends per group per day, then quiet hours"
    assert ("2026-12-08 08:00", "bj", "daily", "send recap to group", "2026-12-07 21:00", recap, "") in shown
    promo = 'cap: at most 1 sends of templates tagged "promo" per group per day'
    assert ("2026-12-07 11:00", "bj", "campaign", "send deal to group", None, "", promo) in shown
    page = CliRunner().invoke(
        main, ["report", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "p.yaml")]
    )
    assert f"（原定 2026-12-07 21:00，推迟：{recap}）" in page.stdout
    assert f"（未发出：{escape(promo)}）" in page.stdout
