"""SOP705 for date triggers: `on member.birthday at 23:00` or `on 1 day before
member.coupon_due at 22:30`, whose playbook sends at once, is held by the quiet hours on every
day its date may be; `sopdsl check` warns at the trigger, with its instant made as the engine
makes it (in the file's zone) and held as the engine holds it (in the group's zone)."""

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
attribute birthday: date
attribute coupon_due: date
template remind "提醒" = "你的券快过期了"
policy {
    quiet hours 22:00 - 08:00
}
"""


def quiet(body: str, head: str = HEAD) -> list[Diagnostic]:
    """The SOP705 warnings of a program: `head`, then one playbook, its first line inside the 10th."""
    text = head + "playbook p {\n" + textwrap.indent(textwrap.dedent(body), "    ")
    loaded = sopdsl.load_text(text + "}\n", "inline.sop")
    return [d for d in analyse(sopdsl.compile_program(sopdsl.check(loaded))) if d.code == "SOP705"]


def test_a_birthday_greeting_at_night_is_warned_at_its_trigger() -> None:
    (found,) = quiet("on member.birthday at 23:00\ndo: send remind to member\n")
    assert found.severity is Severity.WARNING
    assert found.span.line == 10
    assert found.message == (
        "this date trigger fires at 23:00 every time, inside the quiet hours 22:00 - 08:00: "
        "the engine holds its send of 'remind' until 08:00 the next day"
    )
    assert found.hint is not None and "outside 22:00 - 08:00" in found.hint


def test_offsets_and_anniversaries_at_a_fixed_time_in_quiet_hours() -> None:
    held = {
        "on 1 day before member.coupon_due at 22:30": "fires at 22:30 every time",
        "on member.birthday at 07:30": "until 08:00 the same day",  # every year
        "on 2 days after member.birthday at 23:59": "fires at 23:59 every time",
        "on 3 hours before member.coupon_due at 01:00": "fires at 22:00 every time",
    }
    for trigger, said in held.items():
        (found,) = quiet(trigger + "\ndo: send remind to member\n")
        assert said in found.message, trigger


def test_triggers_that_go_out_as_planned_or_do_more_are_not_warned() -> None:
    for body in (
        "on 1 day before member.coupon_due at 10:00\ndo: send remind to member\n",
        "on 4 hours before member.coupon_due at 01:00\ndo: send remind to member\n",  # 21:00
        "on member.birthday at 08:00\ndo: send remind to member\n",  # the end of the quiet hours
        # The send goes out after a wait, or the time is the tag's: the policy at work.
        "on member.birthday at 23:00\ndo {\n    wait 10 hours\n    send remind to member\n}\n",
        'on member.birthday at 23:00\ndo {\n    tag member "寿星"\n    send remind to member\n}\n',
        "on member joins\ndo: send remind to member\n",  # an event: no time known ahead
    ):
        assert quiet(body) == [], body
    assert (
        quiet("on member.birthday at 23:00\ndo: send remind to member\n", HEAD.replace("quiet hours", "# "))
        == []
    )


def test_the_instant_is_the_files_and_the_quiet_hours_each_groups() -> None:
    # 23:00 in Shanghai is the morning in New York: the engine holds it in bj's chat only.
    head = (
        HEAD
        + 'group bj "北京群" { tagged "vip" }\ngroup ny "纽约群" { tagged "vip" timezone "America/New_York" }\n'
    )
    (found,) = quiet('in groups tagged "vip"\non member.birthday at 23:00\ndo: send remind to member\n', head)
    assert "fires at 23:00 every time in bj (Asia/Shanghai; not in ny)" in found.message


def test_check_prints_the_warning_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "due.sop"
    body = "playbook p {\n    on 1 day before member.coupon_due at 22:30\n    do: send remind to member\n}\n"
    path.write_text(HEAD + body, "utf-8")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "due.sop:10:5: warning[SOP705]: this date trigger fires at 22:30" in result.output
