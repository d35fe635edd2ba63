"""Expectations the run cannot see (`sopdsl.dryrun.fixture_reach`): a fixture without `end`
stops at its last event, so a nudge due a day later never came and `never: true` of it passed
whatever the playbook did; an action expected after the run's end is refused at its value."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

NUDGE = """
timezone "Asia/Shanghai"
template hello = "欢迎 {{ member.name }}"
template nudge = "{{ member.name }}，来打个招呼吧"
playbook welcome {
    on member joins
    do {
        send hello to member
        wait 1 day for member posts else {
            send nudge to member
        }
    }
}
"""

# Afeng joins and says nothing: the nudge comes a day later, at 2026-03-03 10:00.
FIXTURE = """start: 2026-03-02 09:00
groups:
  - {id: riders}
events:
  - {at: 2026-03-02 10:00, kind: join, member: afeng, group: riders, data: {name: 阿峰}}
expect:
  - {action: send, template: hello, member: afeng, count: 1}
  - {action: send, template: nudge, member: afeng, never: true}
"""


def run(tmp_path: Path, fixture: str) -> tuple[int, str]:
    (tmp_path / "welcome.sop").write_text(NUDGE, encoding="utf-8")
    (tmp_path / "welcome.yaml").write_text(fixture, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(tmp_path / "welcome.yaml")])
    return result.exit_code, result.output


def test_a_never_in_a_fixture_without_end_is_refused_at_its_line(tmp_path: Path) -> None:
    code, output = run(tmp_path, FIXTURE)
    assert code == 2, output
    assert (
        "welcome.yaml:8:59: error[SOP602]: expect.1.never: the fixture gives no `end`, so the run " in output
    )
    assert "stops at its last event or state check, 2026-03-02 10:00" in output
    assert "give the run an `end:`" in output
    assert "expect.0" not in output  # a count of 1 still needs the send to have happened: not vacuous


def test_with_an_end_the_same_never_runs_and_fails(tmp_path: Path) -> None:
    code, output = run(tmp_path, FIXTURE.replace("groups:", "end: 2026-03-05 00:00\ngroups:"))
    assert code == 1, output
    assert "expected never send template=nudge to member afeng, but it happened 1 time(s)" in output


def test_a_never_timed_inside_a_run_without_end_runs(tmp_path: Path) -> None:
    timed = FIXTURE.replace("never: true", "within: [2026-03-02 09:00, 2026-03-02 10:00], never: true")
    code, output = run(tmp_path, timed)
    assert code == 0, output


def test_an_action_expected_after_the_end_is_refused(tmp_path: Path) -> None:
    late = FIXTURE.replace("groups:", "end: 2026-03-03 00:00\ngroups:").replace(
        "never: true", "at: 2026-03-03 10:00, never: true"
    )
    code, output = run(tmp_path, late)
    assert code == 2, output
    assert "expect.1.at: 2026-03-03 10:00 is past the run: the run ends at 2026-03-03 00:00" in output


def test_a_window_that_begins_after_the_end_is_refused(tmp_path: Path) -> None:
    late = FIXTURE.replace("groups:", "end: 2026-03-03 00:00\ngroups:").replace(
        "never: true", "within: [2026-03-03 08:00, 2026-03-04 00:00]"
    )
    code, output = run(tmp_path, late)
    assert code == 2, output
    assert "expect.1.within: it begins (2026-03-03 08:00) past the run" in output


def test_a_never_of_a_plan_change_needs_no_end() -> None:
    # Plan changes happen at a reload, which is one of the run's own events: the run sees them.
    from sopdsl.dryrun.fixtures import parse_fixture
    from sopdsl.source import Source

    parse_fixture(
        Source(
            "f.yaml",
            "start: 2026-03-02 09:00\nevents:\n"
            "  - {at: 2026-03-02 15:00, reload: welcome.v2.sop}\n"
            "expect:\n  - {plan_change: ends, never: true}\n",
        )
    )
