"""SOP703 for a campaign (`active from … until …`): the calendars are measured inside the window,
on the days of the group's own zone, so the weekday the message names is the campaign's."""

from __future__ import annotations

import textwrap

import pytest

import sopdsl
from sopdsl.diagnostics import Diagnostic
from sopdsl.plan.analysis import analyse

CAMPAIGN = """
timezone "Asia/Shanghai"
template hi = "你好"
policy {
    at most 2 sends per group per day
}
playbook sale {
    in groups tagged "normal"
    active from FROM until UNTIL
    at every day at 00:30: send hi to group
    at every day at 12:00: send hi to group
    at every day at 23:30: send hi to group
}
"""


def diagnose(start: str, end: str) -> list[Diagnostic]:
    text = textwrap.dedent(CAMPAIGN).replace("FROM", start).replace("UNTIL", end)
    return analyse(sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "inline.sop"))))


@pytest.mark.parametrize(
    ("start", "end", "weekday"),
    [
        # Midnight in Shanghai is 16:00 UTC the day before: the 00:30 and 23:30 sends fall on two
        # UTC dates but on one local Thursday.
        ("2027-03-04 00:00", "2027-03-05 00:00", "Thursday"),
        # A Saturday late in its month, past four weeks from the month's first day.
        ("2027-03-27 00:00", "2027-03-28 00:00", "Saturday"),
        # A window opening just before midnight: only the next day holds all three sends.
        ("2027-03-09 23:00", "2027-03-11 00:00", "Wednesday"),
    ],
)
def test_sop703_names_the_campaigns_weekday(start: str, end: str, weekday: str) -> None:
    found = diagnose(start, end)
    assert [d.code for d in found] == ["SOP703"]
    assert f'3 sends in a group tagged "normal" on a {weekday};' in found[0].message


def test_sends_outside_the_campaign_window_are_not_counted() -> None:
    # From 00:00 to 23:00 of one day: the 23:30 send never goes out, two fit the cap.
    assert diagnose("2027-03-04 00:00", "2027-03-04 23:00") == []
