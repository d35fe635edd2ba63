"""Dry-running a plan change: a fixture's `reload` entry loads another version of the playbooks
mid-timeline, through `Engine.reload` as the live runtime does, and the plan changes show in
`sopdsl test`, `sopdsl simulate` and `sopdsl why`. Bad reload entries get located errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.testing import run_tests

ROOT = Path(__file__).resolve().parent.parent.parent

V1 = """
timezone "Asia/Shanghai"
template hello = "欢迎 {{ member.name }}"
template day2 = "第二天：群规"
template day2_new = "第二天：新版群规"
playbook welcome {
    version "1"
    on member joins
    do {
        send hello to member
        wait 2 days
        send day2 to member
    }
}
"""

V2 = V1.replace('version "1"', 'version "2"').replace("send day2 to member", "send day2_new to member")

FIXTURE = """
start: 2026-03-02 09:00
end: 2026-03-10 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}
  - {at: 2026-03-03 10:00, reload: w.v2.sop}
  - {at: 2026-03-03 11:00, kind: join, member: m2, group: g1}
expect:
  - {action: send, template: day2, member: m1, at: 2026-03-04 10:00}
  - {action: send, template: day2_new, member: m2, at: 2026-03-05 11:00}
  - {action: send, template: day2_new, member: m1, never: true}
  - {plan_change: finishes, member: m1, at: 2026-03-03 10:00}
  - {plan_change: finishes, count: 1}
  - {plan_change: moves, never: true}
