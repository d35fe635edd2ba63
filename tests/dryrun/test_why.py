"""`sopdsl why`: the reasons a member got, or did not get, a playbook's actions, as the engine
decided them during the dry run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.engine import trace

PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎{{ member.name }}"
template vip_hello = "VIP 你好"
playbook welcome "新人欢迎" {
    in groups tagged "normal"
    on member joins
    when member not tagged "staff" and not member.name starts with "AAA"
    do { send welcome to member }
}
playbook vip "VIP 问候" {
    on member is tagged "vip"
    do { send vip_hello to member }
}
"""

FIXTURE = """
start: 2026-03-02 09:00
end: 2026-03-10 00:00
groups:
  - {id: g1, tags: [normal]}
  - {id: lobby, tags: [other]}
members:
  - {id: wang, name: 王五, groups: [lobby]}
events:
  - {at: 2026-03-02 10:00, kind: join, member: zhang, group: g1, data: {name: 张三}}
  - {at: 2026-03-02 11:00, kind: join, member: staff1, group: g1, data: {name: 小美}}
  - {at: 2026-03-02 12:00, kind: join, member: zhang, group: g1, data: {name: 张三}}
  - {at: 2026-03-02 13:00, kind: join, member: li, group: lobby, data: {name: 李四}}
expect:
  - {action: send, template: welcome, member: zhang, count: 1}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "welcome.sop").write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    fixture = tmp_path / "welcome.yaml"
    fixture.write_text(textwrap.dedent(FIXTURE), encoding="utf-8")
    return fixture


def why(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["why", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def test_a_member_who_got_the_action_and_then_ran_once(files: Path) -> None:
    code, out = why("zhang", "--timeline", str(files), "--playbook", "welcome")
    assert code == 0
    assert "2026-03-02 10:00  on join" in out and "→ started" in out
    assert "2026-03-02 12:00  on join (line 7) → not started: already ran once for this member" in out
    assert "it last started for this member at 2026-03-02 10:00" in out
    assert "2026-03-02 10:00  send welcome (line 9)" in out


def test_a_member_is_found_by_their_name_as_ops_know_them(files: Path) -> None:
    # `why 张三` listed the ids; a join's data.name and a member's name find the member now.
    assert why("张三", "--timeline", str(files), "--playbook", "welcome") == why(
        "zhang", "--timeline", str(files), "--playbook", "welcome"
    )
    code, out = why("王五", "--timeline", str(files))
    assert code == 0 and out.startswith("why 王五 (wang):")


def test_a_false_condition_names_the_part_and_the_values_it_read(tmp_path: Path, files: Path) -> None:
    text = (tmp_path / "welcome.yaml").read_text(encoding="utf-8")
    text = text.replace("members:\n", "members:\n  - {id: staff1, name: 小美, tags: [staff, vip]}\n", 1)
    (tmp_path / "welcome.yaml").write_text(text, encoding="utf-8")
    code, out = why("staff1", "--timeline", str(files), "--playbook", "welcome")
    assert code == 0
    assert "not started: its `when` condition was false" in out
    assert '✗ member not tagged "staff"    (member tags: staff, vip)' in out
    # The part of the condition that held is not blamed.
    assert "starts with" not in out


def test_a_member_no_trigger_reached_is_told_the_scope(files: Path) -> None:
    code, out = why("li", "--timeline", str(files))
    assert code == 0
    assert "playbook welcome 新人欢迎" in out
    assert "2026-03-02 13:00  on join (line 7) → not started: out of scope" in out
    assert "it applies to groups tagged 'normal'; this was in group 'lobby' (tagged other)" in out
    assert 'no trigger of it fired for li: on tagged "vip"' in out
    assert "playbook vip VIP 问候" in out  # every playbook, when none is named


def test_a_member_no_trigger_reached_is_shown_their_groups(files: Path) -> None:
    out = why("wang", "--timeline", str(files), "--playbook", "welcome")[1]
    assert "no trigger of it fired for wang: on join" in out
    assert "(it applies to groups tagged 'normal'; wang is in: lobby (tagged other))" in out


def test_unknown_member_and_unknown_playbook(files: Path) -> None:
    code, out = why("nobody", "--timeline", str(files))
    assert "no member 'nobody' in this timeline" in out
    assert code == 1
    code, out = why("zhang", "--timeline", str(files), "--playbook", "welcom")
    assert "no playbook named 'welcom'" in out and "welcome, vip" in out
    assert code == 1
    assert "hint: did you mean 'welcome'?" in out


def test_a_misspelt_member_gets_a_did_you_mean(files: Path) -> None:
    code, out = why("zhnag", "--timeline", str(files))
    assert code == 1
    assert "error: no member 'zhnag' in this timeline" in out
    assert "hint: did you mean 'zhang'?" in out
    assert "Traceback" not in out


def test_a_fixture_without_its_playbook_is_a_usage_error(tmp_path: Path) -> None:
    fixture = tmp_path / "lonely.yaml"
    fixture.write_text("start: 2026-03-02 09:00\n", encoding="utf-8")
    code, out = why("m1", "--timeline", str(fixture))
    assert code == 2
    assert "has no playbook beside it" in out and "`playbook:`" in out


def test_numbers_read_as_the_playbook_writes_them(tmp_path: Path) -> None:
    (tmp_path / "first.sop").write_text(
        textwrap.dedent(
            """
            timezone "Asia/Shanghai"
            coupon thanks "回购券" worth 30
            template note = "送你「{{ coupon.title }}」，价值{{ coupon.worth }}元；第{{ member.orders }}单"
            playbook first_order "首单" {
                on member orders
                when member.orders == 2
                do {
                    grant thanks to member
                    send note to member
                }
            }
            """
        ),
        encoding="utf-8",
    )
    fixture = tmp_path / "first.yaml"
    fixture.write_text(
        textwrap.dedent(
            """
            start: 2026-03-02 09:00
            groups: [{id: g1}]
            members: [{id: m1, groups: [g1]}]
            events:
              - {at: 2026-03-02 10:00, kind: order, member: m1, group: g1, data: {amount: 99}}
              - {at: 2026-03-02 11:00, kind: order, member: m1, group: g1, data: {amount: 99}}
            """
        ),
        encoding="utf-8",
    )
    code, out = why("m1", "--timeline", str(fixture))
    assert code == 0
    assert "✗ member.orders == 2    (member.orders = 1)" in out
    jsonl = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "first.sop"), "--timeline", str(fixture), "--format", "jsonl"]
    )
    assert jsonl.exit_code == 0
    assert "送你「回购券」，价值30元；第2单" in jsonl.output  # plain substitutions
    (tmp_path / "first.sop").write_text(
        (tmp_path / "first.sop")
        .read_text(encoding="utf-8")
        .replace("coupon.worth }}", "coupon.worth * 1 }}"),
        encoding="utf-8",
    )
    jsonl = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "first.sop"), "--timeline", str(fixture), "--format", "jsonl"]
    )
    assert "价值30元" in jsonl.output  # through Jinja


def test_a_false_date_test_is_shown_as_written_with_the_local_time(tmp_path: Path) -> None:
    cases = Path(__file__).resolve().parent.parent / "engine_cases"
    fixture = tmp_path / "tip.yaml"
    fixture.write_text(
        f"playbook: {cases / 'holidays.sop'}\nstart: 2026-10-02 09:00\nend: 2026-10-03 00:00\n"
        "groups:\n  - {id: fans1, tags: [fans]}\n"
        "events:\n  - {at: 2026-10-02 12:00, kind: message, member: m0, group: fans1}\n",
        encoding="utf-8",
    )
    code, out = why("m0", "--timeline", str(fixture), "--playbook", "tip")
    assert code == 0, out
    assert "not (date between 2026-10-01 and 2026-10-07)" in out
    assert "local time 2026-10-02 12:00" in out


WAITS = """
timezone "Asia/Shanghai"
policy { quiet hours 22:00 - 08:00 }
template hi = "欢迎"
template nudge = "来打个招呼吧"
template rules = "群规：不发广告"
template preview = "明晚八点上课"
calendar monday = every monday at 20:00
playbook welcome {
    in groups tagged "normal"
    on member joins
    repeat always
    do {
        send hi to member
        send rules to group
        wait 1 day for member posts else {
            send nudge to member
        }
    }
}
playbook class_preview {
    in groups tagged "normal"
    at monday: send preview to group
}
"""

WAIT_FIXTURE = """
start: 2026-03-02 09:00
end: 2026-03-12 00:00
groups: [{id: g1, tags: [normal]}, {id: g2, tags: [normal]}]
events:
  - {at: 2026-03-02 10:00, kind: join, member: afeng, group: g1}
  - {at: 2026-03-02 10:30, kind: message, member: afeng, group: g1}
  - {at: 2026-03-02 23:10, kind: join, member: xiaoyu, group: g1}
  - {at: 2026-03-05 12:00, kind: join, member: laowang, group: g2}
  - {at: 2026-03-05 13:00, kind: leave, member: laowang, group: g2}
