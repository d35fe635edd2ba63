"""Dry runs from the outside: `sopdsl simulate` and `sopdsl test`, their output formats, exit
codes and fixture diagnostics, and a log that is the same in every Python process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.testing import run_tests

CASES = Path(__file__).parent.parent / "engine_cases"

PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
policy { quiet hours 22:00 - 08:00 }
playbook welcome {
    on member joins
    do { send welcome to member }
}
"""

PASSING = """
start: 2026-03-01 09:00
end: 2026-03-03 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-01 23:00, kind: join, member: m1, group: g1, data: {name: 张三}}
expect:
  - {action: send, template: welcome, member: m1, at: 2026-03-02 08:00}
"""

FAILING = """
start: 2026-03-01 09:00
end: 2026-03-03 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-01 23:00, kind: join, member: m1, group: g1}
expect:
  - {action: send, template: welcome, member: m1, at: 2026-03-01 23:00}
  - {action: send, template: welcome, member: "<m&1>", note: "a name that needs escaping in XML"}
  - {action: send, template: welcome, member: m1}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def sopdsl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# ---- determinism -----------------------------------------------------------------------------------


def _cli() -> list[str]:
    script = shutil.which("sopdsl", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from sopdsl.cli import main; main()"]


def test_simulate_jsonl_is_byte_identical_under_any_hash_seed() -> None:
    """Sets and dicts of strings iterate in a per-process order; the log must not depend on it."""
    command = [
        *_cli(),
        "simulate",
        str(CASES / "busy.sop"),
        "--timeline",
        str(CASES / "busy.yaml"),
        "--format",
        "jsonl",
        "--explain",
    ]
    runs = [
        subprocess.Popen(
            command,
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in ("0", "1", "4242")
    ]
    outputs = set()
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        outputs.add(out)
    [output] = outputs
    records = [json.loads(line) for line in output.decode().splitlines()]
    # A log worth comparing: many members, tags, a split, deferrals, drops and kicks.
    assert len(records) > 100
    assert {r["status"] for r in records} >= {"done", "dropped"}
    assert {r["kind"] for r in records} >= {"send", "tag", "untag", "kick", "invite"}
    assert any("planned" in r for r in records) and any("arm" in r for r in records)


# ---- sopdsl simulate -------------------------------------------------------------------------------


def test_simulate_jsonl_records(tmp_path: Path) -> None:
    sop = write(tmp_path, "w.sop", PLAYBOOK)
    fixture = write(tmp_path, "w.yaml", PASSING)
    code, output = sopdsl("simulate", str(sop), "--timeline", str(fixture), "--format", "jsonl", "--explain")
    assert code == 0, output
    [line] = output.splitlines()
    record = json.loads(line)
    assert record["at"] == "2026-03-02T08:00:00+08:00"
    assert record["planned"] == "2026-03-01T23:00:00+08:00"
    assert record["reason"] == "quiet hours"
    assert (record["kind"], record["status"], record["member"], record["group"]) == (
        "send",
        "done",
        "m1",
        "g1",
    )
    assert record["template"] == "welcome" and record["text"] == "欢迎 张三"
    assert record["explain"]["line"].endswith("w.sop:6")
    assert record["explain"]["trigger"].endswith("w.sop:5")
    assert len(record["key"]) == 24


def test_simulate_table(tmp_path: Path) -> None:
    sop = write(tmp_path, "w.sop", PLAYBOOK)
    fixture = write(tmp_path, "w.yaml", PASSING)
    code, output = sopdsl("simulate", str(sop), "--timeline", str(fixture))
    assert code == 0
    assert (
        output.strip()
        == "2026-03-02T08:00+08:00 send welcome -> m1 [deferred from 2026-03-01T23:00+08:00: quiet hours]"
    )


def test_simulate_reports_a_bad_fixture_with_its_line(tmp_path: Path) -> None:
    sop = write(tmp_path, "w.sop", PLAYBOOK)
    fixture = write(tmp_path, "w.yaml", PASSING.replace("kind: join", "kind: jion"))
    code, output = sopdsl("simulate", str(sop), "--timeline", str(fixture))
    assert code == 1
    assert "w.yaml:5:" in output and "events.0.kind" in output and "did you mean 'join'?" in output


# ---- sopdsl test: exit codes and report formats ----------------------------------------------------


def test_exit_0_when_every_expectation_holds(tmp_path: Path) -> None:
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 0, output
    assert output.splitlines()[-1] == "1 passed, 0 failed"


def test_exit_1_when_an_expectation_fails(tmp_path: Path) -> None:
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING)
    write(tmp_path, "w.late.yaml", FAILING)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 1, output
    assert (
        "FAIL" in output
        and "expect[0]: expected send template=welcome to member m1 at 2026-03-01 23:00" in output
    )
    # The nearest actual action is shown, so the author sees the send moved to 08:00.
    assert (
        "2026-03-02T08:00+08:00 send welcome -> m1 [deferred from 2026-03-01T23:00+08:00: quiet hours]"
        in output
    )
    assert output.splitlines()[-1] == "2 passed, 2 failed"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad_fixture.yaml", PASSING.replace("kind: join", "kind: jion")),
        ("no_playbook.yaml", PASSING),
        ("broken.yaml", PASSING),
    ],
)
def test_exit_2_when_a_fixture_or_its_playbook_has_errors(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", FAILING)  # a failure elsewhere does not hide the error
    write(tmp_path, "broken.sop", PLAYBOOK.replace("send welcome", "send welcom"))
    write(tmp_path, name, text)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 2, output
    assert f"ERROR {tmp_path / name}" in output or f"ERROR {name}" in output.replace(f"{tmp_path}/", "")
    assert "1 error(s)" in output.splitlines()[-1]


def test_json_report_shape(tmp_path: Path) -> None:
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING)
    write(tmp_path, "w.late.yaml", FAILING)
    write(tmp_path, "w.bad.yaml", PASSING.replace("2026-03-01 23:00", "2026-03-01 25:00"))
    code, output = sopdsl("test", str(tmp_path), "--format", "json")
    assert code == 2
    report = json.loads(output)
    assert set(report) == {"passed", "failed", "errors", "fixtures"}
    assert (report["passed"], report["failed"], report["errors"]) == (2, 2, 1)
    by_name = {Path(f["path"]).name: f for f in report["fixtures"]}
    assert set(by_name) == {"w.yaml", "w.late.yaml", "w.bad.yaml"}
    for entry in report["fixtures"]:
        assert set(entry) == {"path", "errors", "warnings", "failed_actions", "expectations"}
        for expectation in entry["expectations"]:
            assert set(expectation) == {"index", "passed", "message", "nearest", "errors"}
    late = by_name["w.late.yaml"]["expectations"]
    assert [e["passed"] for e in late] == [False, False, True]
    assert late[0]["nearest"] == [
        "2026-03-02T08:00+08:00 send welcome -> m1 [deferred from 2026-03-01T23:00+08:00: quiet hours]"
    ]
    assert by_name["w.bad.yaml"]["expectations"] == []
    assert "events.0.at" in by_name["w.bad.yaml"]["errors"][0]


def test_junit_report_is_valid_xml(tmp_path: Path) -> None:
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING)
    write(tmp_path, "w.late.yaml", FAILING)
    write(tmp_path, "w.bad.yaml", PASSING.replace("kind: join", "kind: jion"))
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    code, _ = sopdsl("test", str(tmp_path), "--junit", str(junit))
    assert code == 2
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")
    assert len(cases) == 5
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    assert len(failures) == 2 and len(errors) == 1
    assert any("<m&1>" in (c.get("name") or "") for c in failures)
    error = errors[0].find("error")
    assert error is not None and "events.0.kind" in (error.get("message") or "")
    assert {Path(c.get("classname") or "").name for c in cases} == {"w.yaml", "w.late.yaml", "w.bad.yaml"}


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    """XML 1.0 cannot carry most control characters even escaped; the report must still parse."""
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING.replace("member: m1, at", 'member: "m\\x07\\x1b1", at'))
    junit = tmp_path / "junit.xml"
    code, _ = sopdsl("test", str(tmp_path), "--junit", str(junit))
    assert code == 1
    [case] = ET.parse(junit).getroot().findall("testcase")
    assert case.find("failure") is not None


# ---- fixture diagnostics: file, line and field -----------------------------------------------------

BAD = """
start: 2026-03-01 09:00
timezone: Asia/Shanghia
staff_completes_tasks_after: 2 hourz
evnets: []
groups:
  - {id: g1}
