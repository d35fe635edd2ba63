"""A fixture's members and groups are held to the live service's limits (`sopdsl.limits`): an id
or a tag over 256 characters, a name holding an escape, a text attribute over 4,096 characters
passed `sopdsl test` and were refused when the playbooks went live. Each now stops the fixture,
located at the field, in the words the live service answers with."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.testing import run_tests
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.live.record_limits import RecordError, check_group, check_member

PLAYBOOK = """\
timezone "Asia/Shanghai"
attribute city: text
template hi = "欢迎"
playbook p { on member joins do { send hi to member } }
"""

LONG = "t" * 300


def _fixture(tmp_path: Path, group: str, member: str) -> Path:
    (tmp_path / "p.sop").write_text(PLAYBOOK, encoding="utf-8")
    fixture = tmp_path / "p.yaml"
    fixture.write_text(
        "start: 2026-03-02 09:00\n"
        "end: 2026-03-03 00:00\n"
        "groups:\n"
        f"  - {group}\n"
        "members:\n"
        f"  - {member}\n"
        "events:\n"
        "  - {at: 2026-03-02 10:00, kind: join, member: m2, group: g1}\n",
        encoding="utf-8",
    )
    return fixture


@pytest.mark.parametrize(
    ("group", "member", "said", "column"),
    [
        (
            "{id: g1}",
            f"{{id: m1, groups: [g1], tags: [vip, {LONG}]}}",
            "members.0.tags.1: tags.1 is 300 characters long; ids are at most 256",
            40,
        ),
        (
            "{id: g1}",
            '{id: m1, groups: [g1], name: "A\\e[31mB"}',
            "members.0.name: name holds a control character (\\u001b); names hold none but a line break",
            28,
        ),
        (
            "{id: g1}",
            f"{{id: m1, groups: [g1], channel: {LONG}}}",
            "members.0.channel: channel is 300 characters long; ids are at most 256",
            28,
        ),
        (
            "{id: g1}",
            f"{{id: m1, groups: [g1, {LONG}]}}",
            "members.0.groups.1: groups.1 is 300 characters long; ids are at most 256",
            27,
        ),
        (
            "{id: g1}",
            f"{{id: m1, groups: [g1], attributes: {{city: {'c' * 5000}}}}}",
            "members.0.attributes.city: attributes.city is 5000 characters long; a text attribute is at most 4096",
            41,
        ),
        (
            "{id: g1}",
            f"{{id: m1, groups: [g1], attributes: {{{LONG}: x}}}}",
            f"members.0.attributes.{LONG}: the name of one of attributes is 300 characters long; ids are at most 256",
            41,
        ),
        (
            '{id: g1, operator: "小\\n美"}',
            "{id: m1, groups: [g1]}",
            "groups.0.operator: operator holds a control character (\\n); names of staff hold none",
            14,
        ),
        (
            f"{{id: g1, tags: [{LONG}]}}",
            "{id: m1, groups: [g1]}",
            "groups.0.tags.0: tags.0 is 300 characters long; ids are at most 256",
            21,
        ),
    ],
)
def test_a_member_or_group_the_live_service_would_refuse_stops_the_fixture_located(
    tmp_path: Path, group: str, member: str, said: str, column: int
) -> None:
    fixture = _fixture(tmp_path, group, member)
    report = run_tests([fixture])
    assert report.exit_code == 2
    (result,) = report.results
    line = 4 if said.startswith("groups") else 6
    assert len(result.errors) == 1 and said in result.errors[0], result.errors
    assert f"p.yaml:{line}:{column}:" in result.errors[0]
    simulated = CliRunner().invoke(main, ["simulate", str(tmp_path / "p.sop"), "--timeline", str(fixture)])
    assert simulated.exit_code == 1 and said in simulated.output


def test_the_dry_run_says_what_the_live_service_says(tmp_path: Path) -> None:
    # One definition: the fixture's message is the admin API's own for the same record.
    fixture = _fixture(tmp_path, "{id: g1}", f"{{id: m1, groups: [g1], tags: [{LONG}]}}")
    (result,) = run_tests([fixture]).results
    with pytest.raises(RecordError) as refused:
        check_member(MemberRecord("m1", groups=("g1",), tags=(LONG,)))
    assert f"members.0.tags.0: {refused.value.reason}" in result.errors[0]
    with pytest.raises(RecordError, match="holds a control character"):
        check_group(GroupRecord("g1", name="a\x1bb"))


def test_a_member_within_every_limit_runs(tmp_path: Path) -> None:
    # At the limits exactly, and a line break in a member's name (a message renders it as a line).
    fixture = _fixture(
        tmp_path,
        f"{{id: g1, name: {'n' * 256}, tags: [{'t' * 256}]}}",
        f"{{id: {'m' * 256}, groups: [g1], name: 'a\n\n  b', attributes: {{city: {'c' * 4096}}}}}",
    )
    report = run_tests([fixture])
    assert report.exit_code == 0 and report.results[0].errors == []