"""


@pytest.fixture
def waits(tmp_path: Path) -> Path:
    (tmp_path / "w.sop").write_text(WAITS, encoding="utf-8")
    (tmp_path / "w.yaml").write_text(WAIT_FIXTURE, encoding="utf-8")
    return tmp_path / "w.yaml"


def test_why_says_what_ended_each_wait(waits: Path) -> None:
    code, out = why("afeng", "--timeline", str(waits), "--playbook", "welcome")
    assert code == 0
    assert (
        "    2026-03-02 10:30  wait 1 day for message (line 16), from 2026-03-02 10:00: it came, and the flow ended"
        in out
    )
    code, out = why("xiaoyu", "--timeline", str(waits), "--playbook", "welcome")
    lines = out.splitlines()
    # The welcome waited for the morning; the day of waiting counts from then, and ran out.
    at = lines.index("    2026-03-03 08:00  send hi (line 14)  [deferred from 2026-03-02 23:10: quiet hours]")
    assert lines[at + 2] == (
        "    2026-03-04 08:00  wait 1 day for message (line 16), from 2026-03-03 08:00: "
        "it did not come in time, so the `else` at line 17"
    )
    assert lines[at + 3] == "    2026-03-04 08:00  send nudge (line 17)"
    code, out = why("laowang", "--timeline", str(waits), "--playbook", "welcome")
    assert "from 2026-03-05 12:00: the flow ended while waiting (the member left" in out


def test_why_shows_the_group_sends_a_members_trigger_made_and_the_calendars(waits: Path) -> None:
    code, out = why("afeng", "--timeline", str(waits))
    assert code == 0
    lines = out.splitlines()
    started = lines.index("  2026-03-02 10:00  on join (line 11) → started")
    assert lines[started + 1] == "    2026-03-02 10:00  send hi (line 14)"
    assert lines[started + 2] == (
        "    2026-03-02 10:00  send rules to group g1, which everyone in it sees, afeng included (line 15)"
    )
    # xiaoyu's welcome to the same group is hers, not afeng's.
    assert sum("send rules to group g1" in line for line in lines) == 1
    assert (
        "  it acts on groups, not on members: 2 action(s) to group g1, which afeng is in "
        "(first 2026-03-02 20:00, last 2026-03-09 20:00)"
    ) in lines


def test_why_over_a_jsonl_timeline_says_what_reads_one(tmp_path: Path) -> None:
    # Read as YAML, a JSONL timeline's first event line was reported as "invalid YAML".
    sop = tmp_path / "p.sop"
    sop.write_text(
        'timezone "Asia/Shanghai"\ntemplate w = "hi"\nplaybook p { on member joins do: send w to member }\n',
        encoding="utf-8",
    )
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(
        '{"sopdsl": "timeline", "start": "2026-03-01 09:00", "groups": [{"id": "g1"}]}\n'
        '{"at": "2026-03-01 10:00", "kind": "join", "member": "m1", "group": "g1"}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["why", "m1", str(sop), "--timeline", str(timeline)])
    assert result.exit_code == 2
    assert "is a JSONL timeline; `why` reads a YAML fixture" in result.stderr
    assert "YAML:" not in result.output
    explained = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--explain"])
    assert explained.exit_code == 0 and "send w -> m1" in explained.stdout and "p.sop:3" in explained.stdout


def test_why_tells_of_a_send_still_held_back_when_the_run_ended(tmp_path: Path) -> None:
    # A join at 23:00 in quiet hours, the run over at 23:30: the welcome had not gone out, the log
    # had nothing of it, and `why` said only that the playbook started.
    sop = tmp_path / "q.sop"
    sop.write_text(
        'timezone "Asia/Shanghai"\ntemplate welcome = "hi"\npolicy { quiet hours 22:00-08:00 }\n'
        "playbook hello { on member joins\n do: send welcome to member }\n",
        encoding="utf-8",
    )
    fixture = tmp_path / "q.yaml"
    fixture.write_text(
        "start: 2026-01-05 09:00\nend: 2026-01-05 23:30\ngroups:\n  - {id: g1}\nevents:\n"
        "  - {at: 2026-01-05 23:00, kind: join, member: m1, group: g1}\n"
        "  - {at: 2026-01-05 23:10, kind: join, member: m2, group: g1}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["why", "m1", str(sop), "--timeline", str(fixture)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "  2026-01-05 23:00  on join (line 4) → started",
        "    2026-01-05 23:00  send welcome (line 5)  [held back (quiet hours) until 2026-01-06 08:00: "
        "still waiting when the run ended]",
    ]
    # Once the run reaches the morning, the send went, and says it was deferred.
    fixture.write_text(
        fixture.read_text(encoding="utf-8").replace("end: 2026-01-05 23:30", "end: 2026-01-06 09:00")
    )
    later = CliRunner().invoke(main, ["why", "m1", str(sop), "--timeline", str(fixture)])
    assert later.output.splitlines()[-1] == (
        "    2026-01-06 08:00  send welcome (line 5)  [deferred from 2026-01-05 23:00: quiet hours]"
    )


REPURCHASE = """
timezone "Asia/Shanghai"
template rebuy = "{{ member.name }}，上次买的快用完了吧？"
playbook rebuy "30天复购提醒" {
    in private chats
    on member orders
    repeat always
    do {
        wait 30 days for member orders else {
            send rebuy to member
        }
    }
}
"""

REPURCHASE_FIXTURE = """
start: 2026-03-01 09:00
end: 2026-05-01 00:00
members:
  - {id: xiaolin, name: 小林, contact: true}
