"""`sopdsl plan`: the group calendar printed from a plan, and its iCalendar file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

CLASS = """
timezone "Asia/Shanghai"
group edu_bj "北京晚课群" { tagged "edu" }
group edu_ny "纽约晚课群" { tagged "edu" timezone "America/New_York" }
group chat "闲聊群" { tagged "normal" }
calendar tuesday_class = every tuesday at 20:00
template preview = "明晚八点上课，海报见下"
template replay = "昨晚课程回放已上传"
playbook class_cadence {
    in groups tagged "edu"
    at tuesday_class - 1 day: send preview to group
    at tuesday_class + 1 day at 10:00: send replay to group
}
"""


def test_plan_prints_each_groups_calendar_in_its_zone(tmp_path: Path) -> None:
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    ics = tmp_path / "class.ics"
    result = CliRunner().invoke(
        main, ["plan", str(source), "--from", "2026-12-07", "--to", "2026-12-10", "--ics", str(ics)]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("2026")]
    assert "2026-12-07 Mon 20:00  edu_bj" in "\n".join(lines)
    assert "2026-12-07 Mon 20:00  edu_ny" in "\n".join(lines)  # 20:00 New York time, not Beijing
    assert "2026-12-09 Wed 10:00  edu_bj" in "\n".join(lines)
    assert not any("chat" in line for line in lines)
    assert len(lines) == 4
    text = ics.read_text(encoding="utf-8")
    assert text.count("BEGIN:VEVENT") == 4
    # Monday 20:00 in New York is Tuesday 01:00 UTC.
    assert "DTSTART:20261208T010000Z" in text


def test_plan_rejects_a_backwards_range(tmp_path: Path) -> None:
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-12-10", "--to", "2026-12-07"])
    assert result.exit_code == 2
