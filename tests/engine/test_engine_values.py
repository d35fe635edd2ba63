"""What steps and conditions read: counters nobody has added to, the referrer's counters, the
values passed to custom actions, calendar-length windows, and A/B arms that do not depend on
where the playbook file lies."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan, timeutil

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = timeutil.resolve(dt.datetime(2026, 3, 2, 9, 0), SHANGHAI)


def plan_of(text: str, path: str = "inline.sop") -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), path)))


def engine_for(plan: Plan) -> Engine:
    engine = Engine(plan, start=START)
    engine.add_group("g1")
    engine.add_member("referrer", name="美姐", groups=["g1"])
    engine.start()
    return engine


def test_a_declared_counter_nobody_added_to_reads_zero() -> None:
    plan = plan_of(
        """
        timezone "Asia/Shanghai"
        counter warnings "警告次数"
        template warn = "第一次警告"
        playbook first_warning {
            on member is reported
            repeat always
            when member.warnings < 1
            do {
                send warn to member
                add 1 to member.warnings
            }
        }
        """
    )
    engine = engine_for(plan)
    engine.feed(Event("join", START + 60, member="m1", group="g1"))
    engine.feed(Event("report", START + 120, member="m1", group="g1"))
    engine.feed(Event("report", START + 180, member="m1", group="g1"))
    assert [(a.kind, a.member) for a in engine.log if a.kind == "send"] == [("send", "m1")]


REFERRAL = """
timezone "Asia/Shanghai"
counter chances "抽奖次数"
action red_packet "发红包" { to: text, amount: number }
template added = "{{ referrer.name }}，抽奖机会 +1，现在 {{ referrer.chances | int }} 次"
playbook reward {
    on member joins
    when member.referrer is set
    repeat always
    do {
        add 1 to referrer.chances
        send added to referrer
        call red_packet(to = member.referrer, amount = 50)
    }
}
"""


def test_adding_to_the_referrer_reaches_the_referrer_and_templates_read_it() -> None:
    engine = engine_for(plan_of(REFERRAL))
    engine.feed(Event("join", START + 60, member="f1", group="g1", data={"inviter": "referrer"}))
    engine.feed(Event("join", START + 120, member="f2", group="g1", data={"inviter": "referrer"}))
    assert engine.members["referrer"].counters.get("chances") == 2
    assert engine.members["f1"].counters.get("chances", 0) == 0
    sends = [a for a in engine.log if a.kind == "send"]
    assert [a.member for a in sends] == ["referrer", "referrer"]
    assert [a.detail["text"] for a in sends] == [
        "美姐，抽奖机会 +1，现在 1 次",
        "美姐，抽奖机会 +1，现在 2 次",
    ]


def test_custom_action_arguments_are_values_not_references() -> None:
    engine = engine_for(plan_of(REFERRAL))
    engine.feed(Event("join", START + 60, member="f1", group="g1", data={"inviter": "referrer"}))
    [call] = [a for a in engine.log if a.kind == "call"]
    assert call.detail["args"] == {"to": "referrer", "amount": 50}
    json.dumps(call.to_json(SHANGHAI))  # the action log is written as JSON lines


def test_a_window_of_one_year_is_a_calendar_year() -> None:
    plan = plan_of(
        """
        timezone "Asia/Shanghai"
        template nudge = "好久不见"
        playbook dormant {
            on member posts
            repeat always
            when orders in last 1 year == 0
            do { send nudge to member }
        }
        """
    )
    engine = engine_for(plan)
    bought = timeutil.resolve(dt.datetime(2026, 3, 5, 20, 0), SHANGHAI)
    engine.feed(Event("order", bought, member="m1", group="g1"))
    # 2027-03-05 19:59 is within the year; 20:00 is a full calendar year later (365.2425 days is not).
    for moment in (dt.datetime(2027, 3, 5, 19, 59), dt.datetime(2027, 3, 5, 20, 0)):
        engine.feed(Event("message", timeutil.resolve(moment, SHANGHAI), member="m1", group="g1"))
    sends = [timeutil.local(a.time, SHANGHAI) for a in engine.log if a.kind == "send"]
    assert sends == [dt.datetime(2027, 3, 5, 20, 0)]


def test_a_b_arms_do_not_depend_on_the_file_path(tmp_path: Path) -> None:
    text = """
        timezone "Asia/Shanghai"
        template red = "红"
        template yellow = "黄"
        playbook poster {
            on member joins
            do {
                split {
                    red 50% { send red to member }
                    yellow 50% { send yellow to member }
                }
            }
        }
        """
    arms = []
    for path in ("playbooks/G5.sop", "elsewhere/deeper/G5.sop"):
        engine = engine_for(plan_of(text, path))
        for i in range(20):
            engine.feed(Event("join", START + 60 + i, member=f"m{i}", group="g1"))
        arms.append([a.detail["template"] for a in engine.log if a.kind == "send"])
    assert arms[0] == arms[1]
    assert set(arms[0]) == {"red", "yellow"}


def test_a_b_arms_do_not_move_when_lines_are_added_above_the_split() -> None:
    """Fixing a comment above a running A/B test must not reassign the members still to come."""
    text = """
        timezone "Asia/Shanghai"
        template red = "红"
        template yellow = "黄"
        playbook poster {
            on member joins
            do {
                split {
                    red 50% { send red to member }
                    yellow 50% { send yellow to member }
                }
            }
        }
        """
    arms = []
    for version in (
        text,
        text.replace("            on member joins", "            # 海报 A/B\n\n            on member joins"),
    ):
        engine = engine_for(plan_of(version))
        for i in range(20):
            engine.feed(Event("join", START + 60 + i, member=f"m{i}", group="g1"))
        arms.append([a.detail["template"] for a in engine.log if a.kind == "send"])
    assert arms[0] == arms[1]