events:
  - {at: 2026-03-02 11:00, kind: order, member: xiaolin, data: {amount: 59}}
  - {at: 2026-03-20 11:00, kind: order, member: xiaolin, data: {amount: 59}}
"""


def test_an_order_that_ends_one_flows_wait_and_starts_the_next_is_told_in_that_order(tmp_path: Path) -> None:
    # The second order ends the first flow's wait, then starts a flow of its own: the wait it
    # answered was shown under the second start, as if the new flow's wait had come at once.
    (tmp_path / "r.sop").write_text(textwrap.dedent(REPURCHASE), encoding="utf-8")
    (tmp_path / "r.yaml").write_text(textwrap.dedent(REPURCHASE_FIXTURE), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["why", "xiaolin", "--timeline", str(tmp_path / "r.yaml"), str(tmp_path / "r.sop")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[3:] == [
        "  2026-03-02 11:00  on order (line 6) → started",
        "    2026-03-20 11:00  wait 30 days for order (line 9), from 2026-03-02 11:00: it came, and the flow ended",
        "  2026-03-20 11:00  on order (line 6) → started",
        "    2026-04-19 11:00  wait 30 days for order (line 9), from 2026-03-20 11:00: it did not come in time, "
        "so the `else` at line 10",
        "    2026-04-19 11:00  send rebuy (line 10)",
    ]


LIVE = """\
timezone "Asia/Shanghai"
event live_join "进入直播间"
calendar weekly_live = every thursday at 19:30
template soon = "{{ member.name }}，直播 10 分钟后开始"
template replay = "{{ member.name }}，回放在群公告里"
playbook live "直播提醒与回放" {
    in groups tagged "live"
    when member not tagged "staff"
    at weekly_live - 10 minutes for each member when member tagged "reserved": send soon to member
    at weekly_live + 2 hours for each member when member tagged "reserved" and live_joins in last 3 hours == 0 {
        send replay to member
    }
}
"""

LIVE_FIXTURE = """\
start: 2026-03-02 09:00
end: 2026-03-06 00:00
groups: [{id: live_1, tags: [live]}]
members:
  - {id: meimei, name: 美美, groups: [live_1], tags: [reserved]}
  - {id: aqiang, name: 阿强, groups: [live_1]}
  - {id: xiaoya, name: 小雅, groups: [live_1], tags: [reserved, staff]}
