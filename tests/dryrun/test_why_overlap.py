"""`sopdsl why` when two runs of one playbook overlap for a member: each run's steps under its own
start, runs in order of their start, instead of both interleaved by time."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

REBUY = """\
timezone "Asia/Shanghai"
template rebuy = "{{ member.name }}，上次买的快用完了吧？"
template thanks = "谢谢惠顾"
playbook rebuy "3天复购提醒" {
    in private chats
    on member orders
    repeat always
    do {
        send thanks to member
        wait 3 days for member posts else {
            send rebuy to member
        }
    }
}
"""

# Two orders a day apart: the first run still waits when the second starts.
TWO_ORDERS = """\
start: 2026-03-01 09:00
end: 2026-03-10 00:00
members:
  - {id: xiaolin, name: 小林, contact: true}
events:
  - {at: 2026-03-02 11:00, kind: order, member: xiaolin, data: {amount: 59}}
  - {at: 2026-03-03 11:00, kind: order, member: xiaolin, data: {amount: 59}}
"""

TIMED_OUT = "it did not come in time, so the `else` at line 11"


def why(tmp_path: Path, fixture: str) -> list[str]:
    (tmp_path / "r.sop").write_text(REBUY, encoding="utf-8")
    (tmp_path / "r.yaml").write_text(fixture, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["why", "xiaolin", str(tmp_path / "r.sop"), "--timeline", str(tmp_path / "r.yaml")]
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_overlapping_runs_are_told_run_by_run(tmp_path: Path) -> None:
    lines = why(tmp_path, TWO_ORDERS)
    assert lines[3:] == [
        "  run 1: 2026-03-02 11:00  on order (line 6) → started",
        "    2026-03-02 11:00  send thanks (line 9)",
        f"    2026-03-05 11:00  wait 3 days for message (line 10), from 2026-03-02 11:00: {TIMED_OUT}",
        "    2026-03-05 11:00  send rebuy (line 11)",
        "  run 2: 2026-03-03 11:00  on order (line 6) → started",
        "    2026-03-03 11:00  send thanks (line 9)",
        f"    2026-03-06 11:00  wait 3 days for message (line 10), from 2026-03-03 11:00: {TIMED_OUT}",
        "    2026-03-06 11:00  send rebuy (line 11)",
    ]


def test_a_decision_that_started_nothing_stays_between_the_runs_by_its_time(tmp_path: Path) -> None:
    # An order in a group is out of the playbook's scope (private chats): told where it happened,
    # between the runs, belonging to neither.
    fixture = TWO_ORDERS.replace("members:", "groups: [{id: g1}]\nmembers:").replace(
        "  - {at: 2026-03-03 11:00",
        "  - {at: 2026-03-02 15:00, kind: order, member: xiaolin, group: g1, data: {amount: 9}}\n"
        "  - {at: 2026-03-03 11:00",
    )
    lines = why(tmp_path, fixture)
    runs = [i for i, line in enumerate(lines) if line.startswith("  run ")]
    assert [lines[i][:9] for i in runs] == ["  run 1: ", "  run 2: "]
    out_of_scope = next(i for i, line in enumerate(lines) if "not started: out of scope" in line)
    assert lines[out_of_scope].startswith("  2026-03-02 15:00  on order (line 6) → not started: out of scope")
    # After run 1's steps (all of them, though they go on past 15:00), before run 2's start.
    assert runs[0] + 3 < out_of_scope < runs[1]


def test_one_run_is_told_as_before_without_a_label(tmp_path: Path) -> None:
    lines = why(tmp_path, TWO_ORDERS.replace("  - {at: 2026-03-03 11:00", "  # - {at: 2026-03-03 11:00"))
    assert lines[3:] == [
        "  2026-03-02 11:00  on order (line 6) → started",
        "    2026-03-02 11:00  send thanks (line 9)",
        f"    2026-03-05 11:00  wait 3 days for message (line 10), from 2026-03-02 11:00: {TIMED_OUT}",
        "    2026-03-05 11:00  send rebuy (line 11)",
    ]


def test_runs_one_after_the_other_keep_time_order_without_labels(tmp_path: Path) -> None:
    # The second order after the first run ended: time order already reads run by run.
    lines = why(tmp_path, TWO_ORDERS.replace("2026-03-03 11:00", "2026-03-07 11:00"))
    assert not any(line.startswith("  run ") for line in lines)
    assert lines[3:8] == [
        "  2026-03-02 11:00  on order (line 6) → started",
        "    2026-03-02 11:00  send thanks (line 9)",
        f"    2026-03-05 11:00  wait 3 days for message (line 10), from 2026-03-02 11:00: {TIMED_OUT}",
        "    2026-03-05 11:00  send rebuy (line 11)",
        "  2026-03-07 11:00  on order (line 6) → started",
    ]
