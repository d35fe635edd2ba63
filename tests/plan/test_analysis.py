"""Plan-level checks (`sopdsl check` and `sopdsl compile` run them): playbooks that trigger each
other in a loop (SOP701), a content mix below its declared minimum (SOP702, scenario K4) and
calendars bound to exceed a group cap (SOP703)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import sopdsl
from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.plan.analysis import analyse

HEAD = 'timezone "Asia/Shanghai"\ntemplate hi = "你好"\n'

LOOP = """
playbook promote "升级" {
    on member is tagged "buyer"
    REPEAT
    do {
        untag member "buyer"
        tag member "vip"
    }
}
playbook demote "降级" {
    on member is tagged "vip"
    REPEAT
    do {
        untag member "vip"
        tag member "buyer"
    }
}
"""


def diagnose(text: str) -> list[Diagnostic]:
    """The plan-level diagnostics of an inline program."""
    loaded = sopdsl.load_text(HEAD + textwrap.dedent(text), "inline.sop")
    return analyse(sopdsl.compile_program(sopdsl.check(loaded)))


def codes(found: list[Diagnostic]) -> list[tuple[str, Severity]]:
    return [(d.code, d.severity) for d in found]


def test_a_loop_of_playbooks_that_repeat_always_is_an_error() -> None:
    found = diagnose(LOOP.replace("REPEAT", "repeat always"))
    assert codes(found) == [("SOP701", Severity.ERROR)]
    assert "promote → demote → promote" in found[0].message
    assert found[0].span.line == 4  # the first playbook of the loop


def test_a_loop_that_ends_because_a_playbook_runs_once_is_a_warning() -> None:
    assert codes(diagnose(LOOP.replace("REPEAT", ""))) == [("SOP701", Severity.WARNING)]


def test_a_cycle_that_never_takes_a_tag_back_stops_by_itself() -> None:
    # promote tags vip, demote tags buyer again: the member already has it, so nothing fires.
    assert diagnose(LOOP.replace("REPEAT", "repeat always").replace('untag member "buyer"', "")) == []


def test_the_engine_stops_what_the_check_calls_endless() -> None:
    """The check and the engine agree: the loop it flags really runs until the engine's cut-off."""
    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load_text(HEAD + LOOP.replace("REPEAT", "repeat always"), "inline.sop"))
    )
    engine = sopdsl.Engine(plan, start=0)
    engine.add_group("g1")
    engine.add_member("m1", groups=["g1"])
    engine.start()
    engine.feed(sopdsl.Event("tag", 60, member="m1", group="g1", name="buyer"))
    assert len([a for a in engine.log if a.kind == "tag"]) > 10


def test_a_counter_that_reaches_a_value_fires_once_so_is_no_loop() -> None:
    text = """
    counter stars "星星"
    playbook reward {
        on member.stars reaches 3
        repeat always
        do { add 1 to member.stars }
    }
    """
    assert diagnose(text) == []


MIX = """
policy {
    at least 50% of sends tagged "activity" in groups tagged "content"
}
template sale tagged "activity" = "拼团"
template tips tagged "knowledge" = "干货"
playbook week {
    in groups tagged "content"
    at every monday at 20:00: send sale to group
    at every tuesday, wednesday at 20:00: send tips to group
    GROUPS
}
"""


def test_content_mix_below_the_minimum_is_an_error() -> None:
    found = diagnose(MIX.replace("GROUPS", ""))
    assert codes(found) == [("SOP702", Severity.ERROR)]
    # Four sample weeks: 4 sales of 12 sends, judged on a group the rule describes.
    assert "4 of 12" in found[0].message and 'a group tagged "content"' in found[0].message
    assert found[0].span.line == 5  # the policy line


def test_content_mix_at_the_minimum_passes() -> None:
    assert diagnose(MIX.replace("GROUPS", "").replace("tuesday, wednesday", "tuesday")) == []


def test_content_mix_is_judged_per_declared_group() -> None:
    text = (
        MIX.replace("GROUPS", "") + '\ngroup 福田店 { tagged "content" }\ngroup 南山店 { tagged "other" }\n'
    )
    found = diagnose(text)
    assert codes(found) == [("SOP702", Severity.ERROR)]
    assert "group '福田店'" in found[0].message


def test_content_mix_counts_only_what_the_group_reads() -> None:
    """K4 with T2 deployed beside it: a daily note to each group's operator, or a message to each
    member, is not group content; counting it pushed every group below its mix."""
    at_minimum = MIX.replace("GROUPS", "").replace("tuesday, wednesday", "tuesday")
    notes = """
    template digest = "今日数据"
    template hello = "你好"
    playbook daily_figures {
        at every day at 21:30: send digest to operator
        at every day at 10:00 for each member: send hello to member
    }
    """
    assert diagnose(at_minimum + notes) == []
    posts = notes.replace("send digest to operator", "send digest to group")
    found = diagnose(at_minimum + posts)
    assert codes(found) == [("SOP702", Severity.ERROR)]
    assert "4 of 36" in found[0].message  # and what goes into the group still counts


CAP = """
policy {
    at most 2 sends per group per day
}
playbook busy {
    in groups tagged "normal"
    at every monday at 09:00: send hi to group
    at every monday at 12:00: send hi to group
    MORE
}
"""


