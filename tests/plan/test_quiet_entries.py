"""SOP705: a calendar entry whose sends fire inside the quiet hours every time it fires, which
the engine holds until they end; `sopdsl check` warns at the entry, and only where the time is
known ahead (calendars, never events)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

import sopdsl
from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.plan.analysis import analyse

HEAD = """
timezone "Asia/Shanghai"
calendar sale_end "大促结束" = on 2026-11-12 at 22:00
calendar monday_late = every monday at 23:00
template remind "大促提醒" = "大促明晚结束"
policy {
    quiet hours 22:00 - 08:00
}
"""


def quiet(body: str, head: str = HEAD) -> list[Diagnostic]:
    """The SOP705 warnings of a program: `head`, then one playbook in groups tagged "sale"."""
    text = (
        head + 'playbook p {\n    in groups tagged "sale"\n' + textwrap.indent(textwrap.dedent(body), "    ")
    )
    loaded = sopdsl.load_text(text + "}\n", "inline.sop")
    return [d for d in analyse(sopdsl.compile_program(sopdsl.check(loaded))) if d.code == "SOP705"]


def test_a_reminder_offset_into_the_night_is_warned_with_when_and_until() -> None:
    (found,) = quiet("at sale_end - 24 hours: send remind to group\n")
    assert found.severity is Severity.WARNING
    assert found.span.line == 11
    assert found.message == (
        "this calendar entry fires at 22:00 on 2026-11-11, inside the quiet hours 22:00 - 08:00: "
        "the engine holds its send of 'remind' until 08:00 the next day"
    )
    assert found.hint is not None and "08:00" in found.hint and "outside 22:00 - 08:00" in found.hint


def test_fixed_times_and_calendar_offsets_that_always_land_in_quiet_hours() -> None:
    held = {
        "at every monday at 23:00: send remind to group": "fires at 23:00 every time",
        "at every day at 07:30: send remind to group": "until 08:00 the same day",
        "at monday_late - 1 day: send remind to group": "fires at 23:00 every time",
        "at monday_late + 1 day at 06:00: send remind to group": "fires at 06:00 every time",
        "at every day at 23:00 for each member: send remind to member": "fires at 23:00",
    }
    for line, said in held.items():
        (found,) = quiet(line + "\n")
        assert said in found.message, line


def test_entries_that_go_out_as_planned_are_not_warned() -> None:
    for line in (
        "at sale_end - 25 hours: send remind to group",  # 21:00
        "at monday_late - 2 hours: send remind to group",  # 21:00
        "at sale_end - 1 day at 08:00: send remind to group",  # the end of the quiet hours
        'at every day at 23:00: tag group "night"',  # quiet hours hold only sends
    ):
        assert quiet(line + "\n") == [], line
    # Without quiet hours nothing is held.
    assert (
        quiet("at monday_late: send remind to group\n", HEAD.replace("quiet hours 22:00 - 08:00", "")) == []
    )


def test_only_every_firing_held_is_warned() -> None:
    # Some firings at 21:00, some at 23:00: the entry's time is not wrong every time.
    head = HEAD.replace(
        "calendar monday_late = every monday at 23:00", "calendar two = every day at 21:00, 23:00"
    )
    assert quiet("at two: send remind to group\n", head) == []
    # A series in exact hours walks round the clock.
    head = HEAD + "calendar flash = every 5 hours from 2026-01-01 23:00\n"
    assert quiet("at flash: send remind to group\n", head) == []


def test_sends_on_an_event_or_after_a_wait_are_not_judged() -> None:
    assert quiet("on member joins\ndo: send remind to member\n") == []
    # The send goes out at 09:00, ten hours after the entry fires at 23:00.
    assert quiet("at every day at 23:00 {\n    wait 10 hours\n    send remind to group\n}\n") == []


def test_an_entry_timed_for_work_quiet_hours_do_not_hold_is_not_warned() -> None:
    # A nightly count at 23:59 (K6): the time is the count's; the reminder waiting for the
    # morning is the policy at work, and nothing could say so in the file.
    body = 'at every day at 23:59 {\n    tag group "rolled"\n    send remind to group\n}\n'
    assert quiet(body) == []
    (found,) = quiet("at every day at 23:59 {\n    send remind to group\n    send remind to group\n}\n")
    assert "its send of 'remind'" in found.message


def test_zones_are_each_groups_own_and_named_when_they_differ() -> None:
    zones = """
group bj "北京群" { tagged "sale" }
group ny "纽约群" { tagged "sale" timezone "America/New_York" }
"""
    # 02:30 every day: always inside 02:00 - 03:00 in Beijing, but on the night New York springs
    # forward 02:30 does not exist there and the engine fires at 03:00, outside the quiet hours.
    head = HEAD.replace("22:00 - 08:00", "02:00 - 03:00") + zones
    (found,) = quiet("at every day at 02:30: send remind to group\n", head)
    assert "every time in bj (Asia/Shanghai; not in ny)" in found.message
    assert "until 03:00 the same day" in found.message
    # Held in every zone: no zone is named.
    (found,) = quiet("at every day at 23:00: send remind to group\n", HEAD + zones)
    assert "fires at 23:00 every time, inside" in found.message


def test_check_prints_the_warning_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "sale.sop"
    path.write_text(HEAD + "playbook p {\n    at sale_end - 24 hours: send remind to group\n}\n", "utf-8")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "sale.sop:10:5: warning[SOP705]" in result.output
    assert "0 error(s), 1 warning(s)" in result.output
