"""A task for nobody: `assign … to owner` for a member without an owner (or `to operator` in a group
without one). It used to be logged done with `assignee: null`, simulated staff "finished" it, and
the `then` ran, so the SOP quietly did nothing and its `else` never ran. Now the task is logged
`unassigned` with the reason, nobody simulated finishes it, and at its deadline it escalates and
takes its `else`, as any task left undone does (the dry run and the live runtime alike)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner
from test_engine import compile_text, run

from sopdsl.cli import main

PLAYBOOK = """
    timezone "Asia/Shanghai"
    policy { escalate tasks to "陈主管" }
    playbook complaints "差评回访" {
        in private chats
        on member is reported
        do {
            assign "{{ member.name }} 给了差评：请私聊安抚" to owner within 1 day then {
                tag member "handled"
            } else {
                tag member "missed"
            }
        }
    }
    playbook newcomers "新人欢迎检查" {
        in groups tagged "normal"
        on member joins
        do {
            assign "请在群里欢迎 {{ member.name }}" to operator within 2 hours then {
                tag member "welcomed"
            } else {
                tag member "missed"
            }
        }
    }
"""

# Staff finish every task in an hour: a task with someone to do it takes its `then`.
FIXTURE = """
    start: 2026-03-02 09:00
    end: 2026-03-05 00:00
    staff_completes_tasks_after: 1 hour
    groups:
      - {id: g1, tags: [normal]}
      - {id: g2, tags: [normal], operator: 小美}
    members:
      - {id: c1, name: 张三, contact: true, owner: 小周}
      - {id: c2, name: 李四, contact: true}
    events:
      - {at: 2026-03-02 10:00, kind: report, member: c1}
      - {at: 2026-03-02 11:00, kind: report, member: c2}
      - {at: 2026-03-02 12:00, kind: join, member: n1, group: g1, data: {name: 小新}}
      - {at: 2026-03-02 12:00, kind: join, member: n2, group: g2, data: {name: 小雨}}
"""


def _actions(member: str) -> list[tuple[str, str, str | None, object]]:
    sim = run(compile_text(PLAYBOOK), FIXTURE)
    return [
        (a.kind, a.status, a.reason, a.detail.get("tags") or a.detail.get("assignee"))
        for a in sim.actions
        if a.member == member
    ]


def test_a_task_for_a_member_with_an_owner_goes_to_them_and_its_then_runs() -> None:
    assert _actions("c1") == [
        ("task", "done", None, "小周"),
        ("tag", "done", None, ["handled"]),
    ]


def test_a_task_for_a_member_without_an_owner_is_unassigned_and_takes_its_else_at_the_deadline() -> None:
    assert _actions("c2") == [
        ("task", "unassigned", "the member has no owner (跟进人) to do it", None),
        ("escalate", "done", None, "陈主管"),  # the chief owner hears of it, as of any undone task
        ("tag", "done", None, ["missed"]),  # never "handled": nobody did it
    ]


def test_the_else_of_an_unassigned_task_runs_when_its_deadline_passes() -> None:
    sim = run(compile_text(PLAYBOOK), FIXTURE)
    task, escalate, missed = (a for a in sim.actions if a.member == "c2")
    assert escalate.time == missed.time == task.time + 86_400  # `within 1 day`: not at once
    assert escalate.detail["undone_by"] is None


def test_a_task_for_a_group_without_an_operator_is_unassigned_too() -> None:
    assert _actions("n1") == [
        ("task", "unassigned", "the group has no operator (运营) to do it", None),
        ("escalate", "done", None, "陈主管"),
        ("tag", "done", None, ["missed"]),
    ]
    assert _actions("n2") == [("task", "done", None, "小美"), ("tag", "done", None, ["welcomed"])]


def test_simulate_and_why_say_why_the_task_names_nobody(tmp_path: Path) -> None:
    (tmp_path / "p.sop").write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(textwrap.dedent(FIXTURE), encoding="utf-8")
    runner = CliRunner()
    sop, yaml = str(tmp_path / "p.sop"), str(tmp_path / "p.yaml")
    simulated = runner.invoke(main, ["simulate", sop, "--timeline", yaml])
    assert simulated.exit_code == 0, simulated.output
    assert (
        "2026-03-02T11:00+08:00 task -> c2 [unassigned: the member has no owner (跟进人) to do it]"
        in simulated.output
    )
    why = runner.invoke(main, ["why", "c2", "--timeline", yaml])
    assert why.exit_code == 0, why.output
    assert "[unassigned: the member has no owner (跟进人) to do it]" in why.output


def test_a_fixture_can_expect_an_unassigned_task(tmp_path: Path) -> None:
    (tmp_path / "p.sop").write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    expect = """
    expect:
      - {action: task, member: c2, target: owner, status: unassigned, at: 2026-03-02 11:00}
      - {action: tag, tag: missed, member: c2, at: 2026-03-03 11:00}
      - {action: tag, tag: handled, member: c2, never: true}
    """
    (tmp_path / "p.yaml").write_text(textwrap.dedent(FIXTURE) + textwrap.dedent(expect), encoding="utf-8")
    tested = CliRunner().invoke(main, ["test", str(tmp_path / "p.yaml")])
    assert tested.exit_code == 0, tested.output
    assert "3 passed, 0 failed" in tested.output