def test_calendars_that_exceed_a_group_cap_are_flagged() -> None:
    found = diagnose(CAP.replace("MORE", "at every monday at 20:00: send hi to group"))
    assert codes(found) == [("SOP703", Severity.WARNING)]
    assert "3 sends" in found[0].message and "deferred" in found[0].message


def test_calendars_within_the_cap_pass() -> None:
    assert diagnose(CAP.replace("MORE", "at every tuesday at 20:00: send hi to group")) == []


MASS = """
policy {
    at most 4 sends per member per month via mass
}
group g1 { tagged "normal" }
playbook tuesday_tips {
    in groups tagged "normal"
    at every tuesday at 20:00 for each member: send hi to member via mass
}
"""


def test_a_member_cap_per_month_on_a_channel_is_checked_against_the_calendars() -> None:
    # Every Tuesday sends 4 or 5 a month: March 2026 has five Tuesdays, one more than the cap.
    found = diagnose(MASS)
    assert codes(found) == [("SOP703", Severity.WARNING)]
    message = found[0].message
    assert "5 sends via mass to each member of group 'g1'" in message and "March 2026" in message
    assert "allows 4 per month" in message and "deferred" in message
    assert found[0].span.line == 5  # the cap's own line


def test_a_campaign_of_a_later_year_is_measured_in_its_own_months() -> None:
    # The case: every Tuesday of March 2027 (five of them) against four a month via mass.
    march = MASS.replace("at every tuesday at 20:00", "at march").replace(
        "playbook tuesday_tips",
        "calendar march = every tuesday at 20:00 from 2027-03-01 until 2027-03-31\nplaybook tuesday_tips",
    )
    found = diagnose(march)
    assert codes(found) == [("SOP703", Severity.WARNING)]
    assert "5 sends via mass" in found[0].message and "March 2027" in found[0].message
    # Four Tuesdays (February 2027) fit.
    assert diagnose(march.replace("2027-03-01 until 2027-03-31", "2027-02-01 until 2027-02-28")) == []


def test_a_member_cap_counts_only_its_channel_and_its_subject() -> None:
    # The same calendar on another channel, or sent to the group, is not the mass cap's business.
    assert diagnose(MASS.replace("member via mass", "member via moments")) == []
    assert (
        diagnose(MASS.replace("for each member: send hi to member via mass", ": send hi to group via mass"))
        == []
    )
    # Under the cap: every second Tuesday of a month would be 2 or 3.
    assert diagnose(MASS.replace("at most 4 sends", "at most 5 sends")) == []


def test_the_corpus_has_no_plan_level_problems() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["check", str(Path(__file__).parent.parent.parent / "playbooks")])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_check_and_compile_report_a_loop_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "loop.sop"
    path.write_text(HEAD + LOOP.replace("REPEAT", "repeat always"), encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(main, ["check", str(path)])
    assert checked.exit_code == 1
    assert "loop.sop:4:" in checked.output and "error[SOP701]" in checked.output
    compiled = runner.invoke(main, ["compile", str(path), "-o", str(tmp_path / "plan.json")])
    assert compiled.exit_code == 1
    assert "SOP701" in compiled.output
    assert not (tmp_path / "plan.json").exists()
    assert runner.invoke(main, ["explain", "SOP701"]).exit_code == 0


# ---- SOP704: a send made on an event that a cap with `else drop` counts ----

EVENT_SEND = """
template deal tagged "promo" = "秒杀"
policy {
    CAP
}
playbook welcome {
    in groups tagged "normal"
    on member joins
    do: send TEMPLATE to TARGET
}
"""


def _found(cap: str, template: str = "hi", target: str = "group") -> list[tuple[str, Severity]]:
    text = EVENT_SEND.replace("CAP", cap).replace("TEMPLATE", template).replace("TARGET", target)
    return codes(diagnose(text))


def test_a_welcome_a_cap_counts_and_drops_is_flagged_at_the_send() -> None:
    found = diagnose(
        EVENT_SEND.replace("CAP", "at most 3 sends per group per day else drop")
        .replace("TEMPLATE", "hi")
        .replace("TARGET", "group")
    )
    assert codes(found) == [("SOP704", Severity.WARNING)]
    assert found[0].span.line == 11  # the send, not the cap: that is what the member misses
    assert "'hi' is sent on an event" in found[0].message and "cap at line 6" in found[0].message


@pytest.mark.parametrize(
    ("cap", "template", "target"),
    [
        ('at most 3 sends of templates tagged "promo" per group per day else drop', "hi", "group"),
        ("at most 3 sends per group per day", "hi", "group"),  # deferred, not dropped
        ("at most 3 sends per member per day else drop", "hi", "group"),  # a group send, a member cap
        ("at most 3 sends per group per day via mass else drop", "hi", "group"),  # another channel
        ("at most 3 kicks per day", "hi", "group"),
    ],
)
def test_a_cap_that_cannot_drop_the_send_is_quiet(cap: str, template: str, target: str) -> None:
    assert _found(cap, template, target) == []


def test_a_scoped_cap_still_flags_the_sends_it_counts() -> None:
    cap = 'at most 3 sends of templates tagged "promo" per member per day else drop'
    assert _found(cap, "deal", "member") == [("SOP704", Severity.WARNING)]