events:
  - {at: 2026-03-05 19:35, kind: custom, name: live_join, member: meimei, group: live_1}
  - {at: 2026-03-05 19:40, kind: custom, name: live_join, member: aqiang, group: live_1}
"""


@pytest.fixture
def live(tmp_path: Path) -> Path:
    (tmp_path / "live.sop").write_text(LIVE, encoding="utf-8")
    (tmp_path / "live.yaml").write_text(LIVE_FIXTURE, encoding="utf-8")
    return tmp_path / "live.yaml"


def test_a_calendar_entry_for_each_member_whose_when_was_false_says_so(live: Path) -> None:
    # 阿强 got no reminder and no replay: `why` said "no trigger of it fired", though both entries
    # had fired and their `when` had left him out.
    code, out = why("阿强", "--timeline", str(live))
    assert code == 0
    assert out.splitlines()[3:] == [
        "  2026-03-05 19:20  at weekly_live - 10 minutes for each member (line 9) → not started: "
        "its `when` condition was false",
        '      ✗ member tagged "reserved"    (member tags: none)',
        "  2026-03-05 21:30  at weekly_live + 2 hours for each member (line 10) → not started: "
        "its `when` condition was false",
        '      ✗ member tagged "reserved"    (member tags: none)',
        "      ✗ live_joins in last 3 hours == 0    (live_joins in last 3 hours: 1)",
    ]
    assert "no trigger of it fired" not in out


def test_a_calendar_entry_for_each_member_that_started_shows_its_actions_under_it(live: Path) -> None:
    code, out = why("美美", "--timeline", str(live))
    assert code == 0
    assert out.splitlines()[3:] == [
        "  2026-03-05 19:20  at weekly_live - 10 minutes for each member (line 9) → started",
        "    2026-03-05 19:20  send soon (line 9)",
        "  2026-03-05 21:30  at weekly_live + 2 hours for each member (line 10) → not started: "
        "its `when` condition was false",
        "      ✗ live_joins in last 3 hours == 0    (live_joins in last 3 hours: 1)",
    ]


def test_the_playbooks_own_when_over_a_calendar_entry_is_named_when_it_was_false(live: Path) -> None:
    code, out = why("xiaoya", "--timeline", str(live))
    assert code == 0
    lines = out.splitlines()
    first = lines.index(
        "  2026-03-05 19:20  at weekly_live - 10 minutes for each member (line 9) → not started: "
        "its `when` condition was false"
    )
    assert lines[first + 1] == '      ✗ member not tagged "staff"    (member tags: reserved, staff)'
    assert "send soon" not in out


def test_asking_why_changes_nothing_of_what_a_calendar_entry_for_each_member_does(live: Path) -> None:
    # The engine runs an entry's members through a loop of its own when `why` listens; both
    # loops must act alike: a start, a false `when`, and a `when` failing on a member's data.
    from sopdsl.build import build_paths
    from sopdsl.dryrun.fixtures import load_fixture
    from sopdsl.dryrun.simulate import simulate

    guard = 'when member not tagged "staff" and member.points / member.orders >= 0'
    (live.parent / "live.sop").write_text(
        LIVE.replace('when member not tagged "staff"', guard), encoding="utf-8"
    )
    live.write_text(LIVE_FIXTURE.replace("tags: [reserved]}", "tags: [reserved], counters: {orders: 1}}", 1))
    plan = build_paths([str(live.parent / "live.sop")]).plan
    assert plan is not None
    fixture, _ = load_fixture(live, "live.yaml")
    decisions: list[tuple[str, str]] = []
    traced = simulate(plan, fixture, lambda d: decisions.append((d.member.id, d.verdict)))
    plain = simulate(plan, fixture)
    assert traced.actions == plain.actions
    assert [(a.member, a.kind, a.status) for a in plain.actions] == [
        ("aqiang", "when", "failed"),  # 0 orders: a division by zero
        ("meimei", "send", "done"),
        ("aqiang", "when", "failed"),
    ]
    assert decisions == [
        ("aqiang", trace.GUARD_FAILED),
        ("meimei", trace.STARTED),
        ("xiaoya", trace.GUARD_FALSE),
        ("aqiang", trace.GUARD_FAILED),
        ("meimei", trace.GUARD_FALSE),
        ("xiaoya", trace.GUARD_FALSE),
    ]
