"""A fixture's events are checked as the live service checks what it is sent: an event it would
refuse (an undeclared custom event, a declared field missing or misspelt, an amount as text)
stops the fixture, located, instead of being replayed as if it could happen."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.testing import run_tests

PLAYBOOK = """\
timezone "Asia/Shanghai"
event complaint "投诉" { text: text }
playbook p "投诉处理" {
    on event complaint
    do { assign "{{ member.name }} 投诉：{{ event.text }}" to operator within 2 hours }
}
"""

HEAD = """\
start: 2026-03-02 09:00
end: 2026-03-03 00:00
groups:
  - {id: g1, operator: 小美}
members:
  - {id: m1, groups: [g1]}
events:
"""


def _write(tmp_path: Path, event: str) -> Path:
    (tmp_path / "p.sop").write_text(PLAYBOOK, encoding="utf-8")
    fixture = tmp_path / "p.yaml"
    fixture.write_text(
        HEAD + f"  - {{at: 2026-03-02 10:00, member: m1, group: g1, {event}}}\n", encoding="utf-8"
    )
    return fixture


@pytest.mark.parametrize(
    ("event", "said"),
    [
        (
            "kind: custom, name: complaint, data: {txt: 慢}",
            "events.0.data.text: custom event 'complaint' needs",
        ),
        ("kind: custom, name: complain, data: {text: 慢}", "events.0.name: unknown custom event 'complain'"),
        (
            "kind: order, data: {amount: '99'}",
            "events.0.data.amount: event field 'data.amount' should be number",
        ),
    ],
)
def test_an_event_the_live_service_would_refuse_stops_the_fixture(
    tmp_path: Path, event: str, said: str
) -> None:
    report = run_tests([_write(tmp_path, event)])
    assert report.exit_code == 2
    (result,) = report.results
    assert len(result.errors) == 1 and said in result.errors[0] and "p.yaml:8:" in result.errors[0]
    simulated = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "p.yaml")]
    )
    assert simulated.exit_code == 1 and said in simulated.output


def test_an_event_the_live_service_takes_runs(tmp_path: Path) -> None:
    report = run_tests([_write(tmp_path, "kind: custom, name: complaint, data: {text: 发货太慢}")])
    assert report.exit_code == 0 and report.results[0].errors == []


def test_a_group_neither_the_fixture_nor_the_playbooks_declare_is_warned_of_with_did_you_mean(
    tmp_path: Path,
) -> None:
    # A typo (`ridrs1`) made a group without tags, where no playbook for tagged groups runs.
    (tmp_path / "p.sop").write_text(PLAYBOOK, encoding="utf-8")
    fixture = tmp_path / "p.yaml"
    fixture.write_text(
        HEAD.replace("groups: [g1]", "groups: [g2]")
        + "  - {at: 2026-03-02 10:00, kind: join, member: m2, group: g3}\n"
        + "  - {at: 2026-03-02 10:05, kind: join, member: m3, group: g3}\n",
        encoding="utf-8",
    )
    (result,) = run_tests([fixture]).results
    assert result.errors == [] and len(result.warnings) == 2  # once a group
    assert "members.0.groups: group 'g2' is not in the fixture's groups" in result.warnings[0]
    assert "events.0.group: group 'g3'" in result.warnings[1] and "did you mean 'g1'?" in result.warnings[1]


def test_a_member_expectation_on_a_post_to_the_group_shows_it_and_says_to_expect_the_group(
    tmp_path: Path,
) -> None:
    # It showed no nearest actions at all: a post to the group names no member.
    (tmp_path / "p.sop").write_text(
        'timezone "Asia/Shanghai"\ntemplate gw = "欢迎"\nplaybook p { on member joins do { send gw to group } }\n',
        encoding="utf-8",
    )
    fixture = tmp_path / "p.yaml"
    fixture.write_text(
        HEAD
        + "  - {at: 2026-03-02 10:00, kind: join, member: m2, group: g1}\n"
        + "expect:\n  - {action: send, template: gw, member: m2, at: 2026-03-02 10:00}\n",
        encoding="utf-8",
    )
    (result,) = run_tests([fixture]).results
    [outcome] = result.outcomes
    assert not outcome.passed
    assert outcome.nearest == [
        "2026-03-02T10:00+08:00 send gw -> g1",
        "(a post to the group names no member: expect it with `group: g1`)",
    ]


def test_a_declared_field_misspelt_is_shown_at_the_key_written_with_the_one_meant(tmp_path: Path) -> None:
    # `txt` for `text`: the error named only the field missing, at the start of `data`.
    report = run_tests([_write(tmp_path, "kind: custom, name: complaint, data: {txt: 慢}")])
    (result,) = report.results
    (error,) = result.errors
    assert "p.yaml:8:89: error[SOP602]: events.0.data.text: custom event 'complaint' needs" in error
    assert "hint: the event gives 'txt': did you mean 'text'?" in error
