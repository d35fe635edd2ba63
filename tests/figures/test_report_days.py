"""`sopdsl report --from/--to`: the per-day parts cut to those days, the parts counted over the
whole run (funnels, goals, experiments) kept whole and said to be, and wrong days refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sopdsl.cli import main

CASES = Path(__file__).parent / "cases"


def report(sop: Path, *options: str) -> Result:
    return CliRunner().invoke(
        main, ["report", str(sop), "--timeline", str(sop.with_suffix(".yaml")), *options]
    )


def data(sop: Path, *options: str) -> dict[str, Any]:
    result = report(sop, "--format", "json", *options)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_a_report_of_one_day_cuts_the_days_and_keeps_the_whole_runs_parts_saying_so() -> None:
    whole = data(CASES / "shop.sop")
    one = data(CASES / "shop.sop", "--from", "2026-03-03", "--to", "2026-03-03")
    assert whole["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"] and "whole_run" not in whole
    assert one["days"] == ["2026-03-03"]
    for group, cut in zip(whole["groups"], one["groups"], strict=True):
        assert cut["days"] == [row for row in group["days"] if row["day"] == "2026-03-03"]
    assert {slot["at"][:10] for slot in one["calendar"]} <= {"2026-03-03"}
    # Not counted per day in a dry run: the same as the whole run's, and said to be.
    assert (one["playbooks"], one["experiments"]) == (whole["playbooks"], whole["experiments"])
    assert one["whole_run"]["parts"] == ["playbooks", "experiments"]
    assert one["whole_run"]["days"] == ["2026-03-02", "2026-03-04"]
    page = report(CASES / "shop.sop", "--from", "2026-03-03", "--to", "2026-03-03").stdout
    assert (
        '<p class="notice" id="whole-run">剧本漏斗（流程、动作、目标转化）和实验分组统计的是整个模拟 2026-03-02 至 2026-03-04'
        in page
    )
    assert (
        '<h2 id="playbooks">剧本漏斗</h2><p class="meta">整个模拟 2026-03-02 至 2026-03-04 的数据。</p>'
        in page
    )


def test_the_day_one_burst_stays_the_runs_first_days() -> None:
    # A cut's first day is no run's day one: its actions against the cut's other days say nothing.
    burst = CASES / "burst.sop"
    whole = data(burst)
    assert whole["burst"] == {"day": "2026-03-02", "actions": 12, "usual": 1, "by_playbook": {"welcome": 12}}
    assert data(burst, "--to", whole["days"][1])["burst"] == whole["burst"]
    assert data(burst, "--from", whole["days"][1])["burst"] is None


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (
            ("--from", "2026-02-01"),
            "the run covers 2026-03-02 to 2026-03-04; --from 2026-02-01 --to 2026-03-04",
        ),
        (("--to", "2026-03-09"), "the run covers 2026-03-02 to 2026-03-04"),
        (
            ("--from", "2026-03-04", "--to", "2026-03-02"),
            "--from 2026-03-04 is after --to 2026-03-02: swap them",
        ),
        (("--from", "20260303"), "'20260303' is not a day: write it YYYY-MM-DD"),
        (("--to", "2026-W10-2"), "'2026-W10-2' is not a day: write it YYYY-MM-DD"),
        (("--to", "2026-02-30"), "'2026-02-30' is not a day: no such day"),
    ],
)
def test_days_the_run_does_not_have_or_wrongly_written_are_a_usage_error(
    options: tuple[str, ...], says: str
) -> None:
    result = report(CASES / "shop.sop", "--format", "json", *options)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