members:
  - {id: m1, joined: last tuesday}
events:
  - {at: 2026-03-01 10:00, kind: mesage, member: m1, group: g1}
  - kind: join
    member: m2
  - {at: 2026-03-01 25:00, kind: message, member: m1}
expect:
  - {action: sned, member: m1}
"""


def errors_of(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, "w.sop", PLAYBOOK)
    path = write(tmp_path, "w.yaml", text)
    [result] = run_tests([path]).results
    assert not result.outcomes
    return [error.splitlines()[0] for error in result.errors]


def test_fixture_shape_errors_name_file_line_and_field(tmp_path: Path) -> None:
    shown = str(tmp_path / "w.yaml")
    errors = errors_of(tmp_path, BAD)
    assert all(e.startswith(shown) for e in errors)
    found = [e.removeprefix(shown) for e in errors]
    # Every problem at once, in line order: a misspelt field hides none of the bad values.
    assert [int(e.split(":")[1]) for e in found] == [2, 3, 4, 8, 10, 11, 13, 15]
    assert found[2] == ":4:1: error[SOP602]: evnets: unknown field 'evnets'"
    assert found[4].startswith(
        ":10:34: error[SOP602]: events.0.kind: 'mesage' is not one of join, leave, message"
    )
    assert found[5] == ":11:5: error[SOP602]: events.1.at: missing field 'at'"
    assert found[7].startswith(":15:14: error[SOP602]: expect.0.action: 'sned' is not one of send, tag")
    # With a hint where a word looks misspelt.
    write(tmp_path, "w.sop", PLAYBOOK)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 2
    assert "hint: did you mean 'events'?" in output
    assert "hint: did you mean 'message'?" in output
    assert "hint: did you mean 'send'?" in output


def test_fixture_value_errors_name_file_line_and_field(tmp_path: Path) -> None:
    text = BAD.replace("evnets: []\n", "").replace("kind: mesage", "kind: message")
    text = text.replace(
        "  - kind: join\n    member: m2\n", "  - {at: 2026-03-01 11:00, kind: tag, member: m2}\n"
    )
    text = text.replace("action: sned", "action: send")
    errors = [e.removeprefix(str(tmp_path / "w.yaml")) for e in errors_of(tmp_path, text)]
    assert errors == [
        ":2:11: error[SOP602]: timezone: unknown time zone 'Asia/Shanghia' (use an IANA name like Asia/Shanghai)",
        # The units listed are a playbook's now (fixtures read durations as playbooks do), with a did-you-mean.
        ":3:30: error[SOP602]: staff_completes_tasks_after: '2 hourz': unknown unit 'hourz', did you mean 'hours'?"
        " (units are minutes, hours, days, weeks, months, years (or 分钟, 小时, 天, 周, 月, 年))",
        ":7:22: error[SOP602]: members.0.joined: 'last tuesday' is not a time like 2026-03-01 09:00",
        ":10:5: error[SOP602]: events.1.name: a tag event needs a name (the tag, or the custom event's name)",
        ":11:10: error[SOP602]: events.2.at: '2026-03-01 25:00': 25:00 is not a time of day (00:00 to 23:59)",
    ]


def test_fixture_events_must_be_in_time_order_and_after_the_start(tmp_path: Path) -> None:
    text = """
    start: 2026-03-01 09:00
    groups: [{id: g1}]
    events:
      - {at: 2026-03-01 08:00, kind: custom, name: x, member: m0}
      - {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}
      - {at: 2026-03-02 09:00, kind: message, member: m1, group: g1}
      - {at: "2026-03-02T02:30:00+00:00", kind: message, member: m1, group: g1}
      - {at: 2026-03-02 11:00, kind: tag, member: m1}
    """
    errors = [e.removeprefix(str(tmp_path / "w.yaml")) for e in errors_of(tmp_path, text)]
    assert errors == [
        ":4:10: error[SOP602]: events.0.at: 2026-03-01 08:00 is before the start (2026-03-01 09:00), "
        "and a custom event cannot be history (events before the start may be: join, leave, message, order, invite, report, tag, untag, rename)",
        ":6:10: error[SOP602]: events.2.at: 2026-03-02 09:00 is before the event above it (2026-03-02 10:00); list events in time order",
        # 02:30 UTC cannot be ordered against wall times of a zone not yet known. The tag lacks its tag.
        ":8:5: error[SOP602]: events.4.name: a tag event needs a name (the tag, or the custom event's name)",
    ]


def test_fixture_times_are_read_in_the_fixture_zone(tmp_path: Path) -> None:
    text = """
    start: 2026-03-01 09:00
    timezone: America/New_York
    groups: [{id: g1}]
    events:
      - {at: 2026-03-01 20:00, kind: join, member: m1, group: g1}
    expect:
      - {action: send, member: m1, at: 2026-03-01 20:00}
      - {action: send, member: m1, at: "2026-03-02T01:00:00+00:00"}
    """
    write(tmp_path, "w.sop", PLAYBOOK)
    [result] = run_tests([write(tmp_path, "w.yaml", text)]).results
    assert [o.passed for o in result.outcomes] == [True, True]


def test_invalid_yaml_is_located(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "start: 2026-03-01 09:00\nevents:\n  - {at: 2026-03-01 10:00, kind: join\n")
    assert error.startswith(f"{tmp_path / 'w.yaml'}:4:1: error[SOP601]: invalid YAML")


# ---- state expectations ------------------------------------------------------------------------------


def test_a_state_check_sees_everything_up_to_and_including_its_instant(tmp_path: Path) -> None:
    sop = """
    timezone "Asia/Shanghai"
    playbook mark { on member posts repeat always do { wait 1 hour  tag member "answered" } }
    """
    fixture = """
    start: 2026-03-01 09:00
    groups: [{id: g1}]
    members: [{id: m1, groups: [g1]}]
    events:
      - {at: 2026-03-01 10:00, kind: message, member: m1, group: g1}
      - {at: 2026-03-01 11:00, kind: leave, member: m1, group: g1}
    expect:
      - {member: m1, at: 2026-03-01 10:59, in_group: g1, not_tagged: [answered]}
      - {member: m1, at: 2026-03-01 11:00, not_in_group: g1}
      - {member: m1, at: 2026-03-01 12:00, not_tagged: [answered], note: "the wait ended when m1 left"}
      - {member: m1, at: 2026-03-01 12:00, tagged: [answered]}
    """
    write(tmp_path, "w.sop", sop)
    [result] = run_tests([write(tmp_path, "w.yaml", fixture)]).results
    assert not result.errors, result.errors
    assert [o.passed for o in result.outcomes] == [True, True, True, False]
    assert result.outcomes[3].message == "not tagged 'answered' (tags: none)"


CALLS = """
timezone "Asia/Shanghai"
action red_packet "发红包" { to: text, amount: number }
template note = "群快满了"
template hi = "欢迎"
playbook reward {
    on member joins
    when member.referrer is set
    do {
        call red_packet(to = member.referrer, amount = 50)
        send note to operator
        send hi to group
    }
}
"""

CALLS_FIXTURE = """
start: 2026-03-02 09:00
groups:
  - {id: g1, operator: 小美}
