"""The table lines of `sopdsl simulate` and `sopdsl test`: every time with its UTC offset, and an
action that did not go as planned with the time it was planned for and why; `reason` in the
JSON log says only that."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main


def simulate(tmp_path: Path, playbook: str, fixture: str, *options: str) -> list[str]:
    (tmp_path / "p.sop").write_text(textwrap.dedent(playbook), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(textwrap.dedent(fixture).lstrip(), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["simulate", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "p.yaml"), *options]
    )
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


WELCOME = """
timezone "{zone}"
template hi = "欢迎"
policy {{ {policy} }}
playbook welcome {{ on member joins  repeat always  do {{ send hi to member }} }}
"""


def test_the_hour_a_clock_goes_back_shows_which_of_its_two_offsets(tmp_path: Path) -> None:
    lines = simulate(
        tmp_path,
        WELCOME.format(zone="America/New_York", policy=""),
        """
        start: 2026-10-31 12:00
        end: 2026-11-02 00:00
        groups: [{id: g1}]
        events:
          - {at: "2026-11-01T01:30:00-04:00", kind: join, member: m1, group: g1}
          - {at: "2026-11-01T01:30:00-05:00", kind: join, member: m2, group: g1}
        """,
    )
    assert lines == [
        "2026-11-01T01:30-04:00 send hi -> m1",
        "2026-11-01T01:30-05:00 send hi -> m2",
    ]


def test_a_deferred_action_shows_when_it_was_planned_and_which_cap_moved_it(tmp_path: Path) -> None:
    lines = simulate(
        tmp_path,
        WELCOME.format(
            zone="Asia/Shanghai", policy="quiet hours 22:00 - 08:00  at most 1 sends per member per day"
        ),
        """
        start: 2026-03-01 09:00
        end: 2026-03-04 00:00
        groups: [{id: g1}, {id: g2}]
        events:
          - {at: 2026-03-01 23:00, kind: join, member: m1, group: g1}
          - {at: 2026-03-02 12:00, kind: join, member: m1, group: g2}
        """,
    )
    assert lines == [
        "2026-03-02T08:00+08:00 send hi -> m1 [deferred from 2026-03-01T23:00+08:00: quiet hours]",
        "2026-03-03T08:00+08:00 send hi -> m1 [deferred from 2026-03-02T12:00+08:00: cap: at most 1 sends per member per day, then quiet hours]",
    ]


def test_a_dropped_action_shows_why_and_when_it_was_planned(tmp_path: Path) -> None:
    lines = simulate(
        tmp_path,
        WELCOME.format(
            zone="Asia/Shanghai",
            policy="quiet hours 22:00 - 08:00  at most 1 sends per group per day else drop",
        ),
        """
        start: 2026-03-01 09:00
        end: 2026-03-03 00:00
        groups: [{id: g1}]
        events:
          - {at: 2026-03-01 10:00, kind: join, member: m1, group: g1}
          - {at: 2026-03-01 11:00, kind: join, member: m2, group: g1}
          - {at: 2026-03-01 23:00, kind: join, member: m3, group: g1}
          - {at: 2026-03-01 23:30, kind: leave, member: m3, group: g1}
        """,
    )
    assert lines == [
        "2026-03-01T10:00+08:00 send hi -> m1",
        "2026-03-01T11:00+08:00 send hi -> m2 [dropped: cap: at most 1 sends per group per day]",
        "2026-03-02T08:00+08:00 send hi -> m3 [dropped: the member left the group; planned 2026-03-01T23:00+08:00]",
    ]


def test_reason_means_only_why_an_action_did_not_go_as_planned(tmp_path: Path) -> None:
    """A kick's `because` text is the playbook's, in its own field; `reason` is the policy's."""
    playbook = """
    timezone "Asia/Shanghai"
    policy { never kick members tagged "core" }
    playbook spam { on member joins  do { kick member because "广告号" } }
    """
    fixture = """
    start: 2026-03-01 09:00
    end: 2026-03-02 00:00
    groups: [{id: g1}]
    members: [{id: boss, tags: [core]}]
    events:
      - {at: 2026-03-01 10:00, kind: join, member: m1, group: g1}
      - {at: 2026-03-01 11:00, kind: join, member: boss, group: g1}
    """
    done, blocked = (json.loads(line) for line in simulate(tmp_path, playbook, fixture, "--format", "jsonl"))
    assert (done["status"], done["because"]) == ("done", "广告号") and "reason" not in done
    assert (blocked["status"], blocked["because"]) == ("blocked", "广告号")
    assert blocked["reason"] == "protected member (tagged core)"
