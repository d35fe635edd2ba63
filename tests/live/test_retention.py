"""How long live state is kept: `sopdsl run --keep-days N` purges finished actions once a day
(`live/retention.py`), and a Temporal shard hands on its figures' past by day, so its state stays
small however long it runs (`PlaybookFacts.merge_days`) while reports of whole days read the same."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from livestores import KINDS, store_url
from runtime_helpers import DAY, HOUR, START, Recorder, join, plan_of, runtime
from test_live_figures import run_shop

from sopdsl.figures.stored import day_bounds
from sopdsl.live.command import run_command
from sopdsl.live.loop import cycle
from sopdsl.live.runtime import ManualClock
from sopdsl.live.store_figures import SLOT, PlaybookFacts
from sopdsl.plan import timeutil


@pytest.mark.parametrize("kind", KINDS)
def test_keep_days_purges_finished_actions_once_a_day(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """With two days kept, the loop purges what is done and due more than two days ago at its
    first turn and a day after each purge, never between; what is younger stays."""
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(store_url(kind, tmp_path, request), clock, recorder, keep_days=2)

    def kept() -> list[tuple[str, str]]:
        return [(r.action["member"], r.action["detail"]["template"]) for r in rt.store.outbox()]

    try:
        rt.feed(join("m1", START))
        rt.tick()  # m1's welcome goes out; the first purge finds nothing old enough
        clock.set(START + 12 * HOUR)
        rt.feed(join("m2", clock.now()))
        rt.tick()
        assert kept() == [("m1", "welcome"), ("m2", "welcome")]
        clock.set(START + 2 * DAY + 6 * HOUR)
        rt.tick()  # a day since the last purge: m1's welcome is more than two days old
        assert kept() == [("m2", "welcome")]
        clock.set(START + 3 * DAY)
        rt.tick()  # m1's bye goes out; m2's welcome is two days old, but no purge is due yet
        assert kept() == [("m2", "welcome"), ("m1", "bye")]
        assert len(recorder.calls) == 3
        clock.set(START + 3 * DAY + 6 * HOUR)
        cycle(rt, 1.0)  # the run loop's turn purges too
        assert kept() == [("m1", "bye")]
    finally:
        rt.close()


def test_keep_days_must_be_more_than_nothing() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        runtime("memory://", ManualClock(START), Recorder(), keep_days=0)


def by_day(facts: PlaybookFacts, days: list[dt.date], zone: str) -> dict[str, Counter[tuple[str, str]]]:
    """Each local day's per-playbook sums, read as a report of that day reads them."""
    found = {}
    for day in days:
        lo, hi = day_bounds(day, day, zone)
        found[day.isoformat()] = Counter({(p, f): 0.0 for p, _, f, _ in facts.found(lo, hi).playbooks})
        for p, _, f, v in facts.found(lo, hi).playbooks:
            found[day.isoformat()][(p, f)] += v  # type: ignore[assignment]  # sums of floats: typeshed's Counter counts only ints
    return found


def test_merged_days_read_as_the_slots_did() -> None:
    """The shop community run live: its per-playbook sums merged by day before its last day are
    one row a playbook, figure and day there, and every day reads the same sums as before."""
    rt = run_shop("memory://")
    try:
        found = rt.store.figures(rt.shard, 0, 2**40)
        end = rt.clock.now()
    finally:
        rt.close()
    zone = "Asia/Shanghai"
    tz = timeutil.zone(zone)
    facts = PlaybookFacts.of_rows({"playbooks": [list(row) for row in found.playbooks]})
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(5)]
    before = by_day(facts, days, zone)
    assert [day for day, counts in before.items() if counts] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    merged = PlaybookFacts.of_rows(facts.rows())
    merged.merge_days(end - DAY, tz)
    assert by_day(merged, days, zone) == before
    day_starts = {day_bounds(day, day, zone)[0] // SLOT for day in days}
    assert {s for _, s, _ in merged.sums if s * SLOT < end - DAY} <= day_starts
    assert {s for _, s, _ in merged.sums if s * SLOT >= end - DAY} - day_starts  # the last day's slots stay
    assert len(merged.sums) < len(facts.sums)  # not vacuous: several slots a day were merged
    merged.merge_days(end - DAY, tz)  # merging again changes nothing
    assert by_day(merged, days, zone) == before


def test_merged_days_follow_the_zone_over_a_clock_change() -> None:
    """In New York the 14th of March 2027 is 23 hours long: each slot goes to its own local day."""
    tz = timeutil.zone("America/New_York")
    days = [dt.date(2027, 3, 13) + dt.timedelta(days=n) for n in range(3)]
    lo, _ = day_bounds(days[0], days[0], "America/New_York")
    _, hi = day_bounds(days[-1], days[-1], "America/New_York")
    facts = PlaybookFacts()
    for slot in range(lo // SLOT, hi // SLOT):
        facts.sums[("pb", slot, "flows:started")] += 1
    merged = PlaybookFacts.of_rows(facts.rows())
    merged.merge_days(hi, tz)
    assert len(merged.sums) == 3
    assert by_day(merged, days, "America/New_York") == by_day(facts, days, "America/New_York")
    assert [v for (_, _, _), v in sorted(merged.sums.items())] == [96, 92, 96]


def test_sopdsl_run_refuses_to_keep_less_than_a_day(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan_of().dumps(), encoding="utf-8")
    args = [str(plan_file), "--store", "memory://", "--port", "0", "--keep-days", "0.5"]
    result = CliRunner().invoke(run_command, args)
    assert result.exit_code == 2, result.output
    assert "--keep-days" in result.stderr and "0.5" in result.stderr
