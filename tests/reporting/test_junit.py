"""JUnit XML from `sopdsl test --junit`, read back with junitparser: one test case per expectation,
named the same whether it passes, fails or cannot run, so CI keeps each case's history."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from sopdsl.cli import main

PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
template rules = "群规"
policy { quiet hours 22:00 - 08:00 }
playbook welcome {
    on member joins
    do {
        send welcome to member
        tag member "new"
    }
}
"""

FIXTURE = """
start: 2026-03-01 09:00
end: 2026-03-03 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-01 10:00, kind: join, member: m1, group: g1, data: {name: 张三}}
  - {at: 2026-03-01 23:00, kind: join, member: m2, group: g1}
expect:
  - {action: send, template: welcome, member: m1, at: 2026-03-01 10:00}
  - {action: send, template: welcome, member: m2, within: [2026-03-02 08:00, 2026-03-02 09:00]}
  - {action: send, template: welcome, count: 2}
  - {action: send, template: rules, never: true}
  - {member: m1, tagged: [new], not_in_group: g2, at: 2026-03-02 12:00}
"""


def cases(tmp_path: Path, playbook: str) -> tuple[int, list[TestCase]]:
    """Run `sopdsl test` on the fixture with this playbook (in the same place each time, as CI
    would); the test cases of its JUnit report."""
    folder = tmp_path / "ops"
    folder.mkdir(exist_ok=True)
    (folder / "welcome.sop").write_text(textwrap.dedent(playbook), encoding="utf-8")
    (folder / "welcome.yaml").write_text(textwrap.dedent(FIXTURE).lstrip(), encoding="utf-8")
    report = folder / "junit.xml"
    result = CliRunner().invoke(main, ["test", str(folder / "welcome.yaml"), "--junit", str(report)])
    xml: JUnitXml | TestSuite = JUnitXml.fromfile(str(report))  # a lone suite when the root is one
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    return result.exit_code, [case for suite in suites for case in suite]


def outcome(case: TestCase) -> str:
    kinds = {type(r) for r in case.result}
    return "error" if Error in kinds else "failure" if Failure in kinds else "passed"


def test_case_names_are_the_same_when_every_expectation_fails(tmp_path: Path) -> None:
    code, passing = cases(tmp_path, PLAYBOOK)
    assert code == 0
    assert [outcome(c) for c in passing] == ["passed"] * 5
    # Every expectation fails: the other template is sent, with no tag and at a later hour.
    broken = PLAYBOOK.replace(
        'send welcome to member\n        tag member "new"', "wait 1 hour\n        send rules to member"
    )
    code, failing = cases(tmp_path, broken)
    assert code == 1
    assert [outcome(c) for c in failing] == ["failure"] * 5
    assert [c.name for c in failing] == [c.name for c in passing]
    assert [c.name for c in passing] == [
        "expect[0] send template=welcome to member m1 at 2026-03-01 10:00",
        "expect[1] send template=welcome to member m2 between 2026-03-02 08:00 and 2026-03-02 09:00",
        "expect[2] send template=welcome 2 time(s)",
        "expect[3] never send template=rules",
        "expect[4] member m1 tagged new not in group g2 at 2026-03-02 12:00",
    ]
    assert [c.classname for c in failing] == [c.classname for c in passing]
    assert passing[0].classname.endswith("ops/welcome.yaml")
    # The failure says what was expected and what happened instead.
    message = failing[0].result[0].message
    assert message == "expected send template=welcome to member m1 at 2026-03-01 10:00, but it did not happen"


def test_case_names_are_the_same_when_the_playbook_does_not_check(tmp_path: Path) -> None:
    _, passing = cases(tmp_path, PLAYBOOK)
    code, erring = cases(tmp_path, PLAYBOOK.replace("send welcome to", "send welcom to"))
    assert code == 2
    assert [c.name for c in erring] == [c.name for c in passing]
    assert [outcome(c) for c in erring] == ["error"] * 5
    assert "SOP104" in (erring[0].result[0].text or "")