"""

M1_FINISHES = "m1 in group g1 in 'welcome' finishes on the version it started (at "


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def sopdsl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "w.sop", V1)
    write(tmp_path, "w.v2.sop", V2)
    write(tmp_path, "w.yaml", FIXTURE)
    return tmp_path


def errors_of(folder: Path, text: str) -> list[str]:
    """The first line of each error `sopdsl test` reports for this fixture, without the folder."""
    path = write(folder, "w.yaml", text)
    [result] = run_tests([path]).results
    assert not result.outcomes
    return [error.splitlines()[0].replace(f"{folder}/", "") for error in result.errors]


# ---- the happy path ------------------------------------------------------------------------------


def test_a_member_mid_flow_finishes_on_the_old_steps_and_a_newcomer_gets_the_new(folder: Path) -> None:
    code, output = sopdsl("test", str(folder))
    assert code == 0, output
    assert output.splitlines()[-1] == "6 passed, 0 failed"


def test_reloading_the_same_plan_fails_the_same_expectations(folder: Path) -> None:
    # The new version is what gives m2 the new step: the fixture does not pass by accident.
    write(folder, "w.yaml", FIXTURE.replace("reload: w.v2.sop", "reload: w.sop"))
    [result] = run_tests([folder / "w.yaml"]).results
    assert {o.index for o in result.outcomes if not o.passed} == {1, 3, 4}


def test_simulate_shows_the_plan_change_where_it_happened(folder: Path) -> None:
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"))
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "2026-03-02T10:00+08:00 send hello -> m1"
    assert lines[1].startswith("2026-03-03T10:00+08:00 reload w.v2.sop: plan ")
    old, new = lines[1].rpartition(": plan ")[2].split(" -> ")
    # Locations in a plan are relative to its root file's folder, however the path was given.
    assert lines[2] == f"2026-03-03T10:00+08:00 plan change {old}: {M1_FINISHES}w.sop:10)"
    assert len(new) == 12 and new != old
    assert lines[3:] == [
        "2026-03-03T11:00+08:00 send hello -> m2",
        "2026-03-04T10:00+08:00 send day2 -> m1",
        "2026-03-05T11:00+08:00 send day2_new -> m2",
    ]


def test_simulate_explain_names_the_version_each_action_came_from(folder: Path) -> None:
    code, output = sopdsl(
        "simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"), "--explain"
    )
    assert code == 0, output
    by_template = {line.split()[2]: line for line in output.splitlines() if " send " in line}
    assert "(welcome v1: " in by_template["day2"]  # m1 finishes on the version it started
    assert "(welcome v2: " in by_template["day2_new"]


def test_simulate_jsonl_has_a_reload_record_between_the_actions(folder: Path) -> None:
    code, output = sopdsl(
        "simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"), "--format", "jsonl"
    )
    assert code == 0, output
    records = [json.loads(line) for line in output.splitlines()]
    assert [r["kind"] for r in records] == ["send", "reload", "send", "send", "send"]
    reload = records[1]
    assert reload["at"] == "2026-03-03T10:00:00+08:00" and reload["files"] == ["w.v2.sop"]
    [change] = reload["changes"]
    assert change["member"] == "m1" and change["group"] == "g1" and change["outcome"] == "finishes"
    assert (change["from"], change["to"]) == (reload["from"], reload["plan"]) and change["from"] != change[
        "to"
    ]


def test_an_event_at_the_reload_instant_runs_under_the_version_its_place_says(folder: Path) -> None:
    text = FIXTURE.replace(
        "  - {at: 2026-03-03 10:00, reload: w.v2.sop}\n",
        "  - {at: 2026-03-03 10:00, kind: join, member: early, group: g1}\n"
        "  - {at: 2026-03-03 10:00, reload: w.v2.sop}\n"
        "  - {at: 2026-03-03 10:00, kind: join, member: late, group: g1}\n",
    )
    text += "  - {action: send, template: day2, member: early, at: 2026-03-05 10:00}\n"
    text += "  - {action: send, template: day2_new, member: late, at: 2026-03-05 10:00}\n"
    text += "  - {plan_change: finishes, member: early, at: 2026-03-03 10:00}\n"
    text = text.replace("{plan_change: finishes, count: 1}", "{plan_change: finishes, count: 2}")
    write(folder, "w.yaml", text)
    code, output = sopdsl("test", str(folder / "w.yaml"))
    assert code == 0, output


def test_a_reload_of_several_files_loads_them_as_one_plan(folder: Path) -> None:
    write(
        folder,
        "extra.sop",
        """
        template thanks = "谢谢分享"
        playbook thanks {
            on member posts
            do { send thanks to member }
        }
        """,
    )
    text = FIXTURE.replace("reload: w.v2.sop", "reload: [w.v2.sop, extra.sop]").replace(
        "member: m1, group: g1}\n",
        "member: m1, group: g1}\n  - {at: 2026-03-02 11:00, kind: message, member: m1, group: g1}\n",
    )
    text = text.replace(
        "expect:\n", "  - {at: 2026-03-03 12:00, kind: message, member: m2, group: g1}\nexpect:\n"
    )
    text += "  - {action: send, template: thanks, member: m2, at: 2026-03-03 12:00}\n"
    text += "  - {action: send, template: thanks, member: m1, never: true}\n"  # posted before the reload
    code, output = sopdsl("test", str(write(folder, "w.yaml", text)))
    assert code == 0, output
    assert output.splitlines()[-1] == "8 passed, 0 failed"


# ---- failures show the plan changes ----------------------------------------------------------------


def test_a_failing_expectation_shows_the_members_plan_change_among_the_nearest_actions(folder: Path) -> None:
    write(folder, "w.yaml", FIXTURE + "  - {action: send, template: day2_new, member: m1}\n")
    code, output = sopdsl("test", str(folder))
    assert code == 1, output
    lines = output.splitlines()
    at = lines.index("  expect[6]: expected send template=day2_new to member m1, but it did not happen")
    # In time order: m1's plan change sits between the actions before and after it.
    assert lines[at + 1] == "    nearest actual actions:"
    assert lines[at + 2] == "      2026-03-02T10:00+08:00 send hello -> m1"
    assert (
        lines[at + 3].startswith("      2026-03-03T10:00+08:00 plan change ") and M1_FINISHES in lines[at + 3]
    )
    assert lines[at + 4] == "      2026-03-04T10:00+08:00 send day2 -> m1"


def test_a_failing_plan_change_expectation_says_what_did_happen(folder: Path) -> None:
    write(
        folder,
        "w.yaml",
        FIXTURE + "  - {plan_change: moves, member: m1}\n  - {plan_change: ends, count: 1}\n",
    )
    code, output = sopdsl("test", str(folder))
    assert code == 1, output
    lines = output.splitlines()
    at = lines.index("  expect[6]: expected plan change 'moves' for member m1, but it did not happen")
    assert lines[at + 1] == "    plan changes that happened:"
    assert M1_FINISHES in lines[at + 2]
    assert "  expect[7]: expected plan change 'ends' 1 time(s), got 0" in lines
    assert output.splitlines()[-1] == "6 passed, 2 failed"


def test_why_shows_the_plan_change_and_the_new_versions_steps(folder: Path) -> None:
    code, output = sopdsl("why", "m1", "--timeline", str(folder / "w.yaml"))
    assert code == 0, output
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "on join (line 7) → started" in line)
    # In time order: the first step's send, then the plan change, then the old version's next step.
    assert lines[start + 1] == "    2026-03-02 10:00  send hello (line 9)"
    assert M1_FINISHES in lines[start + 2] and lines[start + 2].startswith("  2026-03-03 10:00  plan change ")
    assert lines[-1] == "    2026-03-04 10:00  send day2 (line 11)"
    code, output = sopdsl("why", "m2", "--timeline", str(folder / "w.yaml"))
    assert code == 0, output
    assert "on join (w.v2.sop:7) → started" in output
    assert "send day2_new (w.v2.sop:11)" in output
    assert "plan change" not in output  # m2 started under v2: no change concerned it


# ---- bad input ---------------------------------------------------------------------------------


def test_a_reload_file_that_does_not_exist_is_named_at_its_line(folder: Path) -> None:
    text = FIXTURE.replace("reload: w.v2.sop", "reload: [w.v2.sop, v3/w.sop]")
    assert errors_of(folder, text) == [
        "w.yaml:6:47: error[SOP603]: events.1.reload: playbook 'v3/w.sop' does not exist"
    ]
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"))
    assert code == 1 and "w.yaml:6:47: error[SOP603]" in output and "Traceback" not in output


def test_a_reload_file_that_does_not_check_reports_its_own_diagnostics(folder: Path) -> None:
    write(folder, "w.v2.sop", V2.replace("send day2_new", "send day2_nwe"))
    [result] = run_tests([folder / "w.yaml"]).results
    pointer, diagnostic = (error.replace(f"{folder}/", "") for error in result.errors)
    assert pointer.splitlines()[0] == (
        "w.yaml:6:28: error[SOP603]: events.1.reload: w.v2.sop does not check; its errors follow"
    )
    assert diagnostic.splitlines()[0] == "w.v2.sop:11:14: error[SOP104]: unknown template 'day2_nwe'"
    assert "did you mean 'day2_new'?" in diagnostic
    for command in (
        ["test", str(folder)],
        ["simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml")],
        ["why", "m1", "--timeline", str(folder / "w.yaml")],
    ):
        code, output = sopdsl(*command)
        assert code == (2 if command[0] == "test" else 1), output
        assert "w.v2.sop:11:14: error[SOP104]: unknown template 'day2_nwe'" in output
        assert "w.yaml:6:28: error[SOP603]: events.1.reload" in output
        assert "Traceback" not in output


def test_a_reload_entry_takes_no_event_fields(folder: Path) -> None:
    text = FIXTURE.replace("reload: w.v2.sop}", "reload: w.v2.sop, kind: join, member: m9}")
    assert errors_of(folder, text) == [
        "w.yaml:6:46: error[SOP602]: events.1.kind: an entry with `reload` loads playbook files and has no kind; list the event as an entry of its own",
        "w.yaml:6:58: error[SOP602]: events.1.member: an entry with `reload` loads playbook files and has no member; list the event as an entry of its own",
    ]


def test_an_entry_with_neither_kind_nor_reload_lacks_its_kind(folder: Path) -> None:
    text = FIXTURE.replace("kind: join, member: m2", "member: m2")
    assert errors_of(folder, text) == ["w.yaml:7:5: error[SOP602]: events.2.kind: missing field 'kind'"]


@pytest.mark.parametrize(
    ("at", "error"),
    [
        (
            "2026-03-02 08:00",
            "events.1.at: 2026-03-02 08:00 is before the start (2026-03-02 09:00), and a reload cannot "
            "be history (events before the start may be: join, leave, message, order, invite, report, tag, untag, rename)",
        ),
        (
            "2026-03-10 00:01",
            "events.1.at: 2026-03-10 00:01 is after the end (2026-03-10 00:00); a reload must happen during the run",
        ),
        (
            "2026-03-02 09:30",
            "events.1.at: 2026-03-02 09:30 is before the event above it (2026-03-02 10:00); list events in time order",
        ),
    ],
)
def test_a_reload_outside_the_run_or_out_of_order_is_named_at_its_time(
    folder: Path, at: str, error: str
) -> None:
    text = FIXTURE.replace("2026-03-03 10:00, reload", f"{at}, reload")
    if at.startswith("2026-03-10"):  # after the end, yet in order
        text = text.replace("2026-03-03 11:00, kind: join", "2026-03-10 00:02, kind: join")
    errors = errors_of(folder, text)
    assert errors[0] == f"w.yaml:6:10: error[SOP602]: {error}"  # at the time itself


def test_a_reload_at_the_end_is_allowed_and_runs(folder: Path) -> None:
    text = FIXTURE.replace("2026-03-03 10:00, reload", "2026-03-10 00:00, reload").replace(
        "  - {at: 2026-03-03 11:00, kind: join, member: m2, group: g1}\n", ""
    )
    path = write(folder, "w.yaml", text)
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(path))
    assert code == 0, output
    last = output.splitlines()[-1]
    assert last.startswith("2026-03-10T00:00+08:00 reload w.v2.sop: plan ")
    assert last.endswith(", no flow in progress changed")  # m1 finished on 4 March


def test_a_plan_change_expectation_is_matched_on_flows_and_times_only(folder: Path) -> None:
    text = FIXTURE + "  - {plan_change: finishes, member: m1, action: send, template: day2}\n"
    assert errors_of(folder, text) == [
        "w.yaml:15:41: error[SOP602]: expect.6.action: a plan_change expectation is matched only on member, group, at, within, count and never",
        "w.yaml:15:55: error[SOP602]: expect.6.template: a plan_change expectation is matched only on member, group, at, within, count and never",
    ]


def test_a_plan_change_expectation_needs_a_reload(folder: Path) -> None:
    text = FIXTURE.replace("  - {at: 2026-03-03 10:00, reload: w.v2.sop}\n", "")
    assert errors_of(folder, text)[0] == (
        "w.yaml:11:6: error[SOP602]: expect.3.plan_change: no entry of `events` has `reload`, so no plan changes"
    )


def test_a_misspelt_plan_change_gets_a_hint(folder: Path) -> None:
    write(folder, "w.yaml", FIXTURE.replace("plan_change: moves", "plan_change: move"))
    code, output = sopdsl("test", str(folder))
    assert code == 2
    assert "expect.5.plan_change: 'move' is not one of moves, finishes, ends" in output
    assert "did you mean 'moves'?" in output


# ---- the example in playbooks/ ---------------------------------------------------------------------------


def test_the_corpus_example_reloads_mid_flow() -> None:
    playbooks = ROOT / "playbooks"
    code, output = sopdsl(
        "simulate",
        str(playbooks / "J3_self_introduction.sop"),
        "--timeline",
        str(playbooks / "J3_self_introduction.reload.yaml"),
    )
    assert code == 0, output
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if " reload J3_self_introduction.v2.sop: plan " in line)
    assert lines[at - 1] == "2026-03-02T12:00+08:00 send intro_request -> riders1"
    assert [line.split(": ")[1].split(" in group")[0] for line in lines[at + 1 : at + 3]] == [
        "xiaoyu",
        "dabao",
    ]
    assert all("finishes on the version it started" in line for line in lines[at + 1 : at + 3])
    assert lines[at + 3] == "2026-03-02T17:00+08:00 send intro_request -> riders1"


def test_a_new_version_counting_over_windows_the_old_one_did_not_record_is_warned_about(folder: Path) -> None:
    # v2 asks "no order in the last 30 days": v1 never recorded orders over time, so right after
    # the switch everyone would look like it. The dry run says so where the reload happens.
    counting = V2.replace(
        "    on member joins\n", "    on member joins\n    when orders in last 30 days == 0\n"
    )
    write(folder, "w.v2.sop", counting)
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"))
    assert code == 0, output
    assert (
        "2026-03-03T10:00+08:00 warning: the new version counts order events over time windows the old one "
        "did not record; those counts start from zero here"
    ) in output.splitlines()
    code, output = sopdsl(
        "simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"), "--format", "jsonl"
    )
    [reload] = [json.loads(line) for line in output.splitlines() if '"reload"' in line]
    assert reload["unrecorded_windows"] == ["order"]
    code, output = sopdsl("test", str(folder))  # CI sees it too, under the fixture that passed
    assert code == 0, output
    assert any(
        line.startswith("  2026-03-03T10:00+08:00 warning: the new version counts order")
        for line in output.splitlines()
    )
    code, output = sopdsl("why", "m1", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"))
    assert "warning: the new version counts order events" in output
    write(folder, "w.v2.sop", V2)  # the same windows in both: no warning
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.yaml"))
    assert "warning" not in output


def test_a_new_version_the_plan_analysis_refuses_fails_the_dry_run_as_compile_would(folder: Path) -> None:
    # What `sopdsl compile` and `sopdsl run` refuse (here a tag loop, SOP701) must not pass in CI.
    loop = (ROOT / "tests" / "goldens" / "diagnostics" / "plan_loop.sop").read_text(encoding="utf-8")
    write(folder, "w.v2.sop", V2 + loop.split('timezone "Asia/Shanghai"', 1)[1])
    code, output = sopdsl("test", str(folder))
    assert code != 0
    assert "error[SOP701]: playbooks trigger each other in a loop" in output
    assert "w.v2.sop does not check" in output


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            "reload: ",
            "w.yaml:6:28: error[SOP602]: events.1.reload: name the playbook file(s) to load, like welcome.v2.sop",
        ),
        ("reload: 3", "w.yaml:6:28: error[SOP602]: events.1.reload: a playbook file name, or a list of them"),
        (
            "reload: {file: w.v2.sop}",
            "w.yaml:6:28: error[SOP602]: events.1.reload: a playbook file name, or a list of them",
        ),
        ("reload: [w.v2.sop, 5]", "w.yaml:6:47: error[SOP602]: events.1.reload.1: a playbook file name"),
        (
            "reload: sub",
            "w.yaml:6:28: error[SOP603]: events.1.reload: playbook 'sub' is a folder, not a .sop file",
        ),
        (f"reload: {'长' * 90}.sop", "cannot be opened: File name too long"),
    ],
)
def test_a_reload_value_that_names_no_playbook_file_is_one_clear_error(
    folder: Path, value: str, error: str
) -> None:
    (folder / "sub").mkdir()
    errors = errors_of(folder, FIXTURE.replace("reload: w.v2.sop", value))
    assert len(errors) == 1 and error in errors[0], errors


def test_a_reload_line_in_a_jsonl_timeline_says_where_reloads_go(folder: Path) -> None:
    (folder / "w.jsonl").write_text(
        '{"sopdsl": "timeline", "start": "2026-03-02 09:00", "groups": [{"id": "g1"}]}\n'
        '{"kind": "join", "member": "m1", "group": "g1", "at": "2026-03-02 10:00"}\n'
        '{"at": "2026-03-03 10:00", "reload": "w.v2.sop"}\n',
        encoding="utf-8",
    )
    code, output = sopdsl("simulate", str(folder / "w.sop"), "--timeline", str(folder / "w.jsonl"))
    assert code != 0
    assert "w.jsonl:3" in output and "a JSONL timeline cannot load another plan version" in output
    assert "YAML fixture" in output


def test_an_expectation_about_no_one_in_particular_does_not_list_every_plan_change(folder: Path) -> None:
    write(
        folder,
        "w.yaml",
        FIXTURE.replace(
            "  - {plan_change: moves, never: true}", "  - {action: send, template: day2, count: 5}"
        ),
    )
    [result] = run_tests([folder / "w.yaml"]).results
    [failed] = [o for o in result.outcomes if not o.passed]
    assert failed.nearest and not [line for line in failed.nearest if "plan change" in line]


SCOPED = """
timezone "Asia/Shanghai"
template hello = "欢迎 {{ member.name }}"
playbook welcome {
    in groups tagged "normal"
    on member joins
    do { send hello to member }
}
"""

SCOPED_FIXTURE = """
start: 2026-03-02 09:00
end: 2026-03-04 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}
  - {at: 2026-03-03 10:00, reload: w.v2.sop}
  - {at: 2026-03-03 11:00, kind: join, member: m2, group: g1}
expect:
  - {action: send, template: hello, member: m1, never: true}
  - {action: send, template: hello, member: m2, at: 2026-03-03 11:00}
"""


def test_a_reload_that_newly_declares_a_known_group_puts_its_tags_in_force(tmp_path: Path) -> None:
    # g1 was known (from the fixture) before the new version declared it `tagged "normal"`.
    write(tmp_path, "w.sop", SCOPED)
    write(tmp_path, "w.v2.sop", SCOPED + '\ngroup g1 "骑友群" { tagged "normal" }\n')
    write(tmp_path, "w.yaml", SCOPED_FIXTURE)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 0, output
    assert output.splitlines()[-1] == "2 passed, 0 failed"
