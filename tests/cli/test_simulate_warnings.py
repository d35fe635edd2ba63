"""`sopdsl simulate` warns of what the run will quietly make up, on standard error, so the action
log on standard output stays what it was."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

PLAYBOOK = """\
timezone "Asia/Shanghai"
group 北京一群 { tagged "fans" }
template hi "问候" = "你好"
playbook hello "问候" {
    in groups tagged "fans"
    on member posts
    do: send hi to member
}
"""

TIMELINE = """\
start: 2027-01-09 09:00
end: 2027-01-10 00:00
groups:
  - {id: 北京一群, name: 北京粉丝一群, tags: [fans]}
members:
  - {id: m1, name: 张一, groups: [北京一群]}
events:
  - {at: 2027-01-09 10:00, kind: message, member: m1, group: 北京一群}
  - {at: 2027-01-09 11:00, kind: message, member: m1, group: 北京1群}
expect: []
"""


def test_a_misspelt_group_is_warned_of_and_the_log_is_unchanged(tmp_path: Path) -> None:
    # The post in 北京1群 (for 北京一群) starts nothing: the run made the group without tags.
    (tmp_path / "p.sop").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(TIMELINE, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.yaml")]
    )
    assert result.exit_code == 0
    assert result.stdout == "2027-01-09T10:00+08:00 send hi -> m1\n"
    assert "t.yaml:9:55: warning[SOP602]: events.1.group: group '北京1群' is not in the fixture's groups" in (
        result.stderr
    )
    assert "hint: did you mean '北京一群'?" in result.stderr