members:
  - {id: liu, name: 刘姐, groups: [g1]}
events:
  - {at: 2026-03-02 10:00, kind: join, member: yang, group: g1, data: {inviter: liu}}
expect:
  - {action: call, call: red_packet, member: yang, args: {to: liu, amount: 50}}
  - {action: send, template: note, target: operator, operator: 小美, count: 1}
  - {action: send, template: hi, target: group, group: g1, count: 1}
"""


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("args: {to: liu, amount: 50}", "args: {to: yang, amount: 50}"),  # the wrong recipient
        ("args: {to: liu, amount: 50}", "args: {to: liu, amount: 88}"),
        ("call: red_packet", "call: coupon_push"),
        ("target: operator, operator: 小美", "target: group, operator: 小美"),  # sent to the group instead
        ("operator: 小美", "operator: 阿强"),
    ],
)
def test_calls_targets_and_operators_can_be_expected(tmp_path: Path, good: str, bad: str) -> None:
    write(tmp_path, "w.sop", CALLS)
    write(tmp_path, "w.yaml", CALLS_FIXTURE)
    code, output = sopdsl("test", str(tmp_path / "w.yaml"))
    assert code == 0, output
    write(tmp_path, "w.yaml", CALLS_FIXTURE.replace(good, bad, 1))
    code, output = sopdsl("test", str(tmp_path / "w.yaml"))
    assert code == 1, output
    assert bad.split(",")[0].split(":")[0] in output  # the failure names what was expected


def test_explain_names_the_playbook_version(tmp_path: Path) -> None:
    versioned = PLAYBOOK.replace("    on member joins", '    version "2.3"\n    on member joins')
    sop = write(tmp_path, "w.sop", versioned)
    fixture = write(tmp_path, "w.yaml", PASSING)
    code, output = sopdsl("simulate", str(sop), "--timeline", str(fixture), "--explain")
    assert code == 0, output
    assert "(welcome v2.3: " in output
    code, output = sopdsl("simulate", str(sop), "--timeline", str(fixture), "--format", "jsonl", "--explain")
    assert json.loads(output.splitlines()[0])["explain"]["version"] == "2.3"
    code, output = sopdsl(
        "simulate", str(write(tmp_path, "u.sop", PLAYBOOK)), "--timeline", str(fixture), "--explain"
    )
    assert " v" not in output.split("(welcome")[1].split(":")[0]  # no version declared, none shown


def test_a_folder_s_yaml_files_that_are_not_fixtures_are_left_out(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent.parent
    write(tmp_path, "w.sop", PLAYBOOK)
    write(tmp_path, "w.yaml", PASSING)
    shutil.copy(root / "runtime" / "executors.yaml", tmp_path / "executors.yaml")
    write(tmp_path, "ci.yml", "jobs:\n  test:\n    runs-on: ubuntu-latest\n")
    code, output = sopdsl("test", str(tmp_path))
    assert code == 0, output
    assert "executors" not in output and "ci.yml" not in output
    assert "1 passed, 0 failed" in output
    # A fixture whose playbook is missing is still a fixture, and still an error.
    write(tmp_path, "orphan.yaml", PASSING)
    code, output = sopdsl("test", str(tmp_path))
    assert code == 2
    assert "orphan.sop' does not exist" in output
    # Named on the command line, a file is read as a fixture whatever it holds.
    code, output = sopdsl("test", str(tmp_path / "executors.yaml"))
    assert code == 2
