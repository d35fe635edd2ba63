"""`sopdsl plan` shows each send when the engine would make it: a campaign's entries only inside
its `active from … until …` window, a send over a cap that defers on the cap's next day (then
after the quiet hours that day begins in), one over a cap that drops as dropped. Checked
against the dry run of the same playbooks: every send the dry run makes in the range is a line
of the plan, at the same time, moved from the same time."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from click.testing import CliRunner

import sopdsl
from sopdsl.cli import main
from sopdsl.plan.agenda import actions_in_order

SOP = """\
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
    active from 2026-12-09 00:00 until 2026-12-11 00:00
    at every day at 10:00: send deal to group
    at every day at 11:00: send deal to group
    at every day at 20:00: send tip to group
}
"""

TIMELINE = """\
start: 2026-12-07 00:00
end: 2026-12-12 00:00
seed: 0
groups:
  - {id: bj, name: 北京群, tags: [fans]}
  - {id: sh, name: 上海群, tags: [fans]}
members: []
events: []
expect: []
"""

CAP_THEN_QUIET = "cap: at most 3 sends per group per day, then quiet hours"
END = dt.datetime(2026, 12, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
_LINE = re.compile(
    r"^(?P<at>\S+ \S+ \S+)\s+(?P<group>\S+)\s+(?P<playbook>\S+)\s+send (?P<template>\S+) to (?:group|member)"
    r"(?:  \[cap [0-9, ]+\])?(?:  \(moved by (?P<why>.+) from (?P<planned>\S+ \S+ \S+)\))?"
    r"(?:  \(dropped: (?P<dropped>.+)\))?$"
)


def _instant(shown: str) -> dt.datetime:
    """`2026-12-08 Tue 08:00+08:00`, as the plan prints a time."""
    day, _, clock = shown.split()
    return dt.datetime.fromisoformat(f"{day}T{clock}")


def plan_lines(tmp_path: Path, sop: str = SOP) -> list[dict[str, str | None]]:
    (tmp_path / "p.sop").write_text(sop, encoding="utf-8")
    args = ["plan", str(tmp_path / "p.sop"), "--from", "2026-12-07", "--to", "2026-12-11"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("2026")]
    found = [_LINE.match(line) for line in lines]
    assert all(found), lines
    return [m.groupdict() for m in found if m]


def dry_run(tmp_path: Path, sop: str = SOP, timeline: str = TIMELINE) -> list[dict[str, str]]:
    (tmp_path / "p.sop").write_text(sop, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(timeline, encoding="utf-8")
    args = ["simulate", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.yaml"), "--format", "jsonl"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_the_plan_shows_each_send_when_and_as_the_dry_run_makes_it(tmp_path: Path) -> None:
    planned = plan_lines(tmp_path)
    shown = {
        (
            line["group"],
            line["playbook"],
            line["template"],
            _instant(line["planned"] or line["at"] or ""),
            _instant(line["at"] or ""),
        )
        for line in planned
        if not line["dropped"]
        and _instant(line["at"] or "") <= END  # the dry run runs what is due at its end too
    }
    made = {
        (
            action["group"],
            action["playbook"],
            action["template"],
            dt.datetime.fromisoformat(action.get("planned") or action["at"]),
            dt.datetime.fromisoformat(action["at"]),
        )
        for action in dry_run(tmp_path)
        if action["kind"] == "send" and action["status"] == "done"
    }
    assert shown == made
    # What the plan printed before: the campaign on every day, and each send at its calendar time.
    campaign = sorted(
        _instant(line["planned"] or line["at"] or "").day
        for line in planned
        if line["playbook"] == "campaign"
    )
    assert campaign == [9, 9, 9, 10, 10, 10]
    # On a campaign day bj has four sends (a deal dropped): its 21:00 recap goes the next morning.
    moved = [(line["group"], line["planned"], line["at"], line["why"]) for line in planned if line["why"]]
    assert moved == [
        ("bj", "2026-12-09 Wed 21:00+08:00", "2026-12-10 Thu 08:00+08:00", CAP_THEN_QUIET),
        ("bj", "2026-12-10 Thu 20:00+08:00", "2026-12-11 Fri 08:00+08:00", CAP_THEN_QUIET),
        ("bj", "2026-12-10 Thu 21:00+08:00", "2026-12-11 Fri 08:00+08:00", CAP_THEN_QUIET),
        ("bj", "2026-12-11 Fri 21:00+08:00", "2026-12-12 Sat 08:00+08:00", CAP_THEN_QUIET),
    ]


def test_a_send_a_cap_drops_is_shown_dropped(tmp_path: Path) -> None:
    dropped = [line for line in plan_lines(tmp_path) if line["dropped"]]
    # The second deal of each campaign day: one promotion a group a day, else drop.
    assert [(line["at"], line["template"], line["dropped"]) for line in dropped] == [
        (
            f"2026-12-{day} {weekday} 11:00+08:00",
            "deal",
            'cap: at most 1 sends of templates tagged "promo" per group per day',
        )
        for day, weekday in (("09", "Wed"), ("10", "Thu"))
    ]
    (drops,) = {
        tuple(a["at"] for a in dry_run(tmp_path) if a["status"] == "dropped"),
    }
    assert drops == ("2026-12-09T11:00:00+08:00", "2026-12-10T11:00:00+08:00")


EACH = """\
timezone "Asia/Shanghai"
group bj "北京群" { tagged "fans" }
template morning "早安" = "早安"
template noon "午安" = "午安"
policy {
    at most 1 sends per member per day
}
playbook care "关怀" {
    in groups tagged "fans"
    at every day at 09:00 for each member: send morning to member
    at every day at 13:00 for each member: send noon to member
}
"""


def test_a_member_cap_moves_each_members_sends_as_the_dry_run_does(tmp_path: Path) -> None:
    # Two sends a member a day under a cap of one: each day's second goes at the next midnight,
    # and takes that day's place, so the sends fall further behind day by day.
    planned = plan_lines(tmp_path, EACH)
    shown = [
        (line["template"], _instant(line["planned"] or line["at"] or ""), _instant(line["at"] or ""))
        for line in planned
        if _instant(line["at"] or "") <= END  # the dry run runs what is due at its end too
    ]
    timeline = TIMELINE.replace("members: []", "members:\n  - {id: m1, name: 张三, groups: [bj]}")
    timeline = timeline.replace("  - {id: sh, name: 上海群, tags: [fans]}\n", "")
    made = [
        (
            action["template"],
            dt.datetime.fromisoformat(action.get("planned") or action["at"]),
            dt.datetime.fromisoformat(action["at"]),
        )
        for action in dry_run(tmp_path, EACH, timeline)
        if action["kind"] == "send" and action["member"] == "m1"
    ]
    assert sorted(shown) == sorted(made)
    assert [line["at"] for line in planned][:3] == [
        "2026-12-07 Mon 09:00+08:00",
        "2026-12-08 Tue 00:00+08:00",
        "2026-12-09 Wed 00:00+08:00",
    ]


def test_a_split_is_held_to_the_caps_by_the_first_arm_that_sends() -> None:
    # A control arm written first does nothing: the caps are played with the arm that sends.
    text = """\
timezone "Asia/Shanghai"
group bj "北京群" { tagged "fans" }
template red "红" = "红色海报"
template yellow "黄" = "黄色海报"
playbook ab {
    in groups tagged "fans"
    at every day at 10:00 for each member: split {
        control 20%
        a 40%: send red to member
        b 40%: send yellow to member
    }
}
"""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "ab.sop")))
    (entry,) = plan.playbooks[0].schedule
    assert [getattr(a, "template", None) for a in actions_in_order(entry.code)] == ["red"]
