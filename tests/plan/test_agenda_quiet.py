"""`sopdsl plan` under quiet hours: a send the policy holds back is listed when it really goes
out, marked as moved; what the policy does not hold (a tag, a send outside the hours) stays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from icalendar import Calendar

import sopdsl
from sopdsl.cli import main
from sopdsl.engine.actions import Action
from sopdsl.engine.policy import Delivery
from sopdsl.plan import timeutil
from sopdsl.plan.agenda import agenda

NIGHTLY = """
timezone "Asia/Shanghai"
group bj "北京群" { tagged "normal" }
group ny "纽约群" { tagged "normal" timezone "America/New_York" }
template good_night = "晚安"
policy {
    quiet hours 22:00 - 08:00
}
playbook nightly {
    at every day at 23:00: send good_night to group
    at every day at 21:30: send good_night to group
    at every day at 23:30: tag group "night"
}
"""


def rows(tmp_path: Path, text: str, *args: str) -> list[str]:
    (tmp_path / "nightly.sop").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["plan", str(tmp_path / "nightly.sop"), "--from", "2026-12-07", "--to", "2026-12-07", *args]
    )
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line.startswith("2026")]


def test_plan_shows_a_send_in_quiet_hours_when_it_really_goes(tmp_path: Path) -> None:
    bj = [row for row in rows(tmp_path, NIGHTLY) if "  bj  " in row]
    assert [row[:26] for row in bj] == [
        "2026-12-07 Mon 21:30+08:00",  # before the quiet hours: as planned
        "2026-12-07 Mon 23:30+08:00",  # a tag: quiet hours hold only sends
        "2026-12-08 Tue 08:00+08:00",  # the 23:00 send, at the end of the quiet hours
    ]
    assert bj[0].endswith("send good_night to group")
    assert bj[1].endswith("tag to group")
    assert bj[2].endswith("send good_night to group  (moved by quiet hours from 2026-12-07 Mon 23:00+08:00)")


def test_quiet_hours_are_the_groups_own_zones(tmp_path: Path) -> None:
    ny = [row for row in rows(tmp_path, NIGHTLY) if "  ny  " in row]
    assert "2026-12-08 Tue 08:00-05:00  ny" in "\n".join(ny)
    assert "(moved by quiet hours from 2026-12-07 Mon 23:00-05:00)" in "\n".join(ny)


def test_without_quiet_hours_nothing_moves(tmp_path: Path) -> None:
    plain = rows(tmp_path, NIGHTLY.replace("quiet hours 22:00 - 08:00", "at most 9 sends per group per day"))
    assert not any("moved" in row for row in plain)
    assert any(row.startswith("2026-12-07 Mon 23:00+08:00  bj") for row in plain)


def test_a_daytime_quiet_window_moves_to_its_own_end(tmp_path: Path) -> None:
    lunch = NIGHTLY.replace("22:00 - 08:00", "12:00 - 14:00").replace("at 23:00", "at 12:15")
    bj = [row for row in rows(tmp_path, lunch) if "  bj  " in row]
    assert any(
        row.startswith("2026-12-07 Mon 14:00+08:00")
        and "moved by quiet hours from 2026-12-07 Mon 12:15" in row
        for row in bj
    )


def test_the_ics_event_starts_when_the_send_goes(tmp_path: Path) -> None:
    rows(tmp_path, NIGHTLY, "--ics", str(tmp_path / "n.ics"))
    events = Calendar.from_ical((tmp_path / "n.ics").read_bytes()).walk("VEVENT")
    moved = [e for e in events if "moved by quiet hours" in str(e.get("description"))]
    assert len(moved) == 2  # one per group
    starts = sorted(e.decoded("dtstart").isoformat() for e in moved)
    assert starts == ["2026-12-08T08:00:00+08:00", "2026-12-08T08:00:00-05:00"]


def test_the_plan_and_the_engines_policy_agree() -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(NIGHTLY, "nightly.sop")))
    delivery = Delivery(plan.declarations.policy, {})
    for slot in agenda(plan, dt.date(2026, 12, 7), dt.date(2026, 12, 9)):
        kind = slot.what.split()[0]
        action = Action(slot.time, kind, slot.playbook, "k", group=slot.group, target="group")
        decision = delivery.decide(action, slot.time, timeutil.zone(slot.zone), None)
        assert decision.until == slot.quiet_until, slot
