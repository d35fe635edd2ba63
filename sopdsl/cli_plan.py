"""`sopdsl plan`: the group calendar (群日历) of a plan, as a table and as an iCalendar file.

Input: playbook files (or a project folder) and a date range, both days included (as `sopdsl
report` and `GET /report` take theirs). Output: every scheduled entry's firing per group with its
channel and the caps that count it; groups come from the playbooks' declarations, or, for a
playbook that names only tags, from the fixtures beside it.
"""

from __future__ import annotations

import datetime as dt
import os

import click

from sopdsl import lang
from sopdsl.cli import DAY, root_option, root_path, write_output
from sopdsl.cli_dryrun import build_plan, find_fixtures
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.engine.agenda_policy import held_to_policy
from sopdsl.errors import FixtureError
from sopdsl.plan import Plan, timeutil
from sopdsl.plan.agenda import Slot, agenda, to_ics
from sopdsl.syntax.loader import display_path

MAX_CALENDAR_DAYS = 366  # days one `sopdsl plan` covers at most (as a live report's range)


def fixture_groups(paths: tuple[str, ...], plan: Plan) -> dict[str, list[lang.Group]]:
    """The groups each fixture found beside the playbooks declares, by the fixture's path (a
    fixture that does not load is passed over: `sopdsl test` is where it gets reported)."""
    found: dict[str, list[lang.Group]] = {}
    for path in find_fixtures(paths):
        try:
            fixture, _ = load_fixture(path, display_path(path))
        except (FixtureError, OSError):
            continue
        zone = fixture.timezone or plan.declarations.timezone
        found[display_path(path)] = [
            lang.Group(name=g.id, title=g.name, tags=tuple(g.tags), timezone=g.timezone or zone)
            for g in fixture.groups
        ]
    return found


def _stamp() -> dt.datetime:
    """DTSTAMP: now, or SOURCE_DATE_EPOCH's instant when set (reproducible builds' convention)."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if fixed.isdigit():
        return dt.datetime.fromtimestamp(int(fixed), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _when(epoch: int, zone: str) -> str:
    local = dt.datetime.fromtimestamp(epoch, timeutil.zone(zone))
    return local.strftime("%Y-%m-%d %a %H:%M") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def _line(slot: Slot) -> str:
    # The time the sends really go out: an operator reads this table to know what the group sees.
    caps = f"  [cap {', '.join(str(i + 1) for i in slot.caps)}]" if slot.caps else ""
    moved = f"  (moved by {slot.moved_why} from {_when(slot.time, slot.zone)})" if slot.moved_why else ""
    if slot.dropped:
        moved += f"  (dropped: {slot.dropped})"
    return f"{_when(slot.sends_at, slot.zone)}  {slot.group:<16} {slot.playbook:<20} {slot.what}{caps}{moved}"


@click.command(name="plan")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--from",
    "start",
    required=True,
    type=DAY,
    help="First day (YYYY-MM-DD).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=DAY,
    help="Last day to show, included (YYYY-MM-DD), as `sopdsl report --to` takes it.",
)
@click.option("--ics", type=click.Path(dir_okay=False), help="Also write the calendar as an iCalendar file.")
@root_option
def plan_command(
    paths: tuple[str, ...], start: dt.date, end: dt.date, ics: str | None, root: str | None
) -> None:
    """Print every scheduled send per group in a date range (the group calendar, 群日历), with
    its channel and the caps that count it."""
    if end < start:
        raise click.UsageError(f"--from {start:%Y-%m-%d} is after --to {end:%Y-%m-%d}: swap them")
    days = (end - start).days + 1
    if days > MAX_CALENDAR_DAYS:
        # A mistyped year (2062 for 2026) was minutes of silence, then millions of lines.
        raise click.UsageError(
            f"--from {start:%Y-%m-%d} to --to {end:%Y-%m-%d} is {days} days: "
            f"the calendar covers at most {MAX_CALENDAR_DAYS} at a time"
        )
    plan = build_plan(paths, root_path(root))
    # Held to the engine's own delivery policy: a send a cap defers or drops is shown as the
    # engine would make it, not at the calendar's time.
    after = end + dt.timedelta(days=1)  # `agenda` ends before its end; `--to` is shown
    slots = held_to_policy(plan, agenda(plan, start, after, fallback=fixture_groups(paths, plan)))
    for slot in sorted(slots, key=lambda s: (s.sends_at, s)):
        click.echo(_line(slot))
    if not slots:
        click.echo("no scheduled entries for the declared or fixture groups in this range", err=True)
    caps = plan.declarations.policy.caps
    used = sorted({i for slot in slots for i in slot.caps})
    if used:
        click.echo("caps:")
        for i in used:
            counted = sum(i in slot.caps for slot in slots)
            click.echo(f"  [cap {i + 1}] {caps[i].text()}  ({caps[i].loc}; counts {counted} of these)")
    sources = sorted({slot.source for slot in slots if slot.source})
    if sources:
        click.echo(f"groups not declared in the playbooks are taken from {', '.join(sources)}")
    if ics:
        write_output(ics, to_ics(slots, plan, _stamp()))
        click.echo(f"wrote {ics}: {len(slots)} event(s)", err=True)
