"""`sopdsl why` on a coupon's expiry kept by `set` (tests/engine_cases/coupon_due.sop): the reminder
told at the day the last grant set, a member whose `set` failed told that the day is not set, and
one who ordered told by the reminder's `when`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

CASES = Path(__file__).parent.parent / "engine_cases"


def why(member: str) -> str:
    args = ["why", member, str(CASES / "coupon_due.sop"), "--timeline", str(CASES / "coupon_due.yaml")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_reminder_is_told_on_the_day_the_last_grant_set() -> None:
    out = why("laowang")
    assert "2026-03-16 10:00  1 day before member.coupon_due at 10:00 (line 29) → started" in out
    assert "2026-03-08" not in out  # the first coupon's day, moved by the second grant


def test_a_member_whose_set_failed_is_told_the_day_is_not_set() -> None:
    out = why("ahua")
    assert "set coupon_due (line 16)  [failed: LookupError: no coupon was granted in this flow" in out
    assert out.endswith(
        "  no trigger of it fired for ahua: 1 day before member.coupon_due at 10:00\n"
        "  (member.coupon_due is not set at the end of the run)\n"
    )


def test_a_reminder_its_when_held_back_is_told_by_its_condition_alone() -> None:
    out = why("xiaoyu")  # ordered before the day: the trigger fired, the `when` said no
    assert "not started: its `when` condition was false" in out
    assert "at the end of the run" not in out
